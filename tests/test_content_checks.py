"""Content checks of the audit (`format.content`, `format.content_audit`, `video.codec_info`): the pure
checks on arrays, the MP4 sample-entry parser on real encodes, and zero findings on clean datasets.
Each fault kind's end-to-end row lives in test_bad_inputs.py."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_fixtures import cached_dataset, corrupt
from lerobot_inspect.format import DatasetMeta, validate
from lerobot_inspect.format.content import (
    ContentAudit,
    ContentThresholds,
    column_values,
    constant_runs,
    drop_explained,
    episode_range_findings,
    spike_frames,
)
from lerobot_inspect.video.codec_info import (
    codec_name,
    moov_video_sample_entry,
    same_pix_fmt,
    sample_entry_info,
)
from lerobot_inspect.video.mp4 import read_mp4_header


# ---------------------------------------------------------------------- clean data: no finding
@pytest.mark.parametrize("kwargs", [
    {"episodes": 12, "length_range": (1, 3), "episodes_per_file": 5, "seed": 5},
    {"episodes": 3, "length_range": (1, 1), "cameras": 1, "seed": 6},
    {"episodes": 40, "length_range": (2, 60), "episodes_per_file": 10, "episodes_per_data_file": 7,
     "state_dim": 14, "action_dim": 7, "seed": 7},
], ids=["1-3 frames", "1 frame", "40 episodes"])
def test_generated_short_and_varied_episodes_validate_clean(kwargs):
    findings = validate(cached_dataset(**kwargs))
    assert findings == [], "\n".join(map(str, findings))


def test_metadata_audit_does_not_import_torch(tiny_root):
    code = ("import sys; from lerobot_inspect.format import validate; "
            f"assert validate({str(tiny_root)!r}) == []; print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# ---------------------------------------------------------------------- pure checks
def test_column_values_reads_scalars_lists_and_nulls():
    fixed = pa.FixedSizeListArray.from_arrays(pa.array([1.0, 2.0, None, 4.0, 5.0, 6.0], pa.float32()), 2,
                                              mask=pa.array([False, False, True]))
    col = column_values(pa.chunked_array([fixed]), 2)
    assert col.values.shape == (3, 2) and col.widths is None
    np.testing.assert_array_equal(col.null, [[False, False], [True, False], [True, True]])
    assert col.values[0].tolist() == [1.0, 2.0] and np.isnan(col.values[2]).all()
    scalar = column_values(pa.chunked_array([pa.array([1, None, 3])]), 1)
    assert scalar.null[:, 0].tolist() == [False, True, False]
    ragged = column_values(pa.chunked_array([pa.array([[1.0, 2.0], [3.0]])]), 2)
    assert ragged.widths.tolist() == [2, 1]
    listed = column_values(pa.chunked_array([pa.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])]), 2)
    assert listed.widths is None and listed.values.shape == (2, 3)  # the shape check sees 3, not 2
    assert column_values(pa.chunked_array([pa.array(["a"])]), 1) is None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=0, max_size=40))
def test_smooth_series_have_no_spike(steps):
    """A monotone walk never spikes, whatever its steps."""
    x = np.cumsum(np.abs(np.asarray(steps, dtype=np.float64)))
    assert spike_frames(x, 0.0).size == 0


@settings(max_examples=60, deadline=None)
@given(st.integers(3, 60), st.data())
def test_one_glitch_is_one_spike(length, data):
    frame = data.draw(st.integers(1, length - 2))
    x = np.arange(length, dtype=np.float64)
    x[frame] += 1e6
    assert spike_frames(x, 10.0).tolist() == [frame]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 40), st.integers(0, 40), st.integers(1, 30))
def test_constant_runs_finds_exactly_the_frozen_span(before, after, frozen):
    x = np.concatenate([np.arange(before) - 100.0, np.full(frozen, 7.0), np.arange(after) + 100.0])
    runs = constant_runs(x, 5)
    assert runs == ([(before, before + frozen)] if frozen >= 5 else [])


def test_short_episodes_never_spike_or_freeze():
    for n in (1, 2, 3):
        assert spike_frames(np.zeros(n), 0.0).size == 0
        assert constant_runs(np.zeros(n), 15) == []


def _ranges(lengths):
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return starts, starts + np.asarray(lengths)


def test_ranges_clean_and_every_fault_names_every_episode():
    lengths = np.array([5, 7, 3, 9])
    starts, stops = _ranges(lengths)
    assert episode_range_findings(starts, stops, lengths, where="m") == []
    swapped_s, swapped_e = starts.copy(), stops.copy()
    swapped_s[[1, 3]], swapped_e[[1, 3]] = starts[[3, 1]], stops[[3, 1]]
    [f] = episode_range_findings(swapped_s, swapped_e, lengths, where="m")
    assert (f.code, f.episodes) == ("episode-ranges-swapped", (1, 3))
    s, e = starts.copy(), stops.copy()
    s[2] -= 1  # episode 2's start moved into episode 1: one overlap, its length mismatch explained
    [f] = episode_range_findings(s, e, lengths, where="m")
    assert (f.code, f.episode, f.episodes) == ("episode-ranges-overlap", 2, (1, 2))
    s, e = starts.copy(), stops.copy()
    s[1:], e[1:] = s[1:] + 2, e[1:] + 2  # everything after episode 0 shifted: a gap
    [f] = episode_range_findings(s, e, lengths, where="m")
    assert (f.code, f.episodes) == ("episode-ranges-gap", (0, 1))
    s, e = starts.copy(), stops.copy()
    s[3], e[3] = e[3], s[3]
    assert [f.code for f in episode_range_findings(s, e, lengths, where="m")] == ["episode-range-reversed"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 50), min_size=1, max_size=30))
def test_contiguous_ranges_are_clean(lengths):
    starts, stops = _ranges(lengths)
    assert episode_range_findings(starts, stops, np.asarray(lengths), where="m") == []


def test_findings_explained_by_another_are_dropped():
    from lerobot_inspect.format import Finding

    shuffled = Finding("error", "frames-out-of-order", "m", file="r/data/f.parquet", episode=1)
    spike = Finding("warning", "value-spike", "m", file="r/data/f.parquet", episode=1)
    other_spike = Finding("warning", "value-spike", "m", file="r/data/f.parquet", episode=2)
    swapped = Finding("error", "episode-ranges-swapped", "m", file="r/meta/episodes", episode=3, episodes=(3, 4))
    index = Finding("error", "index-not-contiguous", "m", file="r/data/f.parquet", episode=4)
    assert drop_explained([shuffled, spike, other_spike, swapped, index]) == [shuffled, other_spike, swapped]


class _F:
    def __init__(self, dtype, shape, names=None):
        self.dtype, self.shape, self.names = dtype, shape, names


def _audit_table(state: np.ndarray) -> pa.Table:
    return pa.table({"observation.state": pa.FixedSizeListArray.from_arrays(pa.array(state.reshape(-1)),
                                                                            state.shape[1])})


def test_noisy_state_with_gripper_steps_gives_no_warning():
    """Sensor noise, fast moves and a gripper that toggles are real motion, not spikes or freezes."""
    rng = np.random.default_rng(0)
    episodes, length = 6, 200
    frames = episodes * length
    joints = np.cumsum(rng.normal(0, 0.02, (frames, 5)), axis=0) + rng.normal(0, 0.001, (frames, 5))
    gripper = (np.arange(frames) // 37 % 2).astype(np.float64)[:, None]
    audit = ContentAudit({"observation.state": _F("float32", (6,))}, num_tasks=1, num_episodes=episodes)
    findings = audit.add_file("d", _audit_table(np.hstack([joints, gripper]).astype(np.float32)),
                              list(range(episodes)), [length] * episodes)
    findings += audit.finish()
    assert findings == []


def test_quantized_servo_flicker_and_rest_give_no_warning():
    """A servo at rest read in whole ticks flickers by one tick for single frames: its value range is
    one tick, so only the typical episode's largest step tells flicker from a glitch."""
    rng = np.random.default_rng(1)
    episodes, length = 8, 120
    ticks = np.full((episodes * length, 1), 2047.0)
    ticks[rng.random(episodes * length) < 0.05] += 1
    state = np.hstack([ticks, np.full_like(ticks, 512.0)]).astype(np.float32)
    audit = ContentAudit({"observation.state": _F("float32", (2,))}, num_tasks=1, num_episodes=episodes)
    findings = audit.add_file("d", _audit_table(state), list(range(episodes)), [length] * episodes)
    assert findings + audit.finish() == []
    glitched = state.copy()
    glitched[3 * length + 50, 0] += 40  # a real glitch in the same dimension is still seen
    audit = ContentAudit({"observation.state": _F("float32", (2,))}, num_tasks=1, num_episodes=episodes)
    audit.add_file("d", _audit_table(glitched), list(range(episodes)), [length] * episodes)
    assert [(f.code, f.episode, f.frame, f.dimension) for f in audit.finish()] == [("value-spike", 3, 50, 0)]


def test_content_thresholds_are_documented_defaults():
    t = ContentThresholds()
    assert (t.spike_step_k, t.spike_range_fraction, t.constant_min_frames) == (20.0, 0.5, 15)


# ---------------------------------------------------------------------- MP4 sample entries
def _encode(codec: str, pix_fmt: str, width: int = 64, height: int = 48) -> bytes:
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream(codec, rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if codec == "libsvtav1":
            stream.options = {"preset": "12", "svtav1-params": "lp=1"}
        frames = np.random.default_rng(0).integers(0, 255, (4, height, width, 3), dtype=np.uint8)
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format=pix_fmt)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


@pytest.mark.parametrize(("encoder", "pix_fmt", "codec", "depth"), [
    ("libx264", "yuv420p", "h264", 8),
    ("libx264", "yuv444p", "h264", 8),
    ("libx264", "yuv422p", "h264", 8),
    ("libsvtav1", "yuv420p", "av1", 8),
    ("libsvtav1", "yuv420p10le", "av1", 10),
])
def test_sample_entry_gives_codec_size_and_pixel_format(encoder, pix_fmt, codec, depth):
    data = _encode(encoder, pix_fmt, 80, 64)
    segments, info = read_mp4_header(lambda a, b: data[a:b], len(data), name="clip.mp4")
    entry = sample_entry_info(moov_video_sample_entry(dict(segments)[info.moov_range[0]]))
    assert (entry.codec, entry.width, entry.height, entry.pix_fmt, entry.bit_depth) == (codec, 80, 64, pix_fmt, depth)


def test_codec_aliases_and_jpeg_range():
    assert codec_name("libsvtav1") == "av1" and codec_name("libx264") == "h264"
    assert same_pix_fmt("yuvj420p", "yuv420p") and not same_pix_fmt("yuv444p", "yuv420p")
    with pytest.raises(ValueError):
        sample_entry_info(b"\0" * 20)


# ---------------------------------------------------------------------- one fault, one finding
def test_many_faulty_episodes_are_capped_per_kind(tiny_copy):
    """NaN in every episode: one finding per episode up to the cap, nothing else."""
    meta = DatasetMeta.open(tiny_copy)
    for episode in range(meta.num_episodes):
        corrupt.edit_rows(tiny_copy, episode, "action", lambda v: v * np.nan)
    findings = validate(tiny_copy)
    assert [(f.code, f.episode, f.feature) for f in findings] == [
        ("non-finite-values", e, "action") for e in range(meta.num_episodes)]


def test_stats_json_mismatch_names_the_feature(tiny_copy):
    stats = json.loads((tiny_copy / "meta/stats.json").read_text())
    stats["action"]["count"] = [1]
    (tiny_copy / "meta/stats.json").write_text(json.dumps(stats))
    [finding] = validate(tiny_copy)
    assert (finding.code, finding.feature) == ("stats-json-mismatch", "action")


def test_task_index_past_the_table_is_one_finding_and_the_loader_refuses_it(tiny_copy):
    """Row "task_index past the tasks table" of docs/bad_inputs.md: one finding, and the loader
    refuses the frame naming the data file, the episode and the frame."""
    from lerobot_inspect import MapDataset
    from lerobot_inspect.errors import DatasetFormatError

    rel = corrupt.rewrite_data_column(tiny_copy, 1, "task_index", lambda v: v + 10)
    [finding] = validate(tiny_copy)
    assert (finding.code, finding.episode, finding.frame) == ("task-index-out-of-range", 1, 0)
    assert finding.file.endswith(rel)
    dataset = MapDataset(tiny_copy)
    start = int(dataset.meta.dataset_from_index[1])
    with pytest.raises(DatasetFormatError, match=r"episode 1, frame 0: task_index 1[0-9] is outside") as raised:
        dataset[start]
    assert raised.value.file.endswith(rel) and raised.value.code == "task-index-out-of-range"


def test_copy_is_untouched(tiny_root, tmp_path):
    """The fault makers edit a copy: the committed fixture stays clean."""
    shutil.copytree(tiny_root, tmp_path / "t")
    corrupt.spike_value(tmp_path / "t", 0, "observation.state", 5, 0)
    assert validate(tiny_root) == []
