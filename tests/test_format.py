"""DatasetMeta and validate(): clean fixtures validate clean, and each corruption gives its finding."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from data_fixtures import corrupt
from lerobot_inspect import DatasetFormatError
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


def codes(findings):
    return {f.code for f in findings}


def only(findings, code):
    matching = [f for f in findings if f.code == code]
    assert matching, f"no {code!r} finding in:\n" + "\n".join(map(str, findings))
    return matching[0]


def test_missing_mp4_is_named(tiny_copy):
    meta = DatasetMeta.open(tiny_copy)
    camera = meta.video_keys[1]
    relative = corrupt.delete_file(tiny_copy, meta.video_file(2, camera))
    finding = only(validate(tiny_copy), "missing-video-file")
    assert finding.severity == "error" and finding.file.endswith(relative) and finding.camera == camera
    assert finding.episode == 2


def test_truncated_data_parquet_is_named(tiny_copy):
    meta = DatasetMeta.open(tiny_copy)
    relative = corrupt.truncate_file(tiny_copy, meta.data_file(0))
    finding = only(validate(tiny_copy), "unreadable-data-file")
    assert finding.file.endswith(relative) and "truncated" in finding.fix


def test_missing_data_parquet_is_named(tiny_copy):
    meta = DatasetMeta.open(tiny_copy)
    relative = corrupt.delete_file(tiny_copy, meta.data_file(meta.num_episodes - 1))
    finding = only(validate(tiny_copy), "missing-data-file")
    assert finding.file.endswith(relative)


def test_bad_json_is_an_error_naming_info_json(tiny_copy):
    (tiny_copy / "meta/info.json").write_text('{"fps": 30,')
    finding = only(validate(tiny_copy), "unreadable-meta")
    assert "meta/info.json" in finding.message and "JSON" in finding.message
    with pytest.raises(DatasetFormatError, match=r"info\.json"):
        DatasetMeta.open(tiny_copy)


def test_v21_dataset_names_the_conversion(tiny_copy):
    corrupt.edit_info(tiny_copy, codebase_version="v2.1")
    finding = only(validate(tiny_copy), "unsupported-version")
    assert "v2.1" in finding.message and "convert" in finding.message


def test_wrong_total_frames_and_episodes(tiny_copy):
    meta = DatasetMeta.open(tiny_copy)
    corrupt.edit_info(tiny_copy, total_frames=meta.total_frames + 5, total_episodes=meta.total_episodes + 1)
    findings = validate(tiny_copy)
    assert {"total-frames-mismatch", "total-episodes-mismatch"} <= codes(findings)
    assert only(findings, "total-frames-mismatch").file.endswith("meta/info.json")


def test_timestamps_off_the_fps_grid(tiny_copy):
    relative = corrupt.rewrite_data_column(tiny_copy, 1, "timestamp", lambda ts: ts + np.float32(0.01))
    finding = only(validate(tiny_copy), "timestamp-off-grid")
    assert finding.episode == 1 and finding.file.endswith(relative)


def test_collapsed_row_groups_warn_and_still_load(tiny_copy):
    relative = corrupt.collapse_row_groups(tiny_copy, 0)
    finding = only(validate(tiny_copy), "collapsed-row-groups")
    assert finding.severity == "warning" and finding.file.endswith(relative)


def test_video_span_shorter_than_data(tiny_copy):
    meta = DatasetMeta.open(tiny_copy)
    camera = meta.video_keys[0]
    start, _ = meta.video_span_s(1, camera)
    corrupt.edit_episodes_column(tiny_copy, f"videos/{camera}/to_timestamp", 1,
                                 start + (int(meta.lengths[1]) - 3) / meta.fps)
    finding = only(validate(tiny_copy), "video-shorter-than-data")
    assert finding.episode == 1 and finding.camera == camera


def test_index_not_contiguous(tiny_copy):
    corrupt.rewrite_data_column(tiny_copy, 2, "index", lambda index: index + 1)
    finding = only(validate(tiny_copy), "index-not-contiguous")
    assert finding.episode == 2


def test_frames_out_of_order(tiny_copy):
    corrupt.rewrite_data_column(tiny_copy, 1, "frame_index", lambda frames: frames[::-1].copy())
    assert only(validate(tiny_copy), "frames-out-of-order").episode == 1


def test_tasks_out_of_order(tiny_copy):
    corrupt.swap_task_rows(tiny_copy)
    assert only(validate(tiny_copy), "tasks-out-of-order").file.endswith("meta/tasks.parquet")


def test_unknown_dtype_and_camera_fps(tiny_copy):
    info = json.loads((tiny_copy / "meta/info.json").read_text())
    features = info["features"]
    features["observation.state"]["dtype"] = "complex128"
    camera = next(k for k, v in features.items() if v["dtype"] == "video")
    features[camera]["info"]["video.fps"] = 15
    corrupt.edit_info(tiny_copy, features=features)
    findings = validate(tiny_copy)
    assert only(findings, "unknown-dtype").file.endswith("meta/info.json")
    assert only(findings, "camera-fps-mismatch").camera == camera


def test_truncated_episodes_table_is_an_error(tiny_copy):
    relative = next(str(p.relative_to(tiny_copy)) for p in (tiny_copy / "meta/episodes").rglob("*.parquet"))
    corrupt.truncate_file(tiny_copy, relative, keep_fraction=0.3)
    finding = only(validate(tiny_copy), "unreadable-meta")
    assert relative in finding.message


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
