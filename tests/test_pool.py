"""Streaming scheduling core: consumer split, episode pool draws, and exact resume with workers and ranks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from lerobot_inspect.errors import OptionError, ResumeError
from lerobot_inspect.loaders.pool import (
    ResumeAt,
    check_state,
    consumer_frame_counts,
    consumer_plan,
    consumer_schedule,
    make_state,
    randomness_fraction,
    rank_batch_counts,
    resume_point,
    skip_counts,
    split_episodes,
)

pytestmark = pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")

lengths_strategy = st.lists(st.integers(1, 30), min_size=1, max_size=25).map(lambda v: np.array(v, dtype=np.int64))


@settings(max_examples=150, deadline=None)
@given(lengths=lengths_strategy, n_consumers=st.integers(1, 9), seed=st.integers(0, 2**32),
       epoch=st.integers(0, 50), shuffle=st.booleans())
def test_consumer_parts_are_disjoint_cover_everything_and_balance_frames(lengths, n_consumers, seed, epoch, shuffle):
    parts = split_episodes(lengths, seed=seed, epoch=epoch, n_consumers=n_consumers, shuffle=shuffle)
    assert len(parts) == n_consumers
    everything = np.concatenate(parts)
    assert sorted(everything.tolist()) == list(range(lengths.size))
    counts = consumer_frame_counts(lengths, seed=seed, epoch=epoch, n_consumers=n_consumers, shuffle=shuffle)
    assert counts.tolist() == [int(lengths[p].sum()) for p in parts]
    ideal = lengths.sum() / n_consumers
    assert (np.abs(counts - ideal) < lengths.max()).all(), (counts, ideal)
    if not shuffle:
        assert everything.tolist() == list(range(lengths.size))  # contiguous runs in dataset order


def all_frames(lengths, episodes):
    return sorted((int(e), f) for e in episodes for f in range(lengths[e]))


@settings(max_examples=150, deadline=None)
@given(lengths=lengths_strategy, n_consumers=st.integers(1, 4), pool_size=st.integers(1, 6),
       seed=st.integers(0, 2**32), epoch=st.integers(0, 50), shuffle=st.booleans(), data=st.data())
def test_schedule_is_a_permutation_of_the_consumers_frames_and_respects_the_pool(
        lengths, n_consumers, pool_size, seed, epoch, shuffle, data):
    consumer = data.draw(st.integers(0, n_consumers - 1))
    options = dict(seed=seed, epoch=epoch, n_consumers=n_consumers, consumer=consumer, pool_size=pool_size,
                   shuffle=shuffle)
    plan = consumer_plan(lengths, **options)
    mine = split_episodes(lengths, seed=seed, epoch=epoch, n_consumers=n_consumers, shuffle=shuffle)[consumer]
    assert plan.samples.dtype == np.int64 and plan.samples.shape == (int(lengths[mine].sum()), 2)
    assert sorted(map(tuple, plan.samples.tolist())) == all_frames(lengths, mine)
    assert plan.episodes.tolist() == mine.tolist()
    np.testing.assert_array_equal(consumer_schedule(lengths, **options), plan.samples)  # deterministic
    # Pool discipline: every sample comes from an admitted, unexhausted episode; at most pool_size live;
    # a new episode enters exactly when one runs out.
    for position, (episode, _) in enumerate(plan.samples.tolist()):
        live = plan.pool_at(position)
        assert episode in live.tolist() and live.size <= pool_size
    assert (np.diff(plan.admitted_at) >= 0).all()
    assert plan.admitted_at[:pool_size].tolist() == [0] * min(pool_size, mine.size)
    assert plan.admitted_at[pool_size:].tolist() == sorted(plan.exhausted_at.tolist())[:max(mine.size - pool_size, 0)]
    if not shuffle:
        expected = [(int(e), f) for e in mine for f in range(lengths[e])]
        assert list(map(tuple, plan.samples.tolist())) == expected  # sequential frames


def test_upcoming_admissions_are_the_next_episodes_to_enter():
    lengths = np.array([4, 6, 3, 5, 2, 7])
    plan = consumer_plan(lengths, seed=0, epoch=0, n_consumers=1, consumer=0, pool_size=2, shuffle=False)
    assert plan.pool_at(0).tolist() == [0, 1]
    assert plan.upcoming_admissions(0, 2).tolist() == [2, 3]
    assert plan.pool_at(4).tolist() == [1, 2]  # episode 0 done after 4 samples, episode 2 admitted
    assert plan.upcoming_admissions(4, 10).tolist() == [3, 4, 5]


def test_seed_and_epoch_change_the_order():
    lengths = np.full(20, 10)
    options = dict(n_consumers=2, consumer=1, pool_size=4, shuffle=True)
    base = consumer_schedule(lengths, seed=1, epoch=0, **options)
    assert not np.array_equal(base, consumer_schedule(lengths, seed=1, epoch=1, **options))
    assert not np.array_equal(base, consumer_schedule(lengths, seed=2, epoch=0, **options))
    assert not np.array_equal(base, consumer_schedule(lengths, seed=0, epoch=1, **options))


def test_draws_are_stratified_one_sample_per_pool_episode_per_pool_size_samples():
    # A 90- and a 10-frame episode in a pool of 2: each gives one sample per 2, so the short one's 10
    # frames are spread over the first ~20 samples (independent draws weighted by frames left would
    # spread them over all 100; unweighted ones would bunch them at random).
    lengths = np.array([90, 10])
    for epoch in range(200):
        samples = consumer_schedule(lengths, seed=7, epoch=epoch, n_consumers=1, consumer=0, pool_size=2,
                                    shuffle=True)
        short = np.flatnonzero(samples[:, 0] == 1)
        assert short.max() <= 21 and np.all(np.diff(short) <= 4)


@pytest.mark.parametrize("pool_size", [8, 16, 32])
def test_a_full_pool_puts_about_one_sample_of_each_episode_in_every_pool_size_window(pool_size):
    # What the stratified draws are for: a batch of pool_size samples holds nearly pool_size episodes
    # (independent draws give pool_size * (1 - (1 - 1/pool_size)**pool_size), about 0.64 of that).
    lengths = np.random.default_rng(0).integers(90, 111, 40 * pool_size)
    plan = consumer_plan(lengths, seed=3, epoch=0, n_consumers=1, consumer=0, pool_size=pool_size, shuffle=True)
    steady = plan.samples[: int(plan.admitted_at[-1]), 0]  # the pool is full until the last admission
    windows = steady[: steady.size // pool_size * pool_size].reshape(-1, pool_size)
    assert randomness_fraction(windows) > 0.78  # 5/6 expected: a window misses an episode with p = 1/6
    most = max(np.bincount(row).max() for row in np.unique(windows, return_inverse=True)[1].reshape(windows.shape))
    assert most <= 3


def test_shuffled_frames_inside_an_episode_are_a_permutation_that_varies():
    lengths = np.array([50])
    orders = {tuple(consumer_schedule(lengths, seed=3, epoch=e, n_consumers=1, consumer=0, pool_size=1,
                                      shuffle=True)[:, 1].tolist()) for e in range(3)}
    assert len(orders) == 3 and all(sorted(o) == list(range(50)) for o in orders)


# ---- resume: a model of torch's DataLoader, checked against the real one, then against skip_counts ----

def dataloader_batches(streams, batch_size, offset=0):
    """Batches one rank's DataLoader yields when worker slot w plays streams[(w + offset) % W].

    In-order torch DataLoader over an IterableDataset: each worker cuts its own stream into batches;
    the main process asks workers round robin from slot 0 and skips the ones that ran out."""
    workers = len(streams)
    queues = [[list(streams[(w + offset) % workers][i:i + batch_size])
               for i in range(0, len(streams[(w + offset) % workers]), batch_size)] for w in range(workers)]
    out = []
    while any(queues):
        for queue in queues:
            if queue:
                out.append(queue.pop(0))
    return out


class _Streams(IterableDataset):
    def __init__(self, streams, offset):
        self.streams, self.offset = streams, offset

    def __iter__(self):
        slot = get_worker_info().id
        yield from self.streams[(slot + self.offset) % len(self.streams)]


@pytest.mark.parametrize(("lengths", "batch_size", "offset"), [((5, 1, 8), 2, 0), ((4, 9, 0), 3, 2)])
def test_the_dataloader_model_matches_torch(lengths, batch_size, offset):
    streams = [[100 * w + i for i in range(n)] for w, n in enumerate(lengths)]
    loader = DataLoader(_Streams(streams, offset), batch_size=batch_size, num_workers=len(streams))
    got = [b.tolist() for b in loader]
    assert got == dataloader_batches(streams, batch_size, offset)


def global_order(per_consumer_counts, world_size, num_workers, batch_size, skips=None, offsets=None):
    """Per-rank batch lists of labelled samples (consumer, i), optionally resumed."""
    counts = np.asarray(per_consumer_counts)
    skips = np.zeros_like(counts) if skips is None else skips
    offsets = np.zeros(world_size, dtype=int) if offsets is None else offsets
    ranks = []
    for rank in range(world_size):
        streams = [[(c, i) for i in range(int(skips[c]), int(counts[c]))]
                   for c in range(rank * num_workers, (rank + 1) * num_workers)]
        ranks.append(dataloader_batches(streams, batch_size, int(offsets[rank])))
    return ranks


def step_major(ranks):
    return [batch for step in range(max(map(len, ranks))) for r in ranks if step < len(r) for batch in [r[step]]]


@settings(max_examples=80, deadline=None)
@given(world_size=st.integers(1, 3), num_workers=st.integers(1, 4), batch_size=st.integers(1, 4), data=st.data())
def test_skip_counts_reproduce_the_uninterrupted_stream(world_size, num_workers, batch_size, data):
    n_consumers = world_size * num_workers
    counts = np.array(data.draw(st.lists(st.integers(0, 12), min_size=n_consumers, max_size=n_consumers)))
    ranks = global_order(counts, world_size, num_workers, batch_size)
    order = step_major(ranks)
    boundaries = np.cumsum([0] + [len(b) for b in order])
    options = dict(per_consumer_counts=counts, world_size=world_size, num_workers=num_workers,
                   batch_size=batch_size)
    for k, samples_seen in enumerate(boundaries.tolist()):
        point = resume_point(samples_seen, **options)
        consumed = [s for b in order[:k] for s in b]
        expected_skips = [sum(1 for c, _ in consumed if c == consumer) for consumer in range(n_consumers)]
        assert point.skip_counts.tolist() == expected_skips, f"samples_seen={samples_seen}"
        assert skip_counts(samples_seen, **options).tolist() == expected_skips
        resumed = global_order(counts, world_size, num_workers, batch_size, point.skip_counts,
                               point.worker_offset)
        for rank in range(world_size):
            seen_by_rank = sum(1 for b in order[:k] if b in ranks[rank])
            assert resumed[rank] == ranks[rank][seen_by_rank:], (
                f"rank {rank} after samples_seen={samples_seen}: resumed batches differ")
            assert point.consumer_for(rank, 0, num_workers) == rank * num_workers + int(point.worker_offset[rank])
    inside = sorted(set(range(int(boundaries[-1]) + 1)) - set(boundaries.tolist()))
    for samples_seen in inside[:3]:
        with pytest.raises(ResumeError, match="falls inside a batch"):
            resume_point(samples_seen, **options)
    with pytest.raises(ResumeError, match="more than this epoch"):
        resume_point(int(counts.sum()) + 1, **options)


def test_resume_with_real_dataloader_workers_continues_exactly():
    counts = np.array([7, 3, 5])
    streams = [[100 * c + i for i in range(n)] for c, n in enumerate(counts)]
    full = dataloader_batches(streams, 2)
    for k in (1, 4, 6):  # after 1 batch (mid-round), 4 batches, and once worker 1 is exhausted
        seen = sum(len(b) for b in full[:k])
        point = resume_point(seen, per_consumer_counts=counts, world_size=1, num_workers=3, batch_size=2)
        rest = [s[point.skip_counts[c]:] for c, s in enumerate(streams)]
        loader = DataLoader(_Streams(rest, int(point.worker_offset[0])), batch_size=2, num_workers=3)
        assert [b.tolist() for b in loader] == full[k:], f"after {k} batches"


def test_rank_batch_counts():
    counts = np.array([5, 0, 3, 4])  # 2 ranks x 2 workers, batch 2
    assert rank_batch_counts(counts, world_size=2, num_workers=2, batch_size=2).tolist() == [3, 4]
    with pytest.raises(OptionError, match="expected \\(4,\\)"):
        rank_batch_counts(counts[:3], world_size=2, num_workers=2, batch_size=2)


def test_state_round_trip_and_refusals():
    lengths = np.array([10, 20, 30])
    run = dict(seed=3, episode_lengths=lengths, world_size=2, num_workers=2, batch_size=4, pool_size=8, shuffle=True)
    state = make_state(epoch=5, samples_seen=16, **run)
    assert all(isinstance(v, int) for v in state.values()) and state["format"] == 2
    assert check_state(state, **run) == ResumeAt(5, 16)
    assert check_state(make_state(epoch=5, samples_seen=60, **run), **run) == ResumeAt(6, 0)
    with pytest.raises(ResumeError, match="another dataset"):
        check_state(state, **{**run, "episode_lengths": np.array([10, 30, 20])})
    with pytest.raises(ResumeError, match="seed=4 but the checkpoint used 3"):
        check_state(state, **{**run, "seed": 4})
    with pytest.raises(ResumeError, match="world_size=1 but the checkpoint was taken mid-epoch"):
        check_state(state, **{**run, "world_size": 1})
    at_boundary = make_state(epoch=5, samples_seen=0, **run)
    assert check_state(at_boundary, **{**run, "world_size": 1, "batch_size": 8}) == ResumeAt(5, 0)
    assert check_state(make_state(epoch=1, samples_seen=4, **{**run, "num_workers": 0}),
                       **{**run, "num_workers": 1}) == ResumeAt(1, 4)
    with pytest.raises(ResumeError, match="format 1 is not 2"):  # format 1 drew the pool another way
        check_state({**state, "format": 1}, **run)
    with pytest.raises(ResumeError, match="lacks"):
        check_state({k: v for k, v in state.items() if k != "pool_size"}, **run)


def test_randomness_fraction():
    assert randomness_fraction(np.array([[1, 1, 1, 1], [2, 2, 2, 2]])) == 0.25
    assert randomness_fraction(np.array([[1, 2, 3, 4], [1, 1, 2, 2]])) == 0.75
    assert randomness_fraction(torch.tensor([[0, 5]]).numpy()) == 1.0
    with pytest.raises(OptionError):
        randomness_fraction(np.zeros((0, 4)))


@given(st.lists(st.integers(1, 40), min_size=1, max_size=30), st.integers(0, 5), st.integers(1, 8))
def test_frames_in_order_keeps_the_draws_and_orders_each_episode(lengths, seed, pool_size):
    lengths = np.asarray(lengths, dtype=np.int64)
    options = dict(seed=seed, epoch=0, n_consumers=1, consumer=0, pool_size=pool_size, shuffle=True)
    shuffled = consumer_plan(lengths, **options)
    ordered = consumer_plan(lengths, frames_in_order=True, **options)
    # Same episode drawn at every step; within each episode the frames run 0, 1, 2, ...
    np.testing.assert_array_equal(ordered.samples[:, 0], shuffled.samples[:, 0])
    for episode in np.unique(ordered.samples[:, 0]):
        frames = ordered.samples[ordered.samples[:, 0] == episode, 1]
        np.testing.assert_array_equal(frames, np.arange(lengths[episode]))


def test_frames_in_order_is_part_of_the_state():
    lengths = np.array([5, 7, 3])
    common = dict(seed=0, episode_lengths=lengths, world_size=1, num_workers=0, batch_size=1, pool_size=2,
                  shuffle=True)
    state = make_state(epoch=0, samples_seen=4, frames_in_order=True, **common)
    assert check_state(state, frames_in_order=True, **common) == ResumeAt(0, 4)
    with pytest.raises(ResumeError, match="frames_in_order"):
        check_state(state, frames_in_order=False, **common)
