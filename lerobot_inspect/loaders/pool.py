"""Pure scheduling core of the streaming dataset: consumer split, episode pool, exact resume.

Everything here is a function of integers: episode lengths, (seed, epoch), the consumer layout
and `samples_seen`. No files, clocks or global RNG, so every rank and DataLoader worker computes
the same answers alone and a resumed run recomputes the order instead of unpickling it
(MosaicML Streaming's approach).

Vocabulary
- *episode position*: index into `episode_lengths`, i.e. among the selected episodes in dataset
  order (the streaming layer maps it back to `episode_index`).
- *consumer*: one (rank, DataLoader worker) pair; `n_consumers = world_size * num_workers` and
  `consumer = rank * num_workers + worker`. `num_workers=0` (iteration in the main process)
  counts as one worker.

Randomness streams, each `np.random.default_rng([seed, epoch, tag, ...])` with a distinct tag in
third place (NumPy's SeedSequence pads short entropy with zeros, so `[s, e]` and `[s, e, 0]`
would collide; a fixed-position tag avoids that):
  tag 1 `[seed, epoch, 1]`                       episode permutation (shared by all consumers)
  tag 2 `[seed, epoch, 2, n_consumers, consumer]` pool draws of one consumer
  tag 3 `[seed, epoch, 3, n_consumers, consumer]` frame order inside that consumer's episodes
"""

from __future__ import annotations

import heapq
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from lerobot_inspect.errors import OptionError, ResumeError, check_int

__all__ = [
    "STATE_FORMAT",
    "ConsumerPlan",
    "ResumeAt",
    "ResumePoint",
    "admission_order",
    "check_state",
    "consumer_frame_counts",
    "consumer_plan",
    "consumer_schedule",
    "epoch_steps",
    "make_state",
    "randomness_fraction",
    "rank_batch_counts",
    "resume_point",
    "resume_point_at_step",
    "skip_counts",
    "split_episodes",
]

STATE_FORMAT = 2  # 2: stratified pool draws (a format-1 state would resume another order)
_TAG_EPISODE_ORDER, _TAG_POOL_DRAWS, _TAG_FRAME_ORDER = 1, 2, 3


def _lengths(episode_lengths: np.ndarray) -> np.ndarray:
    lengths = np.asarray(episode_lengths)
    if lengths.ndim != 1 or lengths.size == 0 or not np.issubdtype(lengths.dtype, np.integer):
        raise OptionError(
            f"episode_lengths must be a non-empty 1-D integer array (got shape {lengths.shape}, "
            f"dtype {lengths.dtype}); pass the selected episodes' `length` column in dataset order")
    if (lengths < 1).any():
        bad = int(np.flatnonzero(lengths < 1)[0])
        raise OptionError(f"episode at position {bad} has length {int(lengths[bad])}; every episode needs >= 1 frame")
    return lengths.astype(np.int64, copy=False)


def _layout(n_consumers: int, consumer: int | None = None) -> None:
    check_int("n_consumers", n_consumers, minimum=1)
    if consumer is not None and not 0 <= check_int("consumer", consumer) < n_consumers:
        raise OptionError(f"consumer={consumer}; it must be in 0..{n_consumers - 1} (rank * num_workers + worker)")


def split_episodes(
    episode_lengths: np.ndarray, *, seed: int, epoch: int, n_consumers: int, shuffle: bool
) -> list[np.ndarray]:
    """Each consumer's episode positions, in the order its pool admits them.

    The episodes are permuted per epoch (identity when `shuffle=False`) and the permuted order
    is cut into `n_consumers` contiguous parts at the frame quantiles: an episode goes to the
    consumer whose share [k*T/C, (k+1)*T/C) of the T frames holds the episode's midpoint. Parts
    are disjoint and cover every episode, so each frame is served once per epoch over all
    consumers. The frame count of every consumer differs from T/C by less than the longest
    episode (a consumer can get nothing when C > number of episodes). Since cuts fall at
    quantiles k*T/C, the W consumers of one rank are contiguous too, so each rank's total is
    also within one longest episode of T/R. Episodes are reassigned every epoch (more mixing,
    no cross-epoch cache locality). With `shuffle=False` each consumer reads a contiguous run of
    episodes in dataset order.
    """
    lengths = _lengths(episode_lengths)
    _layout(n_consumers)
    order = (np.random.default_rng([check_int("seed", seed), check_int("epoch", epoch), _TAG_EPISODE_ORDER])
             .permutation(lengths.size) if shuffle else np.arange(lengths.size))
    permuted = lengths[order]
    total = int(permuted.sum())
    twice_midpoint = 2 * (np.cumsum(permuted) - permuted) + permuted
    owner = (n_consumers * twice_midpoint) // (2 * total)
    return [order[owner == k] for k in range(n_consumers)]


def consumer_frame_counts(
    episode_lengths: np.ndarray, *, seed: int, epoch: int, n_consumers: int, shuffle: bool
) -> np.ndarray:
    """Frames each consumer serves this epoch, shape (n_consumers,): the input of `skip_counts`."""
    lengths = _lengths(episode_lengths)
    parts = split_episodes(lengths, seed=seed, epoch=epoch, n_consumers=n_consumers, shuffle=shuffle)
    return np.array([int(lengths[part].sum()) for part in parts], dtype=np.int64)


@dataclass(frozen=True)
class ConsumerPlan:
    """One consumer's whole epoch, as integer arrays.

    samples       (n, 2) int64: (episode position, frame in episode), in emission order.
    episodes      (m,) episode positions in admission order.
    admitted_at   (m,) sample position at which each enters the pool (non-decreasing).
    exhausted_at  (m,) sample position just after its last frame was emitted.
    """

    samples: np.ndarray
    episodes: np.ndarray
    admitted_at: np.ndarray
    exhausted_at: np.ndarray

    def pool_at(self, sample_position: int) -> np.ndarray:
        """Episodes in the pool when sample `sample_position` is drawn (what a resume must fetch)."""
        live = (self.admitted_at <= sample_position) & (self.exhausted_at > sample_position)
        return self.episodes[live]

    def upcoming_admissions(self, sample_position: int, k: int) -> np.ndarray:
        """The next `k` episodes admitted after sample `sample_position`: what to prefetch now."""
        first = int(np.searchsorted(self.admitted_at, sample_position, side="right"))
        return self.episodes[first:first + check_int("k", k)]


def _stratified_arrangement(lengths_in_order: np.ndarray, pool_size: int, rng: np.random.Generator
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(episode label of each sample in emission order, its k-th emission of that episode,
    admitted_at, exhausted_at) of the pool.

    Every frame gets a time: an episode admitted at time t with L frames places its k-th sample
    at t + (k + u_k) * pool_size, u_k uniform in [0, 1), so a live episode gives exactly one sample
    in each stretch of pool_size time at a random place in it. With the pool full, pool_size
    episodes each give one sample per pool_size time: one sample per unit of time, and any
    pool_size consecutive samples hold about one of each pool episode. When an episode's last
    sample is emitted the next is admitted at that time. Samples are emitted in time order.
    Python work is per episode (a heap of last times), numpy work per frame; about 40 bytes per
    sample at the peak (10,000 episodes of 100 frames: 40 MB, transient)."""
    m = lengths_in_order.size
    times, live = [], []
    admitted_time = np.zeros(m, dtype=np.float64)
    last_time = np.zeros(m, dtype=np.float64)

    def admit(label: int, at: float) -> None:
        count = int(lengths_in_order[label])
        frame_times = at + (np.arange(count, dtype=np.float64) + rng.random(count)) * pool_size
        times.append(frame_times)
        admitted_time[label], last_time[label] = at, frame_times[-1]
        heapq.heappush(live, (float(frame_times[-1]), label))

    for label in range(min(pool_size, m)):
        admit(label, 0.0)
    next_label = min(pool_size, m)
    while live and next_label < m:
        exhausted_time, _ = heapq.heappop(live)
        admit(next_label, exhausted_time)
        next_label += 1
    time = np.concatenate(times) if times else np.empty(0, dtype=np.float64)
    times.clear()  # the pieces, now copied into `time`
    counts = lengths_in_order.astype(np.int64)
    owner = np.repeat(np.arange(m, dtype=np.int32), counts)  # admission order is label order
    order = np.lexsort((owner, time))
    labels = owner[order]
    del owner
    starts = np.cumsum(counts) - counts
    kth = (order - starts[labels]).astype(np.int32)  # a label's samples were laid out k = 0, 1, ...
    sorted_time = time[order]
    del time, order
    admitted_at = np.searchsorted(sorted_time, admitted_time, side="right").astype(np.int64)
    admitted_at[:min(pool_size, m)] = 0
    exhausted_at = np.searchsorted(sorted_time, last_time, side="right").astype(np.int64)
    return labels, kth, admitted_at, exhausted_at


def consumer_plan(
    episode_lengths: np.ndarray,
    *,
    seed: int,
    epoch: int,
    n_consumers: int,
    consumer: int,
    pool_size: int,
    shuffle: bool,
    frames_in_order: bool = False,
) -> ConsumerPlan:
    """The pool schedule of one consumer for one epoch.

    The pool holds `pool_size` admitted episodes (taken in `split_episodes` order); when one runs
    out the next is admitted at once. With `shuffle=True` the draws are stratified
    (`_stratified_arrangement`): each pool episode gives one sample per `pool_size` consecutive
    samples, at a random place among them, so a batch of B holds about min(B, pool_size) distinct
    episodes. Independent draws (each sample from an episode picked at random) would repeat
    episodes inside a batch: about pool_size * (1 - (1 - 1/pool_size)**B) distinct, 14 of 32 for a
    pool of 16, and weighting them by frames left lets a newly admitted episode dominate. The
    episode's frames come in a per-episode random permutation. With `shuffle=False` there is no randomness:
    episodes in dataset order, frames in order, oldest pool episode first, i.e. sequential
    frames whatever `pool_size` is (the pool then only sets how far ahead the loader fetches).
    `frames_in_order=True` keeps the random draws between pool episodes but emits each episode's
    frames in order: less randomness inside a batch's episodes, and sequential decoding per
    episode (a decoder moving forward needs no seek), which is what bounds throughput.
    Memory: 16 bytes per sample of the consumer.
    """
    lengths = _lengths(episode_lengths)
    _layout(n_consumers, consumer)
    pool_size = check_int("pool_size", pool_size, minimum=1)
    episodes = split_episodes(lengths, seed=seed, epoch=epoch, n_consumers=n_consumers, shuffle=shuffle)[consumer]
    episode_lengths_in_order = lengths[episodes]
    m = episodes.size
    ends = np.cumsum(episode_lengths_in_order)
    offsets = ends - episode_lengths_in_order
    if not shuffle:
        admitted_at = np.zeros(m, dtype=np.int64)
        admitted_at[pool_size:] = ends[:max(m - pool_size, 0)]
        labels = np.repeat(np.arange(m, dtype=np.int64), episode_lengths_in_order)
        frames = np.arange(labels.size, dtype=np.int64) - offsets[labels]
        return ConsumerPlan(np.column_stack([episodes[labels], frames]).reshape(-1, 2), episodes,
                            admitted_at, ends.copy())

    draws = np.random.default_rng([seed, epoch, _TAG_POOL_DRAWS, n_consumers, consumer])
    labels, nth, admitted_at, exhausted_at = _stratified_arrangement(episode_lengths_in_order, pool_size, draws)
    # k-th emission of an episode -> its k-th frame (in order, or in a per-episode random permutation).
    samples = np.empty((labels.size, 2), dtype=np.int64)
    samples[:, 0] = episodes[labels]
    if frames_in_order:
        samples[:, 1] = nth
        return ConsumerPlan(samples, episodes, admitted_at, exhausted_at)
    keys = np.random.default_rng([seed, epoch, _TAG_FRAME_ORDER, n_consumers, consumer]).random(labels.size)
    owner = np.repeat(np.arange(m, dtype=np.int64), episode_lengths_in_order)
    permutations = np.lexsort((keys, owner)) - offsets[owner]
    del keys, owner
    samples[:, 1] = permutations[offsets[labels] + nth]
    return ConsumerPlan(samples, episodes, admitted_at, exhausted_at)


def consumer_schedule(episode_lengths: np.ndarray, **options) -> np.ndarray:
    """`consumer_plan(...).samples`: (n, 2) int64 of (episode position, frame in episode)."""
    return consumer_plan(episode_lengths, **options).samples


def admission_order(episode_lengths: np.ndarray, *, after: int, k: int, **options) -> np.ndarray:
    """The `k` episode positions admitted after sample position `after` (for byte-span prefetch)."""
    return consumer_plan(episode_lengths, **options).upcoming_admissions(after, k)


def rank_batch_counts(
    per_consumer_counts: np.ndarray, *, world_size: int, num_workers: int, batch_size: int
) -> np.ndarray:
    """Batches each rank's DataLoader yields this epoch, shape (world_size,).

    Ranks can differ (see `split_episodes`); a lock-step training loop that needs equal counts
    stops the epoch after `min()` of these steps, and `samples_seen` stays valid for resume.
    """
    batches = _batches(per_consumer_counts, world_size, num_workers, batch_size)
    return batches.sum(axis=1)


def _batches(per_consumer_counts: np.ndarray, world_size: int, num_workers: int, batch_size: int) -> np.ndarray:
    counts = np.asarray(per_consumer_counts, dtype=np.int64)
    world_size = check_int("world_size", world_size, minimum=1)
    num_workers = max(check_int("num_workers", num_workers), 1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    if counts.shape != (world_size * num_workers,):
        raise OptionError(
            f"per_consumer_counts has shape {counts.shape}; expected ({world_size * num_workers},) = "
            f"world_size * max(num_workers, 1)")
    return (-(-counts // batch_size)).reshape(world_size, num_workers)


@dataclass(frozen=True)
class ResumePoint:
    """Where each consumer resumes, and how the resumed DataLoader's worker slots map to consumers.

    skip_counts    (n_consumers,) samples each consumer already delivered (multiples of the batch
                   size, or its whole count).
    worker_offset  (world_size,) on rank r, DataLoader worker slot w must play consumer role
                   `(w + worker_offset[r]) % num_workers`, i.e. consumer id
                   `r * num_workers + (w + worker_offset[r]) % num_workers`, for the resumed epoch
                   only (the next epoch starts with offset 0). Needed because a fresh DataLoader
                   iterator asks worker slot 0 first, while the interrupted stream would next have
                   asked the worker after the last one served.
    """

    skip_counts: np.ndarray
    worker_offset: np.ndarray

    def consumer_for(self, rank: int, worker_slot: int, num_workers: int) -> int:
        """Consumer id a resumed rank's worker slot runs (see `worker_offset`)."""
        num_workers = max(num_workers, 1)
        return rank * num_workers + (worker_slot + int(self.worker_offset[rank])) % num_workers


def _rank_progress(batches: np.ndarray, taken: int) -> tuple[np.ndarray, int]:
    """Per-worker batches within a rank's first `taken` batches, and the next worker slot to ask.

    Models torch's in-order multi-worker DataLoader over an IterableDataset: batch requests go
    to workers round robin (0, 1, ..., W-1, 0, ...); a worker that has run out is skipped."""
    served_by_round = lambda rounds: int(np.minimum(batches, rounds).sum())  # noqa: E731
    low, high = 0, int(batches.max(initial=0))
    while low < high:  # largest full-round count whose batches fit in `taken`
        middle = (low + high + 1) // 2
        if served_by_round(middle) <= taken:
            low = middle
        else:
            high = middle - 1
    per_worker = np.minimum(batches, low)
    remainder = taken - served_by_round(low)
    active = np.flatnonzero(batches > low)
    per_worker[active[:remainder]] += 1
    if taken == 0:
        return per_worker, 0
    last = int(active[remainder - 1]) if remainder else int(np.flatnonzero(batches > low - 1).max())
    return per_worker, (last + 1) % batches.size


def _delivered(batches: np.ndarray, counts: np.ndarray, batch_size: int,
               steps_per_rank: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """(samples delivered, per-consumer samples, per-rank next worker slot) after each rank's
    DataLoader delivered `steps_per_rank[r]` batches."""
    world_size = batches.shape[0]
    taken = np.zeros_like(batches)
    offsets = np.zeros(world_size, dtype=np.int64)
    for rank in range(world_size):
        taken[rank], offsets[rank] = _rank_progress(batches[rank], int(steps_per_rank[rank]))
    samples = np.minimum(taken * batch_size, counts)
    return int(samples.sum()), samples, offsets


def resume_point_at_step(
    step: int, *, per_consumer_counts: np.ndarray, world_size: int, num_workers: int, batch_size: int
) -> ResumePoint:
    """Per-consumer skips after `step` steps of lock-step training: every rank's DataLoader has
    delivered min(step, its batch count) batches. What a training loop knows (its global step)
    turns into the exact position, short tail batches included, because the worker count of the
    resumed loader is known here. Same consumption model as `resume_point`."""
    batches = _batches(per_consumer_counts, world_size, num_workers, batch_size)
    counts = np.asarray(per_consumer_counts, dtype=np.int64).reshape(batches.shape)
    step = check_int("step", step)
    rank_totals = batches.sum(axis=1)
    if step > int(rank_totals.max(initial=0)):
        raise ResumeError(
            f"step={step} is past this epoch's {int(rank_totals.max(initial=0))} steps (batch_size={batch_size}, "
            f"world_size={world_size}, num_workers={max(num_workers, 1)}); pass the step within the current epoch")
    _, samples, offsets = _delivered(batches, counts, batch_size, np.minimum(rank_totals, step))
    return ResumePoint(samples.reshape(-1), offsets)


def epoch_steps(per_consumer_counts: np.ndarray, *, world_size: int, num_workers: int, batch_size: int) -> int:
    """Steps in the epoch: the largest rank's batch count (lock-step loops stop at the smallest)."""
    return int(rank_batch_counts(per_consumer_counts, world_size=world_size, num_workers=num_workers,
                                 batch_size=batch_size).max(initial=0))


def resume_point(
    samples_seen: int, *, per_consumer_counts: np.ndarray, world_size: int, num_workers: int, batch_size: int
) -> ResumePoint:
    """Turn the global `samples_seen` of this epoch into per-consumer skips (exact resume).

    Assumed consumption (what a standard loop with torch DataLoaders does):
    - each rank has its own DataLoader over the IterableDataset, `batch_size=B` (None counts as
      1), `drop_last=False`, in-order delivery (the default); each worker batches its own stream
      into B consecutive samples, its last batch possibly short; the main process takes batches
      from workers round robin starting at worker 0, skipping workers that have run out;
    - training runs in steps; step t takes batch t of every rank that still has one. The global
      order is step-major, rank-minor: step 0 of rank 0, step 0 of rank 1, ..., step 1 of rank 0;
      `samples_seen` counts samples of this epoch delivered in that order over all ranks (for
      lock-step ranks: the sum of the batch lengths of all completed steps);
    - `samples_seen` must end on a batch boundary: a mid-batch count raises ResumeError.
    """
    batches = _batches(per_consumer_counts, world_size, num_workers, batch_size)
    counts = np.asarray(per_consumer_counts, dtype=np.int64).reshape(batches.shape)
    samples_seen = check_int("samples_seen", samples_seen)
    total = int(counts.sum())
    if samples_seen > total:
        raise ResumeError(
            f"samples_seen={samples_seen} is more than this epoch's {total} samples; pass the count within the "
            "current epoch, and check that the dataset and episode selection are those of the checkpoint")
    world_size, workers = batches.shape

    def delivered(steps_per_rank: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
        return _delivered(batches, counts, batch_size, steps_per_rank)

    rank_totals = batches.sum(axis=1)
    low, high = 0, int(rank_totals.max())
    while low < high:  # largest number of whole steps that fits in samples_seen
        middle = (low + high + 1) // 2
        if delivered(np.minimum(rank_totals, middle))[0] <= samples_seen:
            low = middle
        else:
            high = middle - 1
    steps = np.minimum(rank_totals, low)
    seen, samples, offsets = delivered(steps)
    for rank in range(world_size):  # the partial step: ranks in order
        if seen == samples_seen or steps[rank] >= rank_totals[rank]:
            continue
        trial = steps.copy()
        trial[rank] += 1
        trial_seen, trial_samples, trial_offsets = delivered(trial)
        if trial_seen > samples_seen:
            break
        steps, seen, samples, offsets = trial, trial_seen, trial_samples, trial_offsets
    if seen != samples_seen:
        raise ResumeError(
            f"samples_seen={samples_seen} falls inside a batch (the last whole batch ends at {seen} with "
            f"batch_size={batch_size}, world_size={world_size}, num_workers={workers}); checkpoint after whole "
            "steps and pass the samples of completed steps")
    return ResumePoint(samples.reshape(-1), offsets)


def skip_counts(
    samples_seen: int, *, per_consumer_counts: np.ndarray, world_size: int, num_workers: int, batch_size: int
) -> np.ndarray:
    """Samples each consumer already delivered: `resume_point(...).skip_counts` (read its assumptions)."""
    return resume_point(samples_seen, per_consumer_counts=per_consumer_counts, world_size=world_size,
                        num_workers=num_workers, batch_size=batch_size).skip_counts


def _episodes_crc32(lengths: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(lengths, dtype="<i8").tobytes())


def make_state(
    *,
    seed: int,
    epoch: int,
    samples_seen: int,
    episode_lengths: np.ndarray,
    world_size: int,
    num_workers: int,
    batch_size: int,
    pool_size: int,
    shuffle: bool,
    frames_in_order: bool = False,
    episode_ids: np.ndarray | None = None,
    step: int | None = None,
) -> dict[str, int]:
    """The streaming dataset's resumable state: a format number and a few integers.

    The run's position is `epoch` and either `samples_seen` within it or `step` (lock-step
    batches each rank delivered; -1 when the position is a sample count). It also records what
    the order depends on, so `check_state` can refuse a checkpoint that would not continue
    exactly: `n_frames`, `episodes_crc32` (CRC-32 of the selected episodes' lengths as
    little-endian int64) and `selection_crc32` (of their episode ids: another selection with the
    same lengths is another dataset), `seed`, `pool_size`, `shuffle` (0/1) and the consumer layout.
    """
    lengths = _lengths(episode_lengths)
    ids = np.arange(lengths.size) if episode_ids is None else np.asarray(episode_ids)
    if ids.shape != lengths.shape:
        raise OptionError(f"episode_ids has shape {ids.shape} but episode_lengths {lengths.shape}")
    return {
        "format": STATE_FORMAT,
        "seed": check_int("seed", seed),
        "epoch": check_int("epoch", epoch),
        "samples_seen": check_int("samples_seen", samples_seen),
        "step": -1 if step is None else check_int("step", step),
        "n_frames": int(lengths.sum()),
        "episodes_crc32": _episodes_crc32(lengths),
        "selection_crc32": _episodes_crc32(ids),
        "world_size": check_int("world_size", world_size, minimum=1),
        "num_workers": check_int("num_workers", num_workers),
        "batch_size": check_int("batch_size", batch_size, minimum=1),
        "pool_size": check_int("pool_size", pool_size, minimum=1),
        "shuffle": int(bool(shuffle)),
        "frames_in_order": int(bool(frames_in_order)),
    }


@dataclass(frozen=True)
class ResumeAt:
    """Where a checked state continues: an epoch and, within it, a sample count or a step (-1)."""

    epoch: int
    samples_seen: int
    step: int = -1

    @property
    def at_start(self) -> bool:
        return self.samples_seen == 0 and self.step <= 0


def check_state(state: Mapping[str, int], **current) -> ResumeAt:
    """Validate a saved state against the current run and return where to resume.

    `current` takes `make_state`'s keywords except `epoch`, `samples_seen` and `step`. Dataset,
    episode selection, seed, pool size and shuffle must match. The consumer layout (world_size,
    num_workers, batch_size) must match mid-epoch, because the split and the interleaving depend
    on it; at an epoch boundary it may change, since the next epoch is recomputed for the new
    layout. A sample count at the very end of an epoch resumes at the start of the next one (a
    step at the end is recognised where the worker count is known, when iterating).
    """
    if not isinstance(state, Mapping) or state.get("format") != STATE_FORMAT:
        found = state.get("format") if isinstance(state, Mapping) else type(state).__name__
        raise ResumeError(f"state format {found!r} is not {STATE_FORMAT}; it was not written by this "
                          "streaming dataset version")
    expected = make_state(epoch=0, samples_seen=0, **current)
    missing = sorted(set(expected) - set(state))
    if missing:
        raise ResumeError(f"state lacks {missing}; pass the dict StreamingDataset.state_dict() returned")
    for key in expected:
        value = state[key]
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or not -1 <= value < 2**62:
            raise ResumeError(f"state[{key!r}]={value!r} is not an integer this dataset could have written")
    for key in ("n_frames", "episodes_crc32", "selection_crc32"):
        if state[key] != expected[key]:
            raise ResumeError(
                f"the checkpoint was written for another dataset or episode selection ({key} {state[key]} there, "
                f"{expected[key]} here); open the same root with the same episodes= to resume")
    for key in ("seed", "pool_size", "shuffle", "frames_in_order"):
        if state[key] != expected[key]:
            raise ResumeError(f"{key}={expected[key]} but the checkpoint used {state[key]}; pass {key}="
                              f"{state[key]} to continue the same order")
    epoch, samples_seen = check_int("epoch", state["epoch"]), check_int("samples_seen", state["samples_seen"])
    step = int(state["step"])
    if samples_seen > expected["n_frames"]:
        raise ResumeError(f"samples_seen={samples_seen} exceeds the epoch's {expected['n_frames']} frames; "
                          "it must count samples within the current epoch")
    if step < 0 and samples_seen == expected["n_frames"]:
        return ResumeAt(epoch + 1, 0)
    if samples_seen > 0 or step > 0:
        for key in ("world_size", "num_workers", "batch_size"):
            # num_workers=0 iterates in the main process: the same layout as one worker.
            saved, now = (max(state[key], 1), max(expected[key], 1)) if key == "num_workers" else (
                state[key], expected[key])
            if saved != now:
                raise ResumeError(
                    f"{key}={expected[key]} but the checkpoint was taken mid-epoch with {key}={state[key]}; "
                    "the episode split and batch interleaving depend on it, so resume with the same value "
                    "or from an epoch boundary")
    return ResumeAt(epoch, samples_seen, step)


def randomness_fraction(batch_episode_ids: np.ndarray) -> float:
    """Mean over batches of (distinct episodes in the batch) / batch size, in (0, 1].

    1.0 means every sample of every batch came from a different episode; 1/B means each batch
    came from a single episode (sequential reading). The notebooks' "shuffle randomness fraction".
    """
    ids = np.asarray(batch_episode_ids)
    if ids.ndim != 2 or ids.size == 0:
        raise OptionError(f"batch_episode_ids has shape {ids.shape}; pass a non-empty (n_batches, batch_size) array")
    ordered = np.sort(ids, axis=1)
    distinct = 1 + (np.diff(ordered, axis=1) != 0).sum(axis=1)
    return float(distinct.mean() / ids.shape[1])
