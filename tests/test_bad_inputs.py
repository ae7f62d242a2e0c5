"""The bad-input catalogue: every way a dataset arrives broken, made from a real fixture copy.

For each kind, two promises are checked end to end:
1. `validate(root)` reports it as EXACTLY ONE finding (right code and severity) that names the file,
   the episode where one applies, and a fix;
2. loading through `MapDataset` after the corruption never returns a wrong frame silently: it
   either raises a `LeRobotInspectError` whose message names the file (and episode), or every sample
   it returns decodes to the frame code of its own (camera, episode, frame_index), windows included.

`KINDS` is also the source of docs/bad_inputs.md: `python tests/test_bad_inputs.py > docs/bad_inputs.md`
regenerates it, and a test fails when the page and this list disagree.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from data_fixtures import corrupt, decode_frame_code
from lerobot_inspect import LeRobotInspectError, MapDataset
from lerobot_inspect.errors import DatasetFormatError, DecodeError, FrameTimestampError, IndexStaleError, OptionError
from lerobot_inspect.format import DatasetMeta, validate

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "data_fixtures" / "tiny"
DOC = REPO / "docs" / "bad_inputs.md"
FPS = 30
TINY_META = DatasetMeta.open(TINY)
FRONT, WRIST = TINY_META.video_keys
TRUE_TASKS = list(TINY_META.tasks)


@dataclass(frozen=True)
class Expect:
    """What the user must be told: one finding (code, severity, where) and what the loader does."""

    code: str
    file: str  # dataset-relative path the finding and the loader error name
    episode: int | None = None
    camera: str | None = None
    severity: str = "error"
    loader: type[LeRobotInspectError] | None = None  # None: MapDataset loads and every sample is right
    loader_names: str | None = None  # what the loader error names, when it is not `file`
    delta_timestamps: dict[str, list[float]] | None = None


@dataclass(frozen=True)
class Kind:
    """One catalogue row: the doc columns and the function that breaks a copy of the tiny fixture."""

    name: str
    how: str
    gets: str
    fix: str
    make: Callable[[Path], Expect] | None = None  # None: a kind with its own test below


# ---------------------------------------------------------------------- the corruptions
def truncated_moov(root: Path) -> Expect:
    rel = TINY_META.video_file(0, FRONT)  # faststart: ftyp, moov, free, mdat
    corrupt.truncate_in_box(root, rel, "moov")
    return Expect("unreadable-video-header", rel, 0, FRONT, loader=DecodeError)


def truncated_moov_at_end(root: Path) -> Expect:
    rel = TINY_META.video_file(4, FRONT)  # one episode, the encoder's own layout: moov last
    corrupt.truncate_in_box(root, rel, "moov", keep_fraction=0.5)
    return Expect("unreadable-video-header", rel, 4, FRONT, loader=DecodeError)


def truncated_mdat(root: Path) -> Expect:
    rel = TINY_META.video_file(0, WRIST)
    corrupt.truncate_in_box(root, rel, "mdat", keep_fraction=0.5)
    return Expect("unreadable-video-header", rel, 0, WRIST, loader=DecodeError)


def corrupt_stsz_size(root: Path) -> Expect:
    rel = TINY_META.video_file(2, FRONT)
    corrupt.set_box_size(root, rel, "moov/trak/mdia/minf/stbl/stsz", 0xFFFF)
    return Expect("unreadable-video-header", rel, 2, FRONT, loader=DecodeError)


def corrupt_moov_size(root: Path) -> Expect:
    rel = TINY_META.video_file(0, FRONT)
    corrupt.set_box_size(root, rel, "moov", 100)
    return Expect("unreadable-video-header", rel, 0, FRONT, loader=DecodeError)


def fragmented(root: Path) -> Expect:
    rel = TINY_META.video_file(2, WRIST)
    corrupt.fragment_mp4(root, rel)
    return Expect("fragmented-video", rel, 2, WRIST, severity="warning")


def missing_mp4(root: Path) -> Expect:
    rel = corrupt.delete_file(root, TINY_META.video_file(2, WRIST))
    return Expect("missing-video-file", rel, 2, WRIST, loader=DatasetFormatError)


def missing_parquet(root: Path) -> Expect:
    rel = corrupt.delete_file(root, TINY_META.data_file(4))
    return Expect("missing-data-file", rel, 3, loader=DatasetFormatError)  # file-001 holds episodes 3, 4


def truncated_parquet(root: Path) -> Expect:
    rel = corrupt.truncate_file(root, TINY_META.data_file(0))
    return Expect("unreadable-data-file", rel, 0, loader=DatasetFormatError)


def truncated_episodes_table(root: Path) -> Expect:
    rel = "meta/episodes/chunk-000/file-000.parquet"
    corrupt.truncate_file(root, rel, keep_fraction=0.3)
    return Expect("unreadable-meta", rel, loader=DatasetFormatError)


def collapsed_row_groups(root: Path) -> Expect:
    rel = corrupt.collapse_row_groups(root, 0)
    return Expect("collapsed-row-groups", rel, 0, severity="warning")


def wrong_total_frames(root: Path) -> Expect:
    rel = corrupt.edit_info(root, total_frames=TINY_META.total_frames + 5)
    return Expect("total-frames-mismatch", rel)


def wrong_total_episodes(root: Path) -> Expect:
    rel = corrupt.edit_info(root, total_episodes=TINY_META.total_episodes + 1)
    return Expect("total-episodes-mismatch", rel)


def bad_json(root: Path) -> Expect:
    (root / "meta/info.json").write_text('{"fps": 30,')
    return Expect("unreadable-meta", "meta/info.json", loader=DatasetFormatError)


def v21_dataset(root: Path) -> Expect:
    rel = corrupt.edit_info(root, codebase_version="v2.1")
    return Expect("unsupported-version", rel, loader=DatasetFormatError)


def timestamps_off_grid(root: Path) -> Expect:
    rel = corrupt.rewrite_data_column(root, 1, "timestamp", lambda ts: ts + np.float32(0.01))
    # The loader notices at decode time, so it names the MP4 it could not match.
    return Expect("timestamp-off-grid", rel, 1, loader=FrameTimestampError,
                  loader_names=TINY_META.video_file(1, FRONT))


def video_shorter_than_data(root: Path) -> Expect:
    start, _ = TINY_META.video_span_s(1, FRONT)
    corrupt.edit_episodes_column(root, f"videos/{FRONT}/to_timestamp", 1,
                                 start + (int(TINY_META.lengths[1]) - 3) / FPS)
    # The frames are still in the MP4 and the loader asks by row timestamp, so it reads them right.
    return Expect("video-shorter-than-data", TINY_META.video_file(1, FRONT), 1, FRONT)


def video_frames_missing(root: Path) -> Expect:
    rel = corrupt.drop_last_frames(root, TINY_META.video_file(1, WRIST), 5)
    return Expect("video-frames-missing", rel, 1, WRIST, loader=FrameTimestampError)


def frames_out_of_order(root: Path) -> Expect:
    """Rows of episode 1 written in a shuffled order (a writer that did not sort): every column of a
    row moves together, so each row is self-consistent but neighbours by position are wrong."""
    meta = TINY_META
    rel = meta.data_file(1)
    table = pq.read_table(root / rel)
    parquet = pq.ParquetFile(root / rel)
    sizes = [parquet.metadata.row_group(k).num_rows for k in range(parquet.metadata.num_row_groups)]
    rows = np.arange(table.num_rows)
    ep_rows = np.flatnonzero(table.column("episode_index").to_numpy() == 1)
    rows[ep_rows] = ep_rows[np.random.default_rng(0).permutation(len(ep_rows))]
    corrupt._write_row_groups(root / rel, table.take(rows), sizes)
    return Expect("frames-out-of-order", rel, 1, loader=DatasetFormatError,
                  delta_timestamps={FRONT: [-1 / FPS, 0.0, 1 / FPS]})


def index_not_contiguous(root: Path) -> Expect:
    rel = corrupt.rewrite_data_column(root, 2, "index", lambda index: index + 1)
    return Expect("index-not-contiguous", rel, 2, loader=DatasetFormatError,
                  delta_timestamps={FRONT: [-1 / FPS, 0.0, 1 / FPS]})


def unknown_dtype(root: Path) -> Expect:
    info = json.loads((root / "meta/info.json").read_text())
    info["features"]["observation.state"]["dtype"] = "complex128"
    rel = corrupt.edit_info(root, features=info["features"])
    return Expect("unknown-dtype", rel)


def camera_fps_in_file(root: Path) -> Expect:
    """The camera really ran at 15 fps (every other frame) but info.json claims 30."""
    rel = TINY_META.video_file(0, FRONT)
    corrupt.reencode_at_fps(root, rel, keep_every=2)
    return Expect("camera-fps-mismatch", rel, 0, FRONT, loader=FrameTimestampError)


def camera_fps_in_info(root: Path) -> Expect:
    """info.json says the camera is 15 fps (what LeRobot records from the stream) and the MP4 is."""
    corrupt.reencode_at_fps(root, TINY_META.video_file(0, FRONT), keep_every=2)
    info = json.loads((root / "meta/info.json").read_text())
    info["features"][FRONT]["info"]["video.fps"] = 15
    rel = corrupt.edit_info(root, features=info["features"])
    return Expect("camera-fps-mismatch", rel, None, FRONT, loader=FrameTimestampError,
                  loader_names=TINY_META.video_file(0, FRONT))


def tasks_out_of_order(root: Path) -> Expect:
    rel = corrupt.swap_task_rows(root)
    return Expect("tasks-out-of-order", rel, loader=DatasetFormatError)


def shifted_span(episode: int, frames: int) -> Callable[[Path], Expect]:
    def make(root: Path) -> Expect:
        corrupt.shift_video_timestamps(root, FRONT, episode, frames=frames)
        return Expect("video-span-shifted", TINY_META.video_file(episode, FRONT), episode, FRONT,
                      loader=FrameTimestampError)

    make.__name__ = f"shifted_span_ep{episode}_{frames:+d}"
    return make


KINDS: list[Kind] = [
    Kind("truncated MP4, cut in moov (faststart)", "`truncate_in_box(root, mp4, 'moov')`",
         "`unreadable-video-header` (error): \"top-level box 'moov' at byte 32 claims 1201 bytes but the file "
         "ends at 632 (truncated download?)\"; loader: `DecodeError` naming the MP4, episode, camera",
         "download the file again or re-encode the camera", truncated_moov),
    Kind("truncated MP4, cut in moov (moov at end)", "`truncate_in_box(root, mp4, 'moov')` on a one-episode file",
         "`unreadable-video-header` (error); loader: `DecodeError` \"FFmpeg cannot open the MP4 ... truncated or "
         "corrupt\"", "download the file again", truncated_moov_at_end),
    Kind("truncated MP4, cut in mdat", "`truncate_in_box(root, mp4, 'mdat')`",
         "`unreadable-video-header` (error): \"box 'mdat' ... claims N bytes but the file ends at M\"; loader: "
         "correct frames up to the cut, then `DecodeError` naming MP4 + episode", "download the file again",
         truncated_mdat),
    Kind("corrupt sample-table box size (stsz)", "`set_box_size(root, mp4, 'moov/trak/mdia/minf/stbl/stsz', 0xFFFF)`",
         "`unreadable-video-header` (error): \"box 'stsz' ... overruns its parent stbl\"; loader: `DecodeError`",
         "restore or re-encode the file", corrupt_stsz_size),
    Kind("corrupt moov box size", "`set_box_size(root, mp4, 'moov', 100)`",
         "`unreadable-video-header` (error): \"box 'mvhd' ... overruns its parent moov\"; loader: `DecodeError`",
         "restore or re-encode the file", corrupt_moov_size),
    Kind("fragmented MP4", "`fragment_mp4(root, mp4)` (PyAV remux, `movflags=frag_keyframe+empty_moov`)",
         "`fragmented-video` (warning); loads correctly from whole files; `build_byte_index` raises "
         "`Mp4ParseError` \"fragmented MP4 ... Remux with ffmpeg -c copy -movflags +faststart\"",
         "`ffmpeg -i IN -c copy -movflags +faststart OUT.mp4`", fragmented),
    Kind("missing MP4", "`delete_file(root, mp4)`",
         "`missing-video-file` (error) naming file, first episode, camera; loader: `DecodeError` \"FFmpeg cannot "
         "open the MP4 ... (episode 2)\"", "restore the file or re-encode the camera", missing_mp4),
    Kind("missing data Parquet", "`delete_file(root, data parquet)`",
         "`missing-data-file` (error); loader at open: `DatasetFormatError` \"data file of episode 3 is missing\"",
         "restore the file", missing_parquet),
    Kind("truncated data Parquet", "`truncate_file(root, data parquet)`",
         "`unreadable-data-file` (error) \"cannot read Parquet\"; loader at open: `DatasetFormatError` "
         "\"cannot read the rows of episode 0 ... truncated or corrupt\"", "restore the file", truncated_parquet),
    Kind("truncated episodes table", "`truncate_file(root, meta/episodes/...parquet)`",
         "`unreadable-meta` (error) naming the file; loader: `DatasetFormatError`", "restore the file",
         truncated_episodes_table),
    Kind("Parquet with a collapsed row group", "`collapse_row_groups(root, 0)` (one row group for the file)",
         "`collapsed-row-groups` (warning) \"per-episode reads will read more\"; loads correctly",
         "rewrite with one row group per episode", collapsed_row_groups),
    Kind("wrong total_frames", "`edit_info(root, total_frames=+5)`",
         "`total-frames-mismatch` (error) on meta/info.json; loads correctly (the loader uses lengths)",
         "set total_frames to the sum of lengths", wrong_total_frames),
    Kind("wrong total_episodes", "`edit_info(root, total_episodes=+1)`",
         "`total-episodes-mismatch` (error) on meta/info.json; loads correctly",
         "set total_episodes to the row count of meta/episodes", wrong_total_episodes),
    Kind("bad JSON", "`meta/info.json` cut mid-object",
         "`unreadable-meta` (error) \"meta/info.json: not valid JSON\"; loader: `DatasetFormatError`",
         "restore meta/info.json", bad_json),
    Kind("v2.1 dataset", "`edit_info(root, codebase_version='v2.1')`",
         "`unsupported-version` (error) with the converter command; loader: `DatasetFormatError`",
         "convert with LeRobot's v2.1 -> v3.0 converter", v21_dataset),
    Kind("timestamps off the fps grid", "`rewrite_data_column(root, 1, 'timestamp', ts + 0.01)`",
         "`timestamp-off-grid` (error) naming the Parquet and episode; loader: `FrameTimestampError` naming the "
         "MP4, episode, requested and nearest pts", "recompute timestamp = frame_index / fps", timestamps_off_grid),
    Kind("video span shorter than data", "`edit_episodes_column(root, 'videos/CAM/to_timestamp', 1, 3 frames short)`",
         "`video-shorter-than-data` (error) with the right from/to; loads correctly (frames are in the MP4)",
         "set to_timestamp as the finding says", video_shorter_than_data),
    Kind("MP4 holds fewer frames than its episodes", "`drop_last_frames(root, mp4, 5)` (remux without 5 samples)",
         "`video-frames-missing` (error) naming the episode whose frames are gone; loader: `FrameTimestampError`",
         "re-encode the episode's video", video_frames_missing),
    Kind("episode whose frames are out of order", "rows of episode 1 shuffled (all columns move together)",
         "`frames-out-of-order` (error) naming the Parquet and episode; loader: `DatasetFormatError` at open "
         "naming the file, episode and row", "sort the episode's rows by frame_index", frames_out_of_order),
    Kind("`index` not contiguous", "`rewrite_data_column(root, 2, 'index', index + 1)`",
         "`index-not-contiguous` (error); loader: `DatasetFormatError` at open naming the file and episode",
         "renumber `index` and rewrite meta/episodes", index_not_contiguous),
    Kind("unknown feature dtype", "`features['observation.state']['dtype'] = 'complex128'`",
         "`unknown-dtype` (error) listing the known dtypes; loads (values are still float32 in Parquet)",
         "fix the dtype in meta/info.json", unknown_dtype),
    Kind("camera with a different fps (info says dataset fps)", "`reencode_at_fps(root, mp4, keep_every=2)`",
         "`camera-fps-mismatch` (error) from the MP4 header \"runs at 15.000 fps\"; loader: "
         "`FrameTimestampError` at the first odd frame", "re-encode the camera at the dataset fps",
         camera_fps_in_file),
    Kind("camera with a different fps (info says it)", "as above plus `video.fps = 15` in info.json",
         "`camera-fps-mismatch` (error) on meta/info.json; loader: `FrameTimestampError`",
         "re-encode the camera at the dataset fps", camera_fps_in_info),
    Kind("tasks table out of order", "`swap_task_rows(root)`",
         "`tasks-out-of-order` (error); loader: `DatasetFormatError` at open (LeRobot returns wrong strings)",
         "sort meta/tasks.parquet by task_index", tasks_out_of_order),
    Kind("from/to_timestamp shifted by a frame (first episode of a file)", "`shift_video_timestamps(root, CAM, 0)`",
         "`video-span-shifted` (error) naming the episode and the right from/to; loader: `FrameTimestampError` "
         "when the file is first opened (LeRobot silently returns the next frame)",
         "set from/to_timestamp as the finding says", shifted_span(0, 1)),
    Kind("from/to_timestamp shifted by a frame (last episode of a file)", "`shift_video_timestamps(root, CAM, 1)`",
         "`video-span-shifted` (error); loader: `FrameTimestampError` naming the episode and the right from/to",
         "set from/to_timestamp as the finding says", shifted_span(1, 1)),
    Kind("from/to_timestamp shifted back by a frame", "`shift_video_timestamps(root, CAM, 4, frames=-1)`",
         "`video-span-shifted` (error); loader: `FrameTimestampError` \"asks for frame -1\"",
         "set from/to_timestamp as the finding says", shifted_span(4, -1)),
    Kind("delta_timestamps off the grid", "`MapDataset(root, delta_timestamps={'action': [0.01]})`",
         "`OptionError` naming the key, the bad delta and the nearest valid one", "use multiples of 1/fps"),
    Kind("file changed after the byte index was built", "build the index, then append bytes to one MP4",
         "`IndexStaleError` \"is N bytes but the byte index was built for M bytes. Run `lerobot-inspect index "
         "build ROOT`\"", "rebuild the byte index"),
]

# ---------------------------------------------------------------------- content, stats and header kinds (issue 14)
def nan_in_action(root: Path) -> Expect:
    rel = corrupt.edit_rows(root, 1, "action", lambda values: values * np.nan)
    return Expect("non-finite-values", rel, 1)  # the loader returns NaN, as LeRobot does


def null_in_action(root: Path) -> Expect:
    rel = corrupt.edit_rows(root, 3, "action", lambda values: values, null_frames=[2, 3])
    return Expect("null-values", rel, 3, loader=DatasetFormatError, loader_names="'action'")


def nan_timestamp(root: Path) -> Expect:
    rel = corrupt.rewrite_data_column(root, 1, "timestamp",
                                      lambda ts: np.where(np.arange(len(ts)) == 3, np.float32("nan"), ts))
    return Expect("nan-timestamp", rel, 1, loader=DatasetFormatError)


def state_spike(root: Path) -> Expect:
    rel = corrupt.spike_value(root, 2, "observation.state", 10, 3)
    return Expect("value-spike", rel, 2, severity="warning")


def frozen_action(root: Path) -> Expect:
    rel = corrupt.freeze_values(root, 1, "action", 5, 25)
    return Expect("constant-span", rel, 1, severity="warning")


def episode_rows_swapped(root: Path) -> Expect:
    rel = corrupt.swap_episode_values(root, 3, 4, ["observation.state", "action", "next.reward"])
    return Expect("episode-stats-mismatch", rel, 3)


def stats_json_missing(root: Path) -> Expect:
    return Expect("stats-json-missing", corrupt.edit_stats_json(root, lambda text: None))


def stats_json_not_json(root: Path) -> Expect:
    return Expect("stats-json-unreadable", corrupt.edit_stats_json(root, lambda text: text[: len(text) // 2]))


def _edit_stat(feature: str, stat: str, value: float) -> Callable[[str], str]:
    def edit(text: str) -> str:
        stats = json.loads(text)
        stats[feature][stat] = [value] * len(stats[feature][stat])
        return json.dumps(stats)

    return edit


def stats_json_nan(root: Path) -> Expect:
    return Expect("stats-json-not-finite", corrupt.edit_stats_json(root, _edit_stat("action", "mean", float("nan"))))


def stats_json_stale(root: Path) -> Expect:
    return Expect("stats-json-mismatch", corrupt.edit_stats_json(root, _edit_stat("observation.state", "max", 9.0)))


def state_shape_mismatch(root: Path) -> Expect:
    return Expect("feature-shape-mismatch", corrupt.edit_feature(root, "observation.state", shape=[7]),
                  loader=DatasetFormatError, loader_names="'observation.state' holds rows of shape [6]")


def task_index_negative(root: Path) -> Expect:
    rel = corrupt.rewrite_data_column(root, 1, "task_index", lambda t: np.where(np.arange(len(t)) == 0, -1, t))
    # LeRobot's iloc[-1] would return the last task for that frame, silently; the loader refuses it.
    return Expect("task-index-out-of-range", rel, 1, loader=DatasetFormatError)


def episode_ranges_swapped(root: Path) -> Expect:
    corrupt.swap_episode_ranges(root, 1, 2)
    return Expect("episode-ranges-swapped", "meta/episodes", 1, loader=DatasetFormatError,
                  loader_names=TINY_META.data_file(1))


def episode_ranges_overlap(root: Path) -> Expect:
    corrupt.edit_episodes_column(root, "dataset_from_index", 2, int(TINY_META.dataset_from_index[2]) - 2)
    return Expect("episode-ranges-overlap", "meta/episodes", 2, loader=DatasetFormatError,
                  loader_names=TINY_META.data_file(2))


def camera_size_mismatch(root: Path) -> Expect:
    corrupt.edit_feature(root, FRONT, shape=[40, 56, 3], **{"video.height": 40, "video.width": 56})
    return Expect("video-size-mismatch", TINY_META.video_file(0, FRONT), 0, FRONT, loader=DecodeError)


def camera_codec_mismatch(root: Path) -> Expect:
    corrupt.edit_feature(root, WRIST, **{"video.codec": "h264"})
    return Expect("video-codec-mismatch", TINY_META.video_file(0, WRIST), 0, WRIST)


def camera_pix_fmt_mismatch(root: Path) -> Expect:
    corrupt.edit_feature(root, WRIST, **{"video.pix_fmt": "yuv444p"})
    return Expect("video-pix-fmt-mismatch", TINY_META.video_file(0, WRIST), 0, WRIST)


KINDS += [
    Kind("NaN in a numeric feature", "`edit_rows(root, 1, 'action', v * nan)` (the whole episode)",
         "`non-finite-values` (error) naming the Parquet, episode, feature, first frame and dimension, with NaN/inf "
         "counts; loads, values NaN (as LeRobot)", "re-record or drop the episode", nan_in_action),
    Kind("null in a numeric feature", "`edit_rows(root, 3, 'action', null_frames=[2, 3])`",
         "`null-values` (error) with the count; loader: `DatasetFormatError` naming episode and column (LeRobot: "
         "\"Could not infer dtype of NoneType\")", "fill or drop the episode's rows", null_in_action),
    Kind("NaN timestamp", "`rewrite_data_column(root, 1, 'timestamp', NaN at frame 3)`",
         "`nan-timestamp` (error) naming the frame; loader: `DatasetFormatError` naming the data file, episode and "
         "frame \"timestamp nan is not a number\" (and NaN never passes the decoder's tolerance check)",
         "recompute timestamp = frame_index / fps", nan_timestamp),
    Kind("one-frame spike in state", "`spike_value(root, 2, 'observation.state', frame=10, dim=3)` (+1e5, stats "
         "recomputed)", "`value-spike` (warning) naming episode, frame and dimension; loads",
         "check the sensor; repair or drop the frame", state_spike),
    Kind("frozen state/action span", "`freeze_values(root, 1, 'action', 5, 25)` (stats recomputed)",
         "`constant-span` (warning) naming episode, first frame, span and dimensions; loads",
         "drop the episode or the frozen frames", frozen_action),
    Kind("rows of two episodes swapped (ids left right)",
         "`swap_episode_values(root, 3, 4, [state, action, reward])`",
         "`episode-stats-mismatch` (error) naming both episodes and the disagreeing stats; loads (wrong values)",
         "find the right rows; recompute the stats", episode_rows_swapped),
    Kind("stats.json missing", "`edit_stats_json(root, delete)`", "`stats-json-missing` (error); loads",
         "recompute meta/stats.json", stats_json_missing),
    Kind("stats.json not JSON", "`edit_stats_json(root, cut in half)`", "`stats-json-unreadable` (error); loads",
         "recompute meta/stats.json", stats_json_not_json),
    Kind("stats.json holds NaN", "`edit_stats_json(root, action mean = NaN)`",
         "`stats-json-not-finite` (error) naming feature/stat; loads", "recompute meta/stats.json from finite data",
         stats_json_nan),
    Kind("stats.json disagrees with the data", "`edit_stats_json(root, observation.state max = 9)`",
         "`stats-json-mismatch` (error) naming feature and stat; loads", "recompute meta/stats.json",
         stats_json_stale),
    Kind("info.json shape disagrees with the Parquet values", "`edit_feature(root, 'observation.state', shape=[7])`",
         "`feature-shape-mismatch` (error) on meta/info.json naming the feature; loader: `DatasetFormatError` "
         "naming the column, its rows' shape [6] and the declared [7]",
         "set the shape in meta/info.json", state_shape_mismatch),
    Kind("negative task_index", "`rewrite_data_column(root, 1, 'task_index', -1 at frame 0)`",
         "`task-index-out-of-range` (error) naming episode and frame; loader: `DatasetFormatError` naming the "
         "data file, episode and frame (LeRobot's `iloc[-1]` returns the LAST task, silently)",
         "set task_index to the task's row", task_index_negative),
    Kind("task_index past the tasks table", "`rewrite_data_column(root, 1, 'task_index', t + 10)`",
         "`task-index-out-of-range` (error); loader: `DatasetFormatError` naming the data file, episode and frame "
         "\"task_index 11 is outside the tasks table\" (tested in test_content_checks.py)",
         "set task_index to the task's row"),
    Kind("episode ranges swapped between two episodes", "`swap_episode_ranges(root, 1, 2)`",
         "`episode-ranges-swapped` (error) naming both episodes and their right ranges; loader: `DatasetFormatError` "
         "naming the data file and episode", "rewrite dataset_from/to_index from the lengths", episode_ranges_swapped),
    Kind("episode ranges overlap", "`edit_episodes_column(root, 'dataset_from_index', 2, from - 2)`",
         "`episode-ranges-overlap` (error) naming episodes 1 and 2; loader: `DatasetFormatError` naming the data file "
         "and episode", "rewrite dataset_from/to_index from the lengths", episode_ranges_overlap),
    Kind("MP4 size differs from info.json", "`edit_feature(root, CAM, shape=[40, 56, 3], video.height/width)`",
         "`video-size-mismatch` (error) \"the MP4 is 64x48 but meta/info.json declares 56x40\"; loader: `DecodeError` "
         "naming the MP4 and episode", "re-encode, or fix shape in info.json", camera_size_mismatch),
    Kind("MP4 codec differs from info.json", "`edit_feature(root, CAM, video.codec='h264')` (files are AV1)",
         "`video-codec-mismatch` (error) from the MP4 sample entry; loads", "fix video.codec or re-encode",
         camera_codec_mismatch),
    Kind("MP4 pixel format differs from info.json", "`edit_feature(root, CAM, video.pix_fmt='yuv444p')`",
         "`video-pix-fmt-mismatch` (error) from av1C/avcC/hvcC; loads", "fix video.pix_fmt or re-encode",
         camera_pix_fmt_mismatch),
    Kind("frozen video frames", "`freeze_video_frames(root, CAM, 1, start=10, count=8)` (re-encoded)",
         "`audit --decode`: `frozen-frames` (warning) naming episode, camera and frames 10..17 (tested in "
         "test_audit_decode.py); metadata checks cannot see pixels", "re-record or drop the frozen span"),
    # Hostile inputs: each row has its own tests in tests/test_hostile_inputs.py (real files, loopback HTTP).
    Kind("path template or camera name that leaves the root",
         "`data_path` / `video_path` = `'../outside/...'`, `'/etc/...'`, `'%2e%2e/...'`, `'data\\..\\..\\x'`; a camera "
         "named `'../../x'` (test_hostile_inputs.py)",
         "`unreadable-meta` (error); loader at open: `DatasetFormatError` \"meta/info.json: data_path '...' leaves the "
         "dataset root\"; over HTTP no request leaves the dataset's URL",
         "fix the template or rename the feature in meta/info.json"),
    Kind("path template with unknown fields, attribute access or a huge width",
         "`{chunk_index.__class__}`, `{chunk_index:>200000000}`, `{nope}`, `{chunk_index!r}`, an unbalanced `{`",
         "`unreadable-meta` (error); loader at open: `DatasetFormatError` naming the template and meta/info.json "
         "(nothing is evaluated; the process no longer aborts)",
         "use `{chunk_index:03d}`, `{file_index:03d}` and, in video_path, `{video_key}`"),
    Kind("info.json fields of the wrong type",
         "`fps: 'thirty'`, `total_frames: 'many'`, `shape: 'abc'`, `dtype: 5`, values nested 40 deep",
         "`unreadable-meta` (error); loader at open: `DatasetFormatError` \"meta/info.json: fps must be a positive "
         "integer, got 'thirty'\"", "restore meta/info.json"),
    Kind("oversized info.json", "`huge_json(root/meta/info.json, size=400 MB)`",
         "`unreadable-meta` (error) \"larger than 16 MiB\"; read no further than that (peak +800 MB before, +16 MB "
         "now)", "restore meta/info.json"),
    Kind("MP4 sample table claiming a sample per byte",
         "`inflate_sample_count(root, mp4)` (16 MiB file, 16.8 M one-byte samples, tables consistent)",
         "`unreadable-video-header` (error) \"stsz claims N samples ...\", refused before allocating (peak +899 MB "
         "before, +0 MB now); entry counts past a box's payload are refused the same way",
         "re-encode the camera"),
    Kind("thousands of top-level MP4 boxes",
         "`append_empty_boxes(root, mp4, count=3000)` (256 KiB `free` boxes, sparse)",
         "`unreadable-video-header` (error) \"more than 1024 top-level boxes\" (peak +752 MB before, +8 MB now)",
         "remux: `ffmpeg -i IN -c copy -movflags +faststart OUT.mp4`"),
    Kind("meta Parquet with empty row groups or a compression bomb",
         "`parquet_with_empty_row_groups(tasks.parquet, count=100_000)`; a tasks column inflating 160 KB to 300 MB",
         "`unreadable-meta` (error) \"the footer lists more than 10000 row groups\" / \"compression bomb\", refused "
         "from the footer (peak +193 MB / +528 MB before, +16 MB / +5 MB now)", "restore the file"),
    Kind("HTTP server answering 200 for missing files",
         "a loopback server that answers every missing path with an HTML page (or with Parquet bytes)",
         "opens correctly: an episode file counts only with Parquet's magic bytes, and probing stops after "
         "total_episodes + 1 files (before: 9,876 requests in 20 s and still probing; now 29)",
         "make the server answer 404 for missing files"),
    Kind("planted partial `index build` result",
         "a forged partial in the old predictable temp directory and in the private resume directory",
         "ignored: partials live in a 0700 per-user directory checked before use and are reused only when "
         "verified by content (digest, size + ETag/mtime or moov hash, spans recomputed); the saved index equals "
         "a fresh build", "nothing to do"),
    # Changing and misbehaving remote files, and resume states: tests in test_remote_identity.py,
    # test_remote_parquet.py and test_streaming.py (real loopback server, real DataLoader workers).
    Kind("remote MP4 replaced while it is read (same size)",
         "the served file rewritten in place mid-stream (test_remote_identity.py)",
         "`FetchError` code `file-changed` naming the file: every range after the first answer is conditional "
         "(`If-Match` on the pinned ETag, 412 from the server); every sample delivered before it is the right "
         "frame (before: 44 wrong frames, then \"truncated\")", "restart once the upload is complete"),
    Kind("byte index built from another version of an MP4",
         "index built over HTTP (it records each file's ETag), then the file replaced with one of the same size",
         "`IndexStaleError` \"has version etag=... but the byte index was built from etag=...\" naming the file",
         "`lerobot-inspect index build ROOT`"),
    Kind("Parquet over a server that errs, resets, cuts bodies, ignores Range or answers another range",
         "`FaultPlan(kinds=(kind,), every=2, paths=('.parquet',))` for each kind (test_remote_parquet.py)",
         "retried per request like the MP4 reads; rows identical to the fault-free run; past the budget "
         "`FetchError` naming the file and the cause (before: a raw fsspec traceback or \"truncated\")",
         "check the server; raise the reader's `max_attempts=`"),
    Kind("server unreachable (connection refused)", "`DatasetMeta.open('http://127.0.0.1:9/ds')`",
         "`unreachable` (error) / `FetchError` \"cannot reach the server\" (before: \"file not found\")",
         "check the URL and the network"),
    Kind("server that drips one byte at a time", "`FaultPlan(kinds=('drip',), delay_s=0.05)`",
         "each request ends at its deadline (`timeout_s`); `FetchError` names the file and the bytes received "
         "(before: \"TimeoutError: .\" after 155-301 s)", "raise `timeout_s=` or fix the link"),
    Kind("undeclared Parquet column of compressible bytes", "a 600 MB zero column not in info.json (< 2 MB on disk)",
         "never read: only declared columns are (peak growth < 200 MB; before: every column, 2.9 GB)",
         "drop the column or declare it"),
    Kind("declared column that decodes far past its shape",
         "`observation.state` rows of 131,072 floats where info.json declares 6",
         "loader: `DatasetFormatError` code `data-inflated` naming file, episode and column, from the footer",
         "restore the data file"),
    Kind("resume state from another episode selection of the same lengths",
         "`state_dict` on episodes [0, 1], `load_state_dict` on episodes [2, 3] (test_streaming.py)",
         "`ResumeError` \"another dataset or episode selection (selection_crc32 ...)\" (before: 40 samples skipped)",
         "open the same episodes= as the checkpoint"),
    Kind("`persistent_workers=True` with the streaming dataset", "a DataLoader iterated for a second epoch",
         "`OptionError` naming persistent_workers from the worker (before: epoch 0's order repeated, a resume "
         "lost 64 samples)", "use persistent_workers=False (the default)"),
    Kind("absurd resume or epoch values", "`set_epoch(10**30)`, a state with a float or 2**70",
         "`OptionError` / `ResumeError` naming the value", "pass the values the run produced"),
]
VALIDATED = [k for k in KINDS if k.make is not None]


# ---------------------------------------------------------------------- checks
def corrupted_copy(tmp_path: Path, kind: Kind) -> tuple[Path, Expect]:
    root = tmp_path / "tiny"
    shutil.copytree(TINY, root)
    assert kind.make is not None
    return root, kind.make(root)


def expected_frames(frame: int, length: int, deltas_s: list[float] | None) -> list[int]:
    if deltas_s is None:
        return [frame]
    return [int(np.clip(frame + round(d * FPS), 0, length - 1)) for d in deltas_s]


def wrong_in_sample(sample: dict, meta: DatasetMeta, deltas: dict[str, list[float]] | None) -> str | None:
    """Why a sample is wrong (frames vs its own episode/frame_index, task vs the true table), else None."""
    episode, frame = int(sample["episode_index"]), int(sample["frame_index"])
    length = int(TINY_META.lengths[episode])
    for camera_index, camera in enumerate(meta.video_keys):
        frames = sample[camera]
        frames = frames[None] if frames.ndim == 3 else frames
        want = expected_frames(frame, length, (deltas or {}).get(camera))
        try:
            got = [decode_frame_code(f) for f in frames]
        except ValueError as exc:
            return f"{camera}: unreadable frame code ({exc})"
        if [(c.camera, c.episode, c.frame) for c in got] != [(camera_index, episode, w) for w in want]:
            return f"{camera}: episode {episode} frame {frame} decoded {got}, wanted frames {want}"
    if sample["task"] != TRUE_TASKS[int(sample["task_index"])]:
        return f"task {sample['task']!r}, wanted {TRUE_TASKS[int(sample['task_index'])]!r}"
    return None


def params(kinds: list[Kind]) -> list:
    return [pytest.param(kind, id=kind.make.__name__) for kind in kinds]


@pytest.mark.parametrize("kind", params(VALIDATED))
def test_validate_reports_exactly_one_finding(kind, tmp_path):
    root, expect = corrupted_copy(tmp_path, kind)
    findings = validate(root)
    assert len(findings) == 1, f"{kind.name}: expected one {expect.code!r}, got:\n" + "\n".join(map(str, findings))
    finding = findings[0]
    assert (finding.code, finding.severity) == (expect.code, expect.severity), str(finding)
    assert finding.file is not None and finding.file.endswith(expect.file), str(finding)
    assert finding.episode == expect.episode and finding.camera == expect.camera, str(finding)
    assert finding.fix, f"{finding.code} gives no fix"
    if finding.file.endswith(".mp4") or "/data/" in finding.file:
        assert expect.episode is not None, "a finding about a data or video file must name an episode"


@pytest.mark.parametrize("kind", params(VALIDATED))
def test_loader_never_returns_a_wrong_frame(kind, tmp_path):
    root, expect = corrupted_copy(tmp_path, kind)
    seen = 0
    try:
        dataset = MapDataset(root, delta_timestamps=expect.delta_timestamps)
        for seen in range(len(dataset)):
            problem = wrong_in_sample(dataset[seen], dataset.meta, expect.delta_timestamps)
            assert problem is None, f"{kind.name}: sample {seen} is silently wrong: {problem}"
    except LeRobotInspectError as exc:
        message = str(exc)
        assert expect.loader is not None and isinstance(exc, expect.loader), \
            f"{kind.name}: {type(exc).__name__} after {seen} samples: {message}"
        assert (expect.loader_names or expect.file) in message, message
        if expect.episode is not None:
            assert f"episode {expect.episode}" in message, message
        return
    assert expect.loader is None, f"{kind.name}: loaded {seen + 1} correct samples, expected {expect.loader}"


def test_without_headers_a_shift_is_still_one_finding(tmp_path):
    """read_video_headers=False (a quick remote look) falls back to the metadata-only span check, which
    sees the overlap but cannot tell which episode moved: it names the later one."""
    root, _ = corrupted_copy(tmp_path, next(k for k in KINDS if k.make.__name__ == "shifted_span_ep0_+1"))
    findings = validate(root, read_video_headers=False)
    assert [(f.code, f.episode) for f in findings] == [("video-spans-overlap", 1)], findings


def test_fragmented_mp4_is_refused_by_the_byte_index(tmp_path):
    from lerobot_inspect.errors import Mp4ParseError
    from lerobot_inspect.video.mp4 import parse_mp4

    root, expect = corrupted_copy(tmp_path, next(k for k in KINDS if k.make is fragmented))
    with pytest.raises(Mp4ParseError, match=r"file-001\.mp4: fragmented MP4 .*faststart"):
        parse_mp4((root / expect.file).read_bytes(), name=expect.file)


def test_delta_timestamps_off_the_grid_names_the_key(tiny_root):
    with pytest.raises(OptionError, match=r"action"):
        MapDataset(tiny_root, delta_timestamps={"action": [0.0, 0.01]})


def test_file_changed_after_the_byte_index_was_built(tiny_copy):
    from lerobot_inspect.video.byte_index import VideoFileRef, build_byte_index

    meta = DatasetMeta.open(tiny_copy)
    refs = [VideoFileRef(camera=FRONT, path=rel,
                         episodes=[(int(e), *meta.video_span_s(int(e), FRONT)) for e in episodes])
            for rel, episodes in meta.episodes_in_video_file(FRONT).items()]

    def read(path: str, start: int, stop: int) -> bytes:
        with open(tiny_copy / path, "rb") as handle:
            handle.seek(start)
            return handle.read(stop - start)

    def sizes() -> dict[str, int]:
        return {ref.path: (tiny_copy / ref.path).stat().st_size for ref in refs}

    index = build_byte_index(refs, read, lambda path: (tiny_copy / path).stat().st_size, threads=1)
    index.check_fresh(sizes())  # unchanged files pass
    changed = refs[1].path
    with open(tiny_copy / changed, "ab") as handle:
        handle.write(b"\0" * 100)
    with pytest.raises(IndexStaleError, match=rf"{changed}: is \d+ bytes but the byte index was built for "
                                              r"\d+ bytes\. Run `lerobot-inspect index build ROOT`"):
        index.check_fresh(sizes())


def test_saved_index_refuses_a_changed_file_when_loaded(tiny_copy):
    """The same fault through the loader's entry point: a saved index, then a re-uploaded MP4."""
    index_io = pytest.importorskip("lerobot_inspect.video.index_io", reason="load_or_build_index not wired yet")
    meta = DatasetMeta.open(tiny_copy)
    index_io.save_index(meta, index_io.load_or_build_index(meta, threads=1))
    index_io.load_or_build_index(meta)  # unchanged files load
    changed = meta.video_file(3, WRIST)
    with open(tiny_copy / changed, "ab") as handle:
        handle.write(b"\0" * 100)
    with pytest.raises(IndexStaleError, match=rf"{changed}: is \d+ bytes but .*lerobot-inspect index build "):
        index_io.load_or_build_index(meta)


# ---------------------------------------------------------------------- the doc page
def render_doc() -> str:
    lines = [
        "# Bad inputs: what you get and how to fix it",
        "",
        "Each row is made from a real fixture copy and tested end to end in `tests/test_bad_inputs.py`",
        "(`validate` gives exactly one finding; `MapDataset` raises an error naming the file and episode,",
        "or returns only correct frames).",
        "Regenerate with `python tests/test_bad_inputs.py > docs/bad_inputs.md`.",
        "",
        "| kind | how it is made | what the user gets | fix |",
        "|---|---|---|---|",
    ]
    for kind in KINDS:
        cells = [kind.name, kind.how, kind.gets, kind.fix]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def test_doc_page_lists_every_kind():
    assert len(KINDS) >= 15
    assert DOC.read_text() == render_doc(), "docs/bad_inputs.md is stale: python tests/test_bad_inputs.py > " \
                                            "docs/bad_inputs.md"
    table = render_doc()[render_doc().index("| kind |"):].rstrip()
    assert table in (DOC.parents[1] / "README.md").read_text(), "README's bad-input table is stale: copy it from " \
                                                                 "docs/bad_inputs.md"


if __name__ == "__main__":
    sys.stdout.write(render_doc())
