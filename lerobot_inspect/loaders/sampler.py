"""EpisodeAwareSampler: LeRobot's frame sampler with O(num_episodes) memory and exact resume.

Behaviour matches LeRobot's `EpisodeAwareSampler` (lerobot 0.6.1 / HEAD):
- episodes are chosen with a mask, so `episode_indices_to_use` order and duplicates do not matter:
  frames come in dataset order; `drop_n_first_frames` / `drop_n_last_frames` trim every episode
  and an episode left empty is skipped with a warning naming it;
- the shuffled order of epoch `e` is `torch.randperm(n, generator=torch.Generator().manual_seed(
  s))` with `s = int(np.random.SeedSequence([seed, e]).generate_state(1, np.uint64)[0])`. The
  full uint64 is passed unchanged: `manual_seed` accepts any value below 2**64 (checked on torch
  2.13), and the CPU Mersenne twister only uses its low 32 bits, so no reduction is needed and
  none is applied (a reduction would change the order versus LeRobot);
- `__iter__` advances the epoch when it is called, not when the epoch ends, and resets the start
  index to 0: after `iter(sampler)`, `state_dict()` already describes the *next* epoch. A
  mid-epoch checkpoint therefore comes from `compute_sampler_state(step, ...)`, not from the
  live sampler.

Memory: only per-episode starts and cumulative lengths are kept. A position maps to a frame
with `np.searchsorted`, so shuffle=False never holds per-frame arrays; shuffle=True holds the one
int64 permutation `torch.randperm` returns.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

from lerobot_inspect.errors import OptionError, ResumeError, check_int

__all__ = ["EpisodeAwareSampler", "compute_sampler_state", "epoch_seed"]

logger = logging.getLogger(__name__)

# Shuffled positions are mapped to frames this many at a time: vectorised, bounded memory.
_CHUNK = 1 << 16


def epoch_seed(seed: int, epoch: int) -> int:
    """LeRobot's per-epoch torch seed: a uint64 from SeedSequence([seed, epoch]).

    Seeding with the pair (not seed + epoch) keeps (seed=1, epoch=0) and (seed=0, epoch=1) apart.
    """
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, np.uint64)[0])


class EpisodeAwareSampler(Sampler[int]):
    """Frame indices of the chosen episodes, optionally shuffled per epoch from (seed, epoch).

    Indices are positions in the dataset (LeRobot's `dataset_from_index` / `dataset_to_index`
    space). `len()` is the number of kept frames; during a resumed epoch it still reports the
    full epoch, as LeRobot does.

    Epoch bookkeeping, mirroring LeRobot: `__iter__` iterates `(epoch, start_index)` and at once
    sets `epoch += 1, start_index = 0`. `set_epoch(e)` changes only the epoch (the start index is
    kept, so `load_state_dict` then `set_epoch` of the same epoch still resumes mid-epoch). Drive
    epochs through one mechanism: a wrapper that calls `set_epoch` before every `iter()`
    (accelerate's `DataLoaderShard` calls `set_epoch(self.iteration)`) overrides a loaded epoch,
    so set that wrapper's epoch counter to `state["epoch"]` as well when resuming.
    """

    def __init__(
        self,
        dataset_from_indices: Sequence[int] | np.ndarray,
        dataset_to_indices: Sequence[int] | np.ndarray,
        *,
        episode_indices_to_use: Sequence[int] | np.ndarray | None = None,
        drop_n_first_frames: int = 0,
        drop_n_last_frames: int = 0,
        shuffle: bool = False,
        seed: int = 0,
    ) -> None:
        drop_first = check_int("drop_n_first_frames", drop_n_first_frames)
        drop_last = check_int("drop_n_last_frames", drop_n_last_frames)
        self.seed = check_int("seed", seed)
        self.shuffle = bool(shuffle)
        starts = np.asarray(dataset_from_indices, dtype=np.int64).ravel()
        stops = np.asarray(dataset_to_indices, dtype=np.int64).ravel()
        if starts.shape != stops.shape:
            raise OptionError(
                f"dataset_from_indices has {starts.size} episodes but dataset_to_indices has {stops.size}; "
                "pass both columns of the same episodes table")
        if starts.size == 0:
            raise OptionError("the dataset has no episodes; there is nothing to sample")
        if (stops < starts).any():
            bad = int(np.flatnonzero(stops < starts)[0])
            raise OptionError(f"episode {bad} ends ({int(stops[bad])}) before it starts ({int(starts[bad])})")

        used = np.ones(starts.size, dtype=bool)
        if episode_indices_to_use is not None:
            chosen = np.asarray(episode_indices_to_use, dtype=np.int64).ravel()
            out_of_range = (chosen < 0) | (chosen >= starts.size)
            if out_of_range.any():
                raise OptionError(
                    f"episode_indices_to_use contains {int(chosen[out_of_range][0])} but the dataset has "
                    f"episodes 0..{starts.size - 1}")
            used[:] = False
            used[chosen] = True

        kept_starts = starts + drop_first
        lengths = stops - drop_last - kept_starts
        for episode in np.flatnonzero(used & (lengths <= 0)):
            logger.warning(
                "EpisodeAwareSampler: episode %d has %d frames; drop_n_first_frames=%d and "
                "drop_n_last_frames=%d leave none, so it is skipped.",
                episode, int(stops[episode] - starts[episode]), drop_first, drop_last)
        used &= lengths > 0
        if not used.any():
            raise OptionError(
                f"no frames remain: drop_n_first_frames={drop_first} and drop_n_last_frames={drop_last} "
                "empty every chosen episode; lower them or choose longer episodes")

        self._episodes = np.flatnonzero(used)
        self._starts = kept_starts[used]
        self._cumulative = np.cumsum(lengths[used])
        self._num_frames = int(self._cumulative[-1])
        self.epoch = 0
        self.start_index = 0

    @property
    def num_frames(self) -> int:
        """Frames per epoch after episode selection and drops."""
        return self._num_frames

    def __len__(self) -> int:
        return self._num_frames

    def frame_indices(self, positions: np.ndarray) -> np.ndarray:
        """Map epoch positions (0..len-1, unshuffled) to dataset frame indices, vectorised."""
        positions = np.asarray(positions, dtype=np.int64)
        episode = np.searchsorted(self._cumulative, positions, side="right")
        first_position = np.where(episode > 0, self._cumulative[np.maximum(episode - 1, 0)], 0)
        return self._starts[episode] + (positions - first_position)

    def epoch_order(self, epoch: int) -> torch.Tensor | None:
        """The position permutation of `epoch` (None when not shuffling): LeRobot's exact recipe."""
        if not self.shuffle:
            return None
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
        return torch.randperm(self._num_frames, generator=generator)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch the next `iter()` runs; the start index is left as it is."""
        self.epoch = check_int("epoch", epoch)

    def state_dict(self) -> dict[str, int]:
        """`{"epoch", "start_index"}` of the next `iter()` (LeRobot's keys)."""
        return {"epoch": self.epoch, "start_index": self.start_index}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        """Resume: the next `iter()` runs epoch `state["epoch"]` from position `state["start_index"]`."""
        missing = {"epoch", "start_index"} - set(state)
        if missing:
            raise ResumeError(
                f"sampler state {dict(state)!r} lacks {sorted(missing)}; pass EpisodeAwareSampler.state_dict() "
                "or compute_sampler_state(...)")
        epoch = check_int("epoch", state["epoch"])
        start = check_int("start_index", state["start_index"])
        if start > self._num_frames:
            raise ResumeError(
                f"start_index={start} is past the end of an epoch of {self._num_frames} frames; the checkpoint "
                "comes from another dataset, episode selection or drop_n_* setting")
        self.epoch, self.start_index = epoch, start

    def __iter__(self) -> Iterator[int]:
        epoch, start = self.epoch, self.start_index
        # Advance now, like LeRobot: the epoch counter moves when iteration starts.
        self.epoch, self.start_index = epoch + 1, 0
        return self._iterate(epoch, start)

    def _iterate(self, epoch: int, start: int) -> Iterator[int]:
        order = self.epoch_order(epoch)
        if order is None:
            episode = int(np.searchsorted(self._cumulative, start, side="right"))
            offset = start - (int(self._cumulative[episode - 1]) if episode > 0 else 0)
            for position in range(episode, self._episodes.size):
                first = int(self._starts[position])
                length = int(self._cumulative[position]) - (
                    int(self._cumulative[position - 1]) if position > 0 else 0)
                yield from range(first + offset, first + length)
                offset = 0
            return
        positions = order.numpy()
        for chunk_start in range(start, self._num_frames, _CHUNK):
            yield from self.frame_indices(positions[chunk_start:chunk_start + _CHUNK]).tolist()


def compute_sampler_state(step: int, num_frames: int, batch_size: int, num_processes: int = 1) -> dict[str, int]:
    """Sampler state that makes a run resumed after `step` optimizer steps get the exact next batch.

    Assumes accelerate's default sharding: one sampler shared by `num_processes` processes, the
    batch sampler cuts it into batches of `batch_size` (drop_last=False) and process p takes
    batches p, p+P, ...; with `even_batches=True` the last round is padded by wrapping around, so
    each process runs `ceil(ceil(num_frames / batch_size) / num_processes)` steps per epoch. Every
    step but the last of an epoch consumes `batch_size * num_processes` sampler positions, so after
    `k` steps into an epoch the next position is `k * batch_size * num_processes` (always below
    `num_frames`). `step` counts completed steps of this run, over all epochs; it is only exact when
    batch size, process count and gradient-accumulation bookkeeping are those of the checkpoint.
    """
    step = check_int("step", step)
    for name, value in (("num_frames", num_frames), ("batch_size", batch_size), ("num_processes", num_processes)):
        if check_int(name, value) == 0:
            raise OptionError(f"{name}=0; it must be a positive integer")
    batches_per_epoch = -(-num_frames // batch_size)
    steps_per_epoch = -(-batches_per_epoch // num_processes)
    epoch, steps_into_epoch = divmod(step, steps_per_epoch)
    return {"epoch": epoch, "start_index": steps_into_epoch * batch_size * num_processes}
