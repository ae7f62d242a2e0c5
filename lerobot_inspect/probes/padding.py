"""Padding probe: where `<key>_is_pad` is true, per episode, key and window slot.

Computed with the loader's own window function (`windows.query_indices`) over the loader's own
episode bounds, so the table shows what training receives. A correct dataset pads only at episode
edges: a slot with offset d < 0 pads exactly the first min(length, -d) frames of every episode, and
d > 0 exactly the last min(length, d). The `at_edges` column checks that invariant row by row.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from lerobot_inspect.errors import OptionError
from lerobot_inspect.loaders.windows import query_indices

__all__ = ["padding_frames", "padding_table"]


def _episodes(dataset, episodes: Sequence[int] | None) -> list[int]:
    chosen = [int(e) for e in (dataset.selected_episodes if episodes is None else episodes)]
    missing = sorted(set(chosen) - {int(e) for e in dataset.selected_episodes})
    if missing:
        raise OptionError(f"episodes {missing[:10]} are not loaded by this dataset; choose among "
                          f"{[int(e) for e in dataset.selected_episodes][:20]}")
    return chosen


def _episode_windows(dataset, episode: int, deltas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    start = int(dataset.meta.dataset_from_index[episode])
    stop = int(dataset.meta.dataset_to_index[episode])
    return query_indices(np.arange(start, stop), start, stop, deltas)


def padding_table(dataset, *, episodes: Sequence[int] | None = None) -> pd.DataFrame:
    """One row per (episode, key, slot): how many frames pad that slot and where.

    Columns: episode_index, key, slot, offset_frames, delta_s, length, padded (count),
    first_padded / last_padded (frame_index within the episode, -1 if none), expected_padded,
    at_edges (padding is exactly the edge frames the offset reaches past). An empty table means the
    dataset has no delta_timestamps."""
    fps = dataset.meta.fps
    rows = []
    for episode in _episodes(dataset, episodes):
        length = int(dataset.meta.lengths[episode])
        for key, deltas in dataset.deltas.items():
            _, is_pad = _episode_windows(dataset, episode, deltas)
            for slot, offset in enumerate(deltas.tolist()):
                padded = np.flatnonzero(is_pad[:, slot])
                reach = min(length, abs(offset))
                expected = (np.arange(reach) if offset < 0 else np.arange(length - reach, length)
                            if offset > 0 else np.arange(0))
                rows.append({
                    "episode_index": episode, "key": key, "slot": slot, "offset_frames": int(offset),
                    "delta_s": offset / fps, "length": length, "padded": int(padded.size),
                    "first_padded": int(padded[0]) if padded.size else -1,
                    "last_padded": int(padded[-1]) if padded.size else -1,
                    "expected_padded": int(expected.size),
                    "at_edges": bool(np.array_equal(padded, expected)),
                })
    columns = ["episode_index", "key", "slot", "offset_frames", "delta_s", "length", "padded",
               "first_padded", "last_padded", "expected_padded", "at_edges"]
    return pd.DataFrame(rows, columns=columns)


def padding_frames(dataset, episode: int) -> pd.DataFrame:
    """One row per (frame, key, slot) of one episode: the clamped query frame and is_pad.

    The timeline chart draws this; `query_frame` shows that a padded slot repeats the boundary
    frame (LeRobot clamps, it does not zero)."""
    (episode,) = _episodes(dataset, [episode])
    start = int(dataset.meta.dataset_from_index[episode])
    parts = []
    for key, deltas in dataset.deltas.items():
        query, is_pad = _episode_windows(dataset, episode, deltas)
        n_frames, n_slots = is_pad.shape
        parts.append(pd.DataFrame({
            "episode_index": episode,
            "key": key,
            "frame_index": np.repeat(np.arange(n_frames), n_slots),
            "slot": np.tile(np.arange(n_slots), n_frames),
            "offset_frames": np.tile(deltas, n_frames),
            "query_frame": (query - start).ravel(),
            "is_pad": is_pad.ravel(),
        }))
    if not parts:
        return pd.DataFrame(columns=["episode_index", "key", "frame_index", "slot", "offset_frames",
                                     "query_frame", "is_pad"])
    return pd.concat(parts, ignore_index=True)
