"""EpisodeAwareSampler: LeRobot's order and epoch rules, O(episodes) memory, exact resume."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lerobot_inspect.errors import OptionError, ResumeError
from lerobot_inspect.loaders.sampler import EpisodeAwareSampler, compute_sampler_state, epoch_seed


def bounds(lengths):
    ends = np.cumsum(lengths)
    return ends - np.asarray(lengths), ends


def expected_frames(lengths, chosen, drop_first, drop_last):
    starts, ends = bounds(lengths)
    return [f for e in sorted(set(chosen)) for f in range(starts[e] + drop_first, ends[e] - drop_last)]


@settings(max_examples=150, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 20), min_size=1, max_size=12),
    drops=st.tuples(st.integers(0, 4), st.integers(0, 4)),
    shuffle=st.booleans(),
    seed=st.integers(0, 2**32),
    data=st.data(),
)
def test_each_kept_frame_exactly_once_per_epoch(lengths, drops, shuffle, seed, data):
    chosen = data.draw(st.lists(st.integers(0, len(lengths) - 1), min_size=1, max_size=2 * len(lengths)))
    expected = expected_frames(lengths, chosen, *drops)
    starts, ends = bounds(lengths)
    if not expected:
        with pytest.raises(OptionError, match="no frames remain"):
            EpisodeAwareSampler(starts, ends, episode_indices_to_use=chosen, drop_n_first_frames=drops[0],
                                drop_n_last_frames=drops[1], shuffle=shuffle, seed=seed)
        return
    sampler = EpisodeAwareSampler(starts, ends, episode_indices_to_use=chosen, drop_n_first_frames=drops[0],
                                  drop_n_last_frames=drops[1], shuffle=shuffle, seed=seed)
    assert len(sampler) == len(expected)
    for _ in range(2):
        got = list(sampler)
        assert sorted(got) == expected
        if not shuffle:
            assert got == expected  # dataset order, whatever order episode_indices_to_use has


def test_shuffle_is_lerobots_randperm_recipe_and_epochs_differ():
    starts, ends = bounds([50, 30, 70])
    sampler = EpisodeAwareSampler(starts, ends, shuffle=True, seed=3)
    epoch0, epoch1 = list(sampler), list(sampler)
    for epoch, got in ((0, epoch0), (1, epoch1)):
        seed = int(np.random.SeedSequence([3, epoch]).generate_state(1, np.uint64)[0])
        assert seed == epoch_seed(3, epoch)
        order = torch.randperm(150, generator=torch.Generator().manual_seed(seed)).tolist()
        assert got == order  # frames are contiguous from 0 here, so position == frame
    assert epoch0 != epoch1
    assert sampler.state_dict() == {"epoch": 2, "start_index": 0}


def test_iter_advances_the_epoch_at_once():
    starts, ends = bounds([5, 5])
    sampler = EpisodeAwareSampler(starts, ends, shuffle=True)
    iterator = iter(sampler)
    assert sampler.state_dict() == {"epoch": 1, "start_index": 0}  # before a single item is drawn
    first = list(iterator)
    sampler.set_epoch(0)
    assert list(sampler) == first


_ORDER_SCRIPT = """
import json, numpy as np
from lerobot_inspect.loaders.sampler import EpisodeAwareSampler
s = EpisodeAwareSampler(np.arange(0, 400, 40), np.arange(40, 440, 40), shuffle=True, seed=11,
                        drop_n_first_frames=1)
s.set_epoch(4)
print(json.dumps(list(s)))
"""


def test_same_seed_and_epoch_give_the_same_order_in_another_process():
    out = subprocess.run([sys.executable, "-c", _ORDER_SCRIPT], capture_output=True, text=True, check=True)
    sampler = EpisodeAwareSampler(np.arange(0, 400, 40), np.arange(40, 440, 40), shuffle=True, seed=11,
                                  drop_n_first_frames=1)
    sampler.set_epoch(4)
    assert json.loads(out.stdout) == list(sampler)


def accelerate_steps(sampler, epochs, batch_size, num_processes):
    """What each global step consumes, per accelerate's BatchSamplerShard with even_batches=True.

    Batches are cut from the sampler's stream; process p takes batches p, p+P, ...; a short last
    round is padded from the start of the epoch (those repeats are not new sampler positions)."""
    steps = []
    for _ in range(epochs):
        stream = list(sampler)
        batches = [stream[i:i + batch_size] for i in range(0, len(stream), batch_size)]
        for round_start in range(0, len(batches), num_processes):
            steps.append([i for b in batches[round_start:round_start + num_processes] for i in b])
    return steps


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 15), min_size=1, max_size=8),
    batch_size=st.integers(1, 9),
    num_processes=st.integers(1, 4),
    shuffle=st.booleans(),
    data=st.data(),
)
def test_resume_from_any_step_continues_with_the_exact_next_batch(lengths, batch_size, num_processes,
                                                                  shuffle, data):
    starts, ends = bounds(lengths)
    make = lambda: EpisodeAwareSampler(starts, ends, shuffle=shuffle, seed=5)  # noqa: E731
    steps = accelerate_steps(make(), 3, batch_size, num_processes)
    step = data.draw(st.integers(0, len(steps) - 1))
    resumed = make()
    resumed.load_state_dict(compute_sampler_state(step, len(resumed), batch_size, num_processes))
    tail = list(resumed)
    expected_rest_of_epoch = []
    steps_per_epoch = len(steps) // 3
    epoch_end = (step // steps_per_epoch + 1) * steps_per_epoch
    for consumed in steps[step:epoch_end]:
        expected_rest_of_epoch += consumed
    assert tail == expected_rest_of_epoch, f"resume at step {step}"
    next_epoch = [i for s in steps[epoch_end:epoch_end + steps_per_epoch] for i in s]
    if next_epoch:
        assert list(resumed) == next_epoch, "the epoch after the resumed one"


def test_building_over_ten_million_frames_is_fast_and_allocates_per_episode_only():
    starts = np.arange(0, 10_000_000, 100, dtype=np.int64)
    ends = starts + 100
    tracemalloc.start()
    began = time.perf_counter()
    sampler = EpisodeAwareSampler(starts, ends, drop_n_first_frames=1)
    iterator = iter(sampler)
    head = [next(iterator) for _ in range(3)]
    elapsed = time.perf_counter() - began
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(sampler) == 9_900_000 and head == [1, 2, 3]
    assert elapsed < 1.0, f"{elapsed:.3f} s"  # the "well under a second"; ~0.01 s measured
    # 100k episodes x a few int64 arrays is ~ 5 MB; one per-frame int64 array would be 80 MB.
    assert peak < 12_000_000, f"peak {peak / 1e6:.1f} MB"
    sampler.load_state_dict({"epoch": 0, "start_index": 9_899_998})
    assert list(sampler) == [9_999_998, 9_999_999]


def test_empty_episodes_are_skipped_with_a_warning(caplog):
    starts, ends = bounds([3, 10, 2])
    with caplog.at_level(logging.WARNING, logger="lerobot_inspect.loaders.sampler"):
        sampler = EpisodeAwareSampler(starts, ends, drop_n_first_frames=1, drop_n_last_frames=1)
    assert list(sampler) == [1, *range(4, 12)]
    assert "episode 2 has 2 frames" in caplog.text
    assert "episode 1" not in caplog.text


def test_bad_options_and_foreign_states_are_refused():
    starts, ends = bounds([3, 4])
    with pytest.raises(OptionError, match="episode_indices_to_use contains 5"):
        EpisodeAwareSampler(starts, ends, episode_indices_to_use=[0, 5])
    with pytest.raises(OptionError, match="drop_n_first_frames=-1"):
        EpisodeAwareSampler(starts, ends, drop_n_first_frames=-1)
    sampler = EpisodeAwareSampler(starts, ends)
    with pytest.raises(ResumeError, match="past the end of an epoch of 7 frames"):
        sampler.load_state_dict({"epoch": 0, "start_index": 8})
    with pytest.raises(ResumeError, match="start_index"):
        sampler.load_state_dict({"epoch": 0})


def test_compute_sampler_state_arithmetic():
    # 10 frames, batch 3 -> 4 batches; 2 processes -> 2 steps per epoch, 6 positions per step.
    assert compute_sampler_state(0, 10, 3, 2) == {"epoch": 0, "start_index": 0}
    assert compute_sampler_state(1, 10, 3, 2) == {"epoch": 0, "start_index": 6}
    assert compute_sampler_state(2, 10, 3, 2) == {"epoch": 1, "start_index": 0}
    # 3 processes: 4 batches -> 2 steps (the second padded), still 2 steps per epoch.
    assert compute_sampler_state(3, 10, 3, 3) == {"epoch": 1, "start_index": 9}
