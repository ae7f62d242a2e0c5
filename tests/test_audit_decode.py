"""The audit's decode pass (`--decode sampled|full`): sequential TorchCodec decode per MP4, frozen
frames as one warning naming episode, camera and frame range, decoded frames/s in the report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from data_fixtures import corrupt
from lerobot_inspect.format import DatasetMeta
from lerobot_inspect.probes.audit import audit_dataset, format_report
from lerobot_inspect.probes.decode_check import FROZEN_MIN_FRAMES, decode_pass, frozen_spans


def test_frozen_spans_pure():
    moving, still = 10.0, 0.0
    assert frozen_spans(np.array([moving] * 10)) == []
    diffs = np.array([moving, still, still, still, still, moving])  # frames 1..5 equal: 5 frames
    assert frozen_spans(diffs) == [(1, 6)]
    assert frozen_spans(np.array([still] * 3)) == []  # 4 equal frames: below the default span
    assert frozen_spans(np.array([still] * 4)) == [(0, 5)]
    assert frozen_spans(np.array([0.49] * 4)) == [(0, 5)] and frozen_spans(np.array([0.5] * 4)) == []


@pytest.mark.parametrize("mode", ["sampled", "full"])
def test_clean_fixture_decodes_without_findings(tiny_root, mode):
    meta = DatasetMeta.open(tiny_root)
    result = decode_pass(meta, mode=mode)
    assert result.findings == []
    expected = int(meta.lengths.sum()) * len(meta.video_keys) if mode == "full" else None
    if expected is not None:
        assert result.frames == expected
    assert result.frames > 0 and result.frames_per_s > 0
    assert all(row["min_diff"] is None or row["min_diff"] > 0.5 for row in result.rows)


def test_clean_h264_with_b_frames_decodes_without_findings(h264_root):
    assert decode_pass(DatasetMeta.open(h264_root), mode="full").findings == []


def test_frozen_video_is_one_warning_naming_episode_camera_and_frames(tiny_copy):
    """Row "frozen video frames" of docs/bad_inputs.md: validate cannot see pixels, `--decode` does."""
    meta = DatasetMeta.open(tiny_copy)
    camera = meta.video_keys[1]
    start, count = 10, 8  # inside episode 1's middle run, so the sampled mode sees it too
    rel = corrupt.freeze_video_frames(tiny_copy, camera, 1, start, count)
    for mode in ("full", "sampled"):
        report = audit_dataset(str(tiny_copy), decode=mode)
        assert [(f.code, f.severity, f.episode, f.camera, f.frame) for f in report.findings] == [
            ("frozen-frames", "warning", 1, camera, start)], format_report(report)
        finding = report.findings[0]
        assert finding.file.endswith(rel) and f"{start}..{start + count - 1}" in finding.message and finding.fix
        assert report.ok  # a warning: the dataset loads
    assert audit_dataset(str(tiny_copy)).findings == []  # metadata alone cannot see pixels


def test_decode_summary_in_the_report_and_json(tiny_root):
    report = audit_dataset(str(tiny_root), decode="full")
    data = json.loads(json.dumps(report.to_dict()))
    decode = data["decode"]
    assert decode["mode"] == "full" and decode["frames"] > 0 and decode["frames_per_s"] > 0
    assert decode["frozen_min_frames"] == FROZEN_MIN_FRAMES
    assert "frames/s sequential" in format_report(report)
    assert audit_dataset(str(tiny_root), decode=True).decode["mode"] == "sampled"
    assert audit_dataset(str(tiny_root)).to_dict()["decode"] is None


def test_decode_mode_is_checked(tiny_root):
    from lerobot_inspect.errors import OptionError

    with pytest.raises(OptionError, match="full"):
        decode_pass(DatasetMeta.open(tiny_root), mode="all")


def test_full_pass_makes_the_loader_checks_on_the_way(tiny_copy):
    """`--decode full` skips the loader check: the sequential pass sees a span shifted by a frame (two
    episodes start/end on the same frame) and a file short of frames."""
    meta = DatasetMeta.open(tiny_copy)
    front, wrist = meta.video_keys
    corrupt.shift_video_timestamps(tiny_copy, front, 0, frames=1)
    short = corrupt.drop_last_frames(tiny_copy, meta.video_file(1, wrist), 5)
    result = decode_pass(DatasetMeta.open(tiny_copy), mode="full")
    found = sorted((f.code, f.episode, f.camera) for f in result.findings)
    assert found == [("episodes-share-frame", 0, front), ("video-frame-count", 0, wrist)], result.findings
    count = next(f for f in result.findings if f.code == "video-frame-count")
    assert count.file.endswith(short) and count.severity == "error"
    assert decode_pass(meta, mode="sampled").findings == []  # sampled leaves these to the loader check
