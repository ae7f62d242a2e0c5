"""DatasetMeta and validate() on clean fixtures; every corruption lives in test_bad_inputs.py (one place per kind)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from data_fixtures import corrupt
from lerobot_inspect.format import DatasetMeta, validate


@pytest.mark.parametrize("name", ["tiny_root", "av1_multifile_root", "h264_root"])
def test_generated_datasets_validate_clean(name, request):
    root = request.getfixturevalue(name)
    findings = validate(root)
    assert findings == [], "\n".join(map(str, findings))


def test_meta_describes_the_tiny_fixture(tiny_root):
    meta = DatasetMeta.open(tiny_root)
    info = json.loads((tiny_root / "meta/info.json").read_text())
    assert meta.fps == info["fps"]
    assert meta.num_episodes == info["total_episodes"]
    assert int(meta.lengths.sum()) == info["total_frames"]
    assert len(meta.video_keys) == 2
    assert list(meta.features)[-5:] == ["timestamp", "frame_index", "episode_index", "index", "task_index"]
    for episode in range(meta.num_episodes):
        assert (tiny_root / meta.data_file(episode)).is_file()
        for camera in meta.video_keys:
            assert (tiny_root / meta.video_file(episode, camera)).is_file()
            start, stop = meta.video_span_s(episode, camera)
            assert stop - start == pytest.approx(meta.lengths[episode] / meta.fps, abs=1e-6)
    np.testing.assert_array_equal(meta.dataset_from_index[1:], meta.dataset_to_index[:-1])


def test_multifile_layout_rolls_over_chunks(av1_multifile_root):
    meta = DatasetMeta.open(av1_multifile_root)
    assert len(meta.data_files()) == 4
    assert any("chunk-001" in path for path in meta.data_files())
    for camera in meta.video_keys:
        assert len(meta.video_files(camera)) == 3
    assert meta.image_keys, "the multifile fixture carries a PNG-in-Parquet camera"


def test_audit_cli_exit_codes_and_json(tiny_root, tiny_copy):
    ok = subprocess.run([sys.executable, "-m", "lerobot_inspect.cli", "audit", str(tiny_root)],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "episodes" in ok.stdout and "av1" in ok.stdout and "verdict  OK" in ok.stdout
    meta = DatasetMeta.open(tiny_copy)
    corrupt.delete_file(tiny_copy, meta.video_file(0, meta.video_keys[0]))
    bad = subprocess.run([sys.executable, "-m", "lerobot_inspect.cli", "audit", str(tiny_copy), "--json"],
                         capture_output=True, text=True)
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert report["ok"] is False and report["counts"]["error"] >= 1
    assert any(f["code"] == "missing-video-file" for f in report["findings"])


def test_root_as_path_or_file_url_gives_the_same_meta(tiny_root):
    a = DatasetMeta.open(tiny_root)
    b = DatasetMeta.open(Path(tiny_root).as_uri())
    assert a.episodes.equals(b.episodes) and a.tasks == b.tasks


@pytest.mark.parametrize("over_http", [False, True])
def test_a_meta_table_with_a_big_footer_is_read_in_slices_with_the_same_rows(monkeypatch, over_http):
    # meta/episodes of 10,000 episodes has an 18 MB footer that pyarrow decodes into ~150 MB the process
    # keeps; above META_COMPACT_FOOTER_BYTES the table is read a slice of row groups at a time instead.
    # Force that path on a fixture (slices of 2 row groups) and compare with pyarrow's whole read.
    import pyarrow.parquet as pq

    from data_fixtures import cached_dataset
    from lerobot_inspect.format import meta as meta_module
    from lerobot_inspect.io.loopback import serve_directory

    root = cached_dataset(episodes=35, length_range=(2, 4), cameras=1, width=32, height=32)  # 4 meta row groups
    whole = DatasetMeta.open(root)
    rel = sorted(Path(root).glob("meta/episodes/*/*.parquet"))[0]
    assert pq.ParquetFile(rel).metadata.num_row_groups == 4
    monkeypatch.setattr(meta_module, "META_COMPACT_FOOTER_BYTES", 0)
    monkeypatch.setattr(meta_module, "META_ROW_GROUPS_PER_SLICE", 2)
    if over_http:
        with serve_directory(str(root)) as server:
            sliced = DatasetMeta.open(server.url)
    else:
        sliced = DatasetMeta.open(root)
    assert sliced.episodes.equals(whole.episodes)
