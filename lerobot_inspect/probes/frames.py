"""Frames probe: decode chosen frames through the loader and say whether they are the right ones.

A one-frame shift of an episode's from/to_timestamp does not raise: the decoder finds the
neighbouring frame within tolerance and training silently gets frame f+1 for frame f. Two signals
expose it:
- on a generated fixture every frame carries a code (camera, episode, frame), so the probe reads
  it back and reports the offset between the frame asked for and the frame received;
- on any dataset, the streaming loader's frame for the same `index` must equal the map-style one
  (they share the decode path, so a difference is a loader bug), and the last frame of an
  episode must differ from the first frame of the next episode in the same MP4.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lerobot_inspect.errors import DecodeError, LeRobotInspectError, OptionError
from lerobot_inspect.probes.framecode import decode_frame_code

__all__ = ["frame_parity", "frame_rows", "load_frame", "sample_episodes", "shift_video_span", "shifted_copy",
           "stream_parity_samples"]

POSITIONS = ("first", "middle", "last")


def sample_episodes(episodes: Sequence[int], count: int, *, include: Iterable[int] = ()) -> list[int]:
    """Up to `count` episodes spread evenly over `episodes` (first and last included), plus every
    episode of `include` that is in `episodes`; all of them when there are no more than `count`.

    The frames page decodes first/middle/last frames and streams whole episodes, which costs
    seconds per hundred episodes: on 10,000 episodes it checks an even spread and says so (the
    audit's decode check covers every episode)."""
    if count < 1:
        raise OptionError(f"count={count}; check at least one episode")
    chosen = [int(e) for e in episodes]
    if len(chosen) <= count:
        return chosen
    picks = {chosen[int(i)] for i in np.rint(np.linspace(0, len(chosen) - 1, count))}
    present = set(chosen)
    picks |= {int(e) for e in include if int(e) in present}
    return sorted(picks)


def frame_rows(dataset, episode: int, positions: Sequence[str] = POSITIONS) -> dict[str, int]:
    """Dataset rows of an episode's first / middle / last frame (the ones shifts break first)."""
    bad = [p for p in positions if p not in POSITIONS]
    if bad:
        raise OptionError(f"positions={list(positions)}; choose among {POSITIONS}")
    rows = np.flatnonzero(dataset.episode_of_row == int(episode))
    if rows.size == 0:
        raise OptionError(f"episode {episode} is not loaded by this dataset; choose among "
                          f"{[int(e) for e in dataset.selected_episodes][:20]}")
    pick = {"first": rows[0], "middle": rows[rows.size // 2], "last": rows[-1]}
    return {p: int(pick[p]) for p in positions}


def load_frame(dataset, row: int, camera: str) -> np.ndarray:
    """One decoded frame (H, W, C) uint8 of `camera` at a dataset row, through the loader's reader."""
    episode = int(dataset.episode_of_row[row])
    frames = dataset.video.frames(episode, camera, [float(dataset.timestamp[row])])
    frame = frames[0]
    if frame.dtype.is_floating_point:
        frame = (frame * 255.0).round().clamp(0, 255).to(dtype=__import__("torch").uint8)
    return frame.permute(1, 2, 0).numpy()


def _hwc_uint8(frame: Any) -> np.ndarray:
    """A sample's camera tensor ((1,) C, H, W; uint8 or float in [0, 1]) as H, W, C uint8."""
    array = frame.detach().cpu().numpy() if hasattr(frame, "detach") else np.asarray(frame)
    if array.ndim == 4:
        array = array[0]
    if np.issubdtype(array.dtype, np.floating):
        array = np.clip(np.round(array * 255.0), 0, 255)
    return array.transpose(1, 2, 0).astype(np.uint8)


def _code(frame: np.ndarray) -> Any:
    try:
        return decode_frame_code(frame)
    except ValueError:
        return None


def frame_parity(
    dataset,
    *,
    episodes: Sequence[int] | None = None,
    cameras: Sequence[str] | None = None,
    positions: Sequence[str] = POSITIONS,
    stream_samples: Iterable[Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    """One row per (episode, position, camera): what was asked, what the frame says it is.

    Columns: episode_index, position, frame_index, index, camera, timestamp_s, error (decode error
    text or ""), code_episode / code_frame (-1 when the frame carries no fixture code),
    frame_offset (code_frame - frame_index when the code names the same episode, else NaN),
    code_ok (True/False, or None for non-fixture data), next_episode_identical (the last frame
    equals the next episode's first frame in the same file), and from `stream_samples` (samples of
    another loader, matched by their `index`; see `stream_parity_samples`): stream_timestamp_s,
    stream_code_episode / stream_code_frame, stream_max_abs_diff (largest pixel difference to the
    map-style frame, NaN when either side has no frame) and stream_error (why the stream has no
    frame for this row, "" otherwise)."""
    meta = dataset.meta
    cameras = list(cameras) if cameras is not None else list(meta.video_keys)
    unknown = [c for c in cameras if c not in meta.video_keys]
    if unknown:
        raise OptionError(f"cameras {unknown} are not video keys; choose among {meta.video_keys}")
    episodes = [int(e) for e in (dataset.selected_episodes if episodes is None else episodes)]
    wanted_rows = {p_row for ep in episodes for p_row in frame_rows(dataset, ep, positions).values()}
    stream: dict[int, Mapping[str, Any]] = {}
    stream_errors: dict[int, str] = {}
    if stream_samples is not None:
        wanted_index = {int(dataset.index[r]) for r in wanted_rows}
        for sample in stream_samples:
            if "stream_error" in sample:
                stream_errors[int(sample["episode_index"])] = str(sample["stream_error"])
                continue
            index = int(sample["index"])
            if index in wanted_index:
                stream[index] = sample
    records = []
    for episode in episodes:
        for position, row in frame_rows(dataset, episode, positions).items():
            frame_index = row - int(np.flatnonzero(dataset.episode_of_row == episode)[0])
            for camera in cameras:
                camera_position = meta.video_keys.index(camera)
                record: dict[str, Any] = {
                    "episode_index": episode, "position": position, "frame_index": frame_index,
                    "index": int(dataset.index[row]), "camera": camera,
                    "timestamp_s": float(dataset.timestamp[row]), "error": "", "code_episode": -1,
                    "code_frame": -1, "frame_offset": np.nan, "code_ok": None,
                    "next_episode_identical": None, "stream_max_abs_diff": np.nan,
                    "stream_timestamp_s": np.nan, "stream_code_episode": -1, "stream_code_frame": -1,
                    "stream_error": stream_errors.get(episode, ""),
                }
                sample = stream.get(record["index"])
                streamed = None
                if sample is not None and camera in sample:
                    streamed = _hwc_uint8(sample[camera])
                    record["stream_timestamp_s"] = float(sample["timestamp"])
                    stream_code = _code(streamed)
                    if stream_code is not None:
                        record.update(stream_code_episode=stream_code.episode, stream_code_frame=stream_code.frame)
                elif stream_samples is not None and not record["stream_error"]:
                    record["stream_error"] = "the stream did not yield this frame"
                try:
                    frame = load_frame(dataset, row, camera)
                except DecodeError as exc:
                    record["error"] = str(exc)
                    records.append(record)
                    continue
                code = _code(frame)
                if code is not None:
                    record.update(code_episode=code.episode, code_frame=code.frame,
                                  code_ok=(code.camera, code.episode, code.frame)
                                  == (camera_position, episode, frame_index))
                    if code.episode == episode:
                        record["frame_offset"] = float(code.frame - frame_index)
                if position == "last":
                    record["next_episode_identical"] = _same_as_next(dataset, episode, camera, frame)
                if streamed is not None:
                    record["stream_max_abs_diff"] = float(
                        np.abs(streamed.astype(np.float32) - frame.astype(np.float32)).max())
                records.append(record)
    return pd.DataFrame(records)


def _same_as_next(dataset, episode: int, camera: str, last_frame: np.ndarray) -> bool | None:
    """Whether an episode's last frame is pixel-identical to the next episode's first frame in the
    same MP4: a from/to shift makes them the same decoded frame. None when there is no next episode
    in the file or it is not loaded."""
    meta = dataset.meta
    for episodes_in_file in meta.episodes_in_video_file(camera).values():
        positions = np.flatnonzero(episodes_in_file == episode)
        if positions.size and positions[0] + 1 < len(episodes_in_file):
            following = int(episodes_in_file[positions[0] + 1])
            rows = np.flatnonzero(dataset.episode_of_row == following)
            if rows.size == 0:
                return None
            try:
                first = load_frame(dataset, int(rows[0]), camera)
            except DecodeError:
                return None
            return bool(np.array_equal(first, last_frame))
    return None


def stream_parity_samples(
    root: Any,
    *,
    pipeline: str = "pool",
    seed: int = 0,
    episodes: Sequence[int] | None = None,
    isolate: Sequence[int] = (),
    pool_size: int = 4,
) -> Iterator[Mapping[str, Any]]:
    """Samples of `open_stream(root, pipeline=...)` (uint8 frames) for `frame_parity`.

    The stream is what training iterates, so a refusal (a loader error) stops it; episodes in
    `isolate` (those the map-style loader already refused) are therefore streamed one at a time,
    after the others, and a refusal is yielded as {"episode_index": e, "stream_error": message}
    instead of ending the comparison for every other episode."""
    from lerobot_inspect.loaders.streaming import open_stream

    chosen = [int(e) for e in (range(_meta_of(root).num_episodes) if episodes is None else episodes)]
    alone = [e for e in chosen if e in {int(i) for i in isolate}]
    together = [e for e in chosen if e not in alone]
    options = {"pipeline": pipeline, "seed": seed, "pool_size": pool_size, "return_uint8": True}
    if together:
        yield from open_stream(root, episodes=together, **options)
    for episode in alone:
        try:
            yield from open_stream(root, episodes=[episode], **options)
        except LeRobotInspectError as exc:
            yield {"episode_index": episode, "stream_error": f"{type(exc).__name__}: {exc}"}


def _meta_of(root: Any) -> Any:
    from lerobot_inspect.format import DatasetMeta

    return root if isinstance(root, DatasetMeta) else DatasetMeta.open(root)


# ---- the demo's seeded fault ---------------------------------------------------------------------------
def shift_video_span(root: str | Path, camera: str, episode: int, *, frames: int = 1) -> str:
    """Move one episode's `videos/<camera>/from_timestamp` and `to_timestamp` by whole frames, in
    place, in a local dataset; return the meta/episodes file rewritten (relative to `root`).

    The decoder then finds a neighbour's frames within tolerance, which is the silent failure the
    audit and the frames page must catch. Row groups of 10 episodes, as LeRobot writes them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = Path(root)
    fps = json.loads((root / "meta" / "info.json").read_text())["fps"]
    for path in sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet")):
        table = pq.read_table(path)
        rows = table.column("episode_index").to_pylist()
        if int(episode) not in rows:
            continue
        row = rows.index(int(episode))
        for side in ("from", "to"):
            column = f"videos/{camera}/{side}_timestamp"
            if column not in table.column_names:
                raise OptionError(f"{path}: no column {column!r}; is {camera!r} a video key of {root}?")
            values = table.column(column).to_pylist()
            values[row] = values[row] + frames / fps
            position = table.column_names.index(column)
            table = table.set_column(position, table.schema.field(position), pa.array(values, type=pa.float64()))
        pq.write_table(table, path, row_group_size=10)
        return str(path.relative_to(root))
    raise OptionError(f"episode {episode} is not in {root}/meta/episodes; choose an episode of the dataset")


def shifted_copy(root: Any, episode: int, *, camera: str | None = None, frames: int = 1) -> str:
    """A temporary copy of a local dataset whose `camera` (default: the first video key) span of
    `episode` is `frames` late: the fault the frames page seeds on purpose to show it caught."""
    from fsspec.implementations.local import LocalFileSystem

    meta = _meta_of(root)
    if not isinstance(meta.fs, LocalFileSystem):
        raise OptionError(f"{meta.root}: the shifted copy is made of a local dataset; pass shift_episode=-1 "
                          "for a remote root")
    copy = Path(tempfile.mkdtemp(prefix="lerobot_inspect_shifted_")) / "dataset"
    shutil.copytree(str(meta.root).removeprefix("file://"), copy)
    shift_video_span(copy, camera or meta.video_keys[0], episode, frames=frames)
    return str(copy)

