"""delta_timestamps -> per-frame query indices and `<key>_is_pad` masks, exactly as LeRobot computes them.

One implementation serves the map-style and the streaming datasets, so a frame's window cannot
differ between the two. Pure numpy: no files, no clocks, no RNG.

LeRobot's rules (LEROBOT_V3_FORMAT.md section 2):
- a delta d (seconds) is valid at `fps` when `abs(d*fps - round(d*fps)) / fps <= tolerance_s`; it
  becomes the frame offset `round(d*fps)` (Python's round);
- the query for absolute frame `abs` of an episode spanning [from, to) is `abs + offset` clamped
  to [from, to-1], and `is_pad` is true exactly where the unclamped index left the episode, so a
  padded slot repeats the boundary frame rather than holding zeros.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from lerobot_inspect.errors import OptionError, check_int

__all__ = ["delta_indices", "needed_frames", "query_indices"]


def delta_indices(
    delta_timestamps: Mapping[str, Sequence[float]] | None,
    fps: int,
    *,
    tolerance_s: float = 1e-4,
) -> dict[str, np.ndarray]:
    """Turn `delta_timestamps` (seconds) into int64 frame offsets per key, keeping the key order.

    Validation matches LeRobot's (a delta must sit within `tolerance_s` of a multiple of 1/fps)
    so a config that LeRobot accepts is accepted here with the same offsets, and one it rejects
    is rejected, with the nearest valid delta in the message. `None` means no windows: `{}`.

    One deliberate difference: an empty delta list is refused. LeRobot would build a zero-length
    window and a `(0,)` `_is_pad` mask, which no policy can use and which hides a config typo.
    Keys are not checked against the dataset's features here (LeRobot does not either; the
    dataset checks them when it knows its columns).
    """
    if delta_timestamps is None:
        return {}
    check_int("fps (info.json)", fps, minimum=1)
    if not (isinstance(tolerance_s, int | float) and math.isfinite(tolerance_s) and tolerance_s >= 0):
        raise OptionError(f"tolerance_s={tolerance_s!r}; it must be a finite number >= 0 (LeRobot's default 1e-4)")
    fps = int(fps)
    offsets: dict[str, np.ndarray] = {}
    for key, deltas in delta_timestamps.items():
        if isinstance(deltas, str | bytes) or not isinstance(deltas, Sequence | np.ndarray):
            raise OptionError(
                f"delta_timestamps[{key!r}]={deltas!r}; give a list of seconds, e.g. [-1/{fps}, 0.0]")
        if len(deltas) == 0:
            raise OptionError(
                f"delta_timestamps[{key!r}] is empty; give at least one delta (0.0 for the current frame) "
                "or leave the key out")
        key_offsets = []
        for delta in deltas:
            delta_f = float(delta)
            if not math.isfinite(delta_f):
                raise OptionError(f"delta_timestamps[{key!r}] contains {delta!r}; deltas must be finite seconds")
            frames = delta_f * fps
            nearest = round(frames)
            if abs(frames - nearest) / fps > tolerance_s:
                raise OptionError(
                    f"delta_timestamps[{key!r}] contains {delta_f!r} s, which is not a multiple of 1/fps at "
                    f"fps={fps} within tolerance_s={tolerance_s}; the nearest valid delta is "
                    f"{nearest / fps!r} s ({nearest} frames)")
            key_offsets.append(nearest)
        offsets[key] = np.asarray(key_offsets, dtype=np.int64)
    return offsets


def query_indices(
    abs_index: np.ndarray | int,
    ep_from: np.ndarray | int,
    ep_to: np.ndarray | int,
    deltas: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Clamped query indices and pad masks for N frames and k offsets: two (N, k) arrays.

    `abs_index`, `ep_from` and `ep_to` broadcast against each other (a scalar gives N = 1);
    [from, to) is the frame's episode in the global `index` space. The query is clamped to
    [from, to-1] and `is_pad` is true exactly where `abs + d` is outside [from, to), which is
    LeRobot's `{key}_is_pad`. A frame outside its own episode is a caller bug and is refused:
    silently clamping it would load another episode's neighbours.
    """
    absolute = np.atleast_1d(np.asarray(abs_index, dtype=np.int64))
    start = np.atleast_1d(np.asarray(ep_from, dtype=np.int64))
    stop = np.atleast_1d(np.asarray(ep_to, dtype=np.int64))
    offsets = np.asarray(deltas, dtype=np.int64)
    if offsets.ndim != 1:
        raise OptionError(f"deltas has shape {offsets.shape}; pass one key's 1-D offsets from delta_indices()")
    absolute, start, stop = np.broadcast_arrays(absolute, start, stop)
    if absolute.ndim != 1:
        raise OptionError(f"abs_index/ep_from/ep_to broadcast to shape {absolute.shape}; pass 1-D arrays")
    outside = (absolute < start) | (absolute >= stop)
    if outside.any():
        bad = int(np.flatnonzero(outside)[0])
        raise OptionError(
            f"frame {int(absolute[bad])} is not inside its episode [{int(start[bad])}, {int(stop[bad])}) "
            f"(position {bad}); pass the frame's own episode bounds (dataset_from_index, dataset_to_index)")
    unclamped = absolute[:, None] + offsets[None, :]
    is_pad = (unclamped < start[:, None]) | (unclamped >= stop[:, None])
    query = np.clip(unclamped, start[:, None], stop[:, None] - 1)
    return query, is_pad


def needed_frames(query: np.ndarray) -> np.ndarray:
    """Sorted unique frame indices a set of windows reads, so each is fetched/decoded once.

    Windows of neighbouring frames overlap heavily (and padded slots repeat the boundary frame);
    the streaming loader decodes this union once instead of once per (sample, delta).
    """
    return np.unique(np.asarray(query, dtype=np.int64).ravel())
