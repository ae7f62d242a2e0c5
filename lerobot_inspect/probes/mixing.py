"""Shuffle-quality references: LeRobot's frame reservoir over a sequential stream, in one pure function.

LeRobot's `StreamingLeRobotDataset` (0.6.x, LEROBOT_V3_FORMAT.md section 4) shuffles by pushing
frames into a reservoir of `buffer_size` (default 1000) and yielding a random slot per new frame.
Over a stream that reads episodes in order, a batch can only mix the episodes whose frames are
in the reservoir at that moment, which is what `randomness_fraction` (from `pool`) measures
against our episode pool and the `datasets` pipeline.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lerobot_inspect.errors import OptionError, check_int
from lerobot_inspect.loaders.datasets_pipeline import reservoir_shuffle
from lerobot_inspect.loaders.pool import randomness_fraction

__all__ = ["batch_episode_ids", "loader_batches", "randomness_fraction", "reservoir_shuffle_order"]


def reservoir_shuffle_order(num_frames: int, *, buffer_size: int, seed: int) -> np.ndarray:
    """Order (int64 positions 0..num_frames-1) in which a reservoir of `buffer_size` yields a
    sequential stream of `num_frames` frames: a permutation, pure in (num_frames, buffer_size, seed).

    The same reservoir code as `DatasetsPipeline`'s frame buffer, so both references agree."""
    check_int("num_frames", num_frames)
    rng = np.random.default_rng(seed)
    return np.fromiter(reservoir_shuffle(range(int(num_frames)), buffer_size=buffer_size, rng=rng),
                       dtype=np.int64, count=int(num_frames))


def batch_episode_ids(episode_ids: np.ndarray, *, batch_size: int) -> np.ndarray:
    """A stream's episode ids cut into full batches, (n_batches, batch_size); the short tail is
    dropped (as `drop_last=True`), so every batch has the same denominator."""
    check_int("batch_size", batch_size, minimum=1)
    ids = np.asarray(episode_ids)
    n_batches = len(ids) // batch_size
    if n_batches == 0:
        raise OptionError(f"{len(ids)} samples make no full batch of batch_size={batch_size}")
    return ids[: n_batches * batch_size].reshape(n_batches, batch_size)


def loader_batches(dataset: Any, *, batch_size: int, num_workers: int = 0, max_batches: int = 32) -> pd.DataFrame:
    """Draw up to `max_batches` full batches from `torch.utils.data.DataLoader(dataset, batch_size=...,
    num_workers=...)` and return one row per sample: batch, position, episode_index, index.

    The real loader in the real DataLoader (worker processes included), because batch composition
    depends on how the DataLoader interleaves its workers, which a schedule read off the dataset
    does not show. A short final batch is left out so `randomness_fraction` has one denominator."""
    from torch.utils.data import DataLoader

    for name, value, minimum in (("batch_size", batch_size, 1), ("num_workers", num_workers, 0),
                                 ("max_batches", max_batches, 1)):
        check_int(name, value, minimum=minimum)
    loader = DataLoader(dataset, batch_size=int(batch_size), num_workers=int(num_workers))
    parts = []
    iterator = iter(loader)
    try:
        for batch_number, batch in enumerate(iterator):
            if batch_number >= max_batches:
                break
            episodes = np.asarray(batch["episode_index"]).reshape(-1)
            if len(episodes) < batch_size:
                break
            parts.append(pd.DataFrame({"batch": batch_number, "position": np.arange(len(episodes)),
                                       "episode_index": episodes.astype(np.int64),
                                       "index": np.asarray(batch["index"]).reshape(-1).astype(np.int64)}))
    finally:
        del iterator  # shuts worker processes down now, not at garbage collection
    if not parts:
        raise OptionError(f"{dataset!r} yields no full batch of batch_size={batch_size}; lower the batch size")
    return pd.concat(parts, ignore_index=True)
