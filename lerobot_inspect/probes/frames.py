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

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from lerobot_inspect.errors import DecodeError, OptionError

__all__ = ["frame_parity", "frame_rows", "load_frame"]

POSITIONS = ("first", "middle", "last")


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


def _code(frame: np.ndarray) -> Any:
    from data_fixtures import decode_frame_code

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
    equals the next episode's first frame in the same file), stream_max_abs_diff (NaN without
    `stream_samples`, which are samples from another loader, matched by their `index`)."""
    meta = dataset.meta
    cameras = list(cameras) if cameras is not None else list(meta.video_keys)
    unknown = [c for c in cameras if c not in meta.video_keys]
    if unknown:
        raise OptionError(f"cameras {unknown} are not video keys; choose among {meta.video_keys}")
    episodes = [int(e) for e in (dataset.selected_episodes if episodes is None else episodes)]
    wanted_rows = {p_row for ep in episodes for p_row in frame_rows(dataset, ep, positions).values()}
    stream: dict[int, Mapping[str, Any]] = {}
    if stream_samples is not None:
        wanted_index = {int(dataset.index[r]) for r in wanted_rows}
        for sample in stream_samples:
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
                }
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
                sample = stream.get(record["index"])
                if sample is not None and camera in sample:
                    other = np.asarray(sample[camera].float() if hasattr(sample[camera], "float") else sample[camera])
                    if other.ndim == 4:
                        other = other[0]
                    other = other * 255.0 if other.max() <= 1.0 else other
                    record["stream_max_abs_diff"] = float(
                        np.abs(other.transpose(1, 2, 0) - frame.astype(np.float32)).max())
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
