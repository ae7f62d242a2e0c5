"""Decode frames at timestamps with TorchCodec, as LeRobot's torchcodec backend does, and check them.

LeRobot picks `round(ts * average_fps)` and refuses a frame whose pts is further than `tolerance_s`
from the request. We do the same (in float64, where LeRobot compares in float32, which loses the
tolerance past ~800 s of video) and name the file, episode, camera, requested and nearest
timestamps when it fails, because a shifted from/to timestamp otherwise reads as a codec bug.

Decoders are expensive to open (the demuxer reads the header), so each process keeps an LRU of
them; the cache notices a fork and starts empty in the child instead of sharing FFmpeg state.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lerobot_inspect.errors import DecodeError, FrameTimestampError, check_int
from lerobot_inspect.io._forks import ProcessLocal

__all__ = ["DecoderCache", "FrameRequest", "checked_frames", "decode_at", "decode_indices", "frame_indices_at",
           "nearest_frames"]

DEFAULT_DECODER_CACHE_SIZE = int(os.environ.get("LEROBOT_INSPECT_DECODER_CACHE_SIZE", "100"))


@dataclass(frozen=True)
class FrameRequest:
    """Where frames come from, for error messages: the file, the episode and the camera."""

    file: str
    episode: int
    camera: str


class DecoderCache(ProcessLocal):
    """Per-process LRU of open decoders keyed by whatever identifies their source.

    Random access would otherwise reopen the MP4 (and re-read its header) for every sample."""

    def __init__(self, capacity: int = DEFAULT_DECODER_CACHE_SIZE) -> None:
        self.capacity = check_int("decoder cache capacity", capacity, minimum=1)
        self._start_process_state()

    _PROCESS_FIELDS = ("_items", "_lock", "opened")

    def _init_process_state(self) -> None:
        # A forked child must not use the parent's FFmpeg state; a pickled copy starts empty too.
        self._items: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()
        self.opened = 0

    def get(self, key: Hashable, open_decoder: Callable[[], object]) -> object:
        """The cached decoder for `key`, opening it with `open_decoder()` on a miss."""
        with self._lock:
            decoder = self._items.get(key)
            if decoder is not None:
                self._items.move_to_end(key)
                return decoder
        decoder = open_decoder()
        with self._lock:
            self._items[key] = decoder
            self.opened += 1
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return decoder

    def discard(self, key: Hashable) -> None:
        """Close the decoder of `key` now, if open (a finished episode's own decoder)."""
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


def nearest_frames(frame_pts_s: np.ndarray, timestamps_s: np.ndarray) -> np.ndarray:
    """Index of the frame whose pts is nearest each timestamp (pts sorted ascending)."""
    right = np.searchsorted(frame_pts_s, timestamps_s)
    right = np.clip(right, 0, len(frame_pts_s) - 1)
    left = np.clip(right - 1, 0, len(frame_pts_s) - 1)
    use_left = np.abs(frame_pts_s[left] - timestamps_s) <= np.abs(frame_pts_s[right] - timestamps_s)
    return np.where(use_left, left, right)


def frame_indices_at(
    decoder: object,
    timestamps_s: Sequence[float] | np.ndarray,
    *,
    where: FrameRequest,
    frame_indices: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(requested seconds in the file as float64, decoder frame index of each), checked.

    `frame_indices` lets a caller that knows every frame's pts (the byte index) pick the frames
    itself; otherwise the index is `round(ts * average_fps)` as in LeRobot. Refuses a NaN request
    and an index outside the file, naming the file, episode and camera."""
    requested = np.asarray(timestamps_s, dtype=np.float64)
    if not np.isfinite(requested).all():
        k = int(np.flatnonzero(~np.isfinite(requested))[0])
        raise FrameTimestampError(
            f"{where.file}: episode {where.episode}, camera {where.camera}: timestamp {requested[k]} is not a "
            "number; the episode's timestamp column or from_timestamp in meta/episodes is NaN or infinite "
            "(`lerobot-inspect audit` names the rows)", file=where.file, episode=where.episode, camera=where.camera,
            fix="recompute timestamp = frame_index / fps and from/to_timestamp from the MP4")
    num_frames = len(decoder)  # type: ignore[arg-type]
    if frame_indices is None:
        fps = decoder.metadata.average_fps  # type: ignore[attr-defined]
        frame_indices = np.rint(requested * fps).astype(np.int64)
    frame_indices = np.asarray(frame_indices, dtype=np.int64)
    outside = np.flatnonzero((frame_indices < 0) | (frame_indices >= num_frames))
    if outside.size:
        k = int(outside[0])
        raise FrameTimestampError(
            f"{where.file}: episode {where.episode}, camera {where.camera}: timestamp "
            f"{requested[k]:.6f}s asks for frame {int(frame_indices[k])} but the file has {num_frames} "
            "frames; the episode's from/to_timestamp in meta/episodes point past the video "
            "(re-encode the episode or fix meta/episodes)"
        )
    return requested, frame_indices


def decode_indices(decoder: object, indices: Sequence[int], *, where: FrameRequest,
                   ranges: bool = False) -> tuple[torch.Tensor, np.ndarray]:
    """(uint8 frames (N, C, H, W), pts seconds (N,)) of sorted distinct `indices`, FFmpeg errors in our words.

    `ranges=True` decodes each run of consecutive indices with one `get_frames_in_range` call (a
    sequential walk, no seek per frame); otherwise one `get_frames_at` call for all of them."""
    wanted = [int(i) for i in indices]
    try:
        if not ranges:
            batch = decoder.get_frames_at(indices=wanted)  # type: ignore[attr-defined]
            return batch.data, batch.pts_seconds.numpy().astype(np.float64)
        data, pts = [], []
        for start, stop in _runs(wanted):
            batch = decoder.get_frames_in_range(start=start, stop=stop)  # type: ignore[attr-defined]
            data.append(batch.data)
            pts.append(batch.pts_seconds.numpy().astype(np.float64))
        if len(data) == 1:
            return data[0], pts[0]
        return torch.cat(data), np.concatenate(pts)
    except (RuntimeError, ValueError) as exc:
        raise DecodeError(
            f"{where.file}: episode {where.episode}, camera {where.camera}: FFmpeg could not decode frames "
            f"{wanted[:8]} (its message is in the chained exception). The MP4 is truncated or "
            "corrupt: download it again or re-encode the camera; `lerobot-inspect audit` lists such files"
        ) from exc


def _runs(sorted_indices: Sequence[int]) -> list[tuple[int, int]]:
    """[start, stop) runs of consecutive integers in a sorted list."""
    runs: list[tuple[int, int]] = []
    for index in sorted_indices:
        if runs and index == runs[-1][1]:
            runs[-1] = (runs[-1][0], index + 1)
        else:
            runs.append((index, index + 1))
    return runs


def checked_frames(data: torch.Tensor, pts: np.ndarray, requested: np.ndarray, *, where: FrameRequest,
                   tolerance_s: float, return_uint8: bool) -> torch.Tensor:
    """Frames whose pts lie within `tolerance_s` of the request, as uint8 or float32 in [0, 1].

    `data` and `pts` are one decoded frame per requested timestamp (duplicates included)."""
    error = np.abs(pts - requested)
    bad = np.flatnonzero(~(error <= tolerance_s))  # a NaN request or pts never passes
    if bad.size:
        k = int(bad[0])
        raise FrameTimestampError(
            f"{where.file}: episode {where.episode}, camera {where.camera}: requested timestamp "
            f"{requested[k]:.6f}s but the nearest frame is at {pts[k]:.6f}s "
            f"(off by {error[k]:.6f}s > tolerance_s={tolerance_s}). The episode's from/to_timestamp in "
            "meta/episodes disagree with the video; fix them, or raise tolerance_s if the video is "
            "variable-frame-rate"
        )
    if return_uint8:
        return data
    return data.to(torch.float32) / 255.0


def decode_at(
    decoder: object,
    timestamps_s: Sequence[float] | np.ndarray,
    *,
    where: FrameRequest,
    tolerance_s: float = 1e-4,
    return_uint8: bool = False,
    frame_indices: np.ndarray | None = None,
) -> torch.Tensor:
    """Frames (N, C, H, W) at `timestamps_s` (seconds in the file), float32 in [0, 1] or uint8.

    `frame_indices` lets a caller that knows every frame's pts (the byte index) pick the frames
    itself; otherwise the index is `round(ts * average_fps)` as in LeRobot. Duplicate timestamps
    (padded window slots) are decoded once."""
    requested, frame_indices = frame_indices_at(decoder, timestamps_s, where=where, frame_indices=frame_indices)
    unique, inverse = np.unique(frame_indices, return_inverse=True)
    data, pts = decode_indices(decoder, unique.tolist(), where=where)
    return checked_frames(data[torch.from_numpy(inverse)], pts[inverse], requested, where=where,
                          tolerance_s=tolerance_s, return_uint8=return_uint8)
