"""resume_comparison counts repeated/lost/reordered samples exactly: checked against brute-force recounts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lerobot_inspect.probes.mixing import batch_episode_ids, randomness_fraction, reservoir_shuffle_order
from lerobot_inspect.probes.resume import resume_comparison


def lcs_length(a: list, b: list) -> int:
    """Textbook O(n*m) longest common subsequence, the independent reference for `reordered`."""
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
    return table[-1][-1]


@st.composite
def interrupted_runs(draw):
    """An uninterrupted epoch (distinct ids) and a resumed run built by losing, repeating and moving samples."""
    n = draw(st.integers(0, 40))
    full = draw(st.permutations(list(range(n))))
    k = draw(st.integers(0, n))
    rest = list(full[k:])
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["drop", "repeat", "move", "foreign"]))
        if op == "drop" and rest:
            del rest[draw(st.integers(0, len(rest) - 1))]
        elif op == "repeat" and full:
            rest.insert(draw(st.integers(0, len(rest))), full[draw(st.integers(0, n - 1))])
        elif op == "move" and len(rest) > 1:
            item = rest.pop(draw(st.integers(0, len(rest) - 1)))
            rest.insert(draw(st.integers(0, len(rest))), item)
        elif op == "foreign":
            rest.insert(draw(st.integers(0, len(rest))), 1000 + draw(st.integers(0, 5)))
    return list(full), list(full[:k]), rest


@settings(max_examples=300, deadline=None)
@given(interrupted_runs())
def test_counts_match_a_brute_force_recount(run):
    full, prefix, rest = run
    result = resume_comparison(full, prefix, rest)
    combined = prefix + rest
    in_full = [x for x in combined if x in set(full)]
    assert result.repeated == len(in_full) - len(set(in_full))
    assert result.lost == len(set(full) - set(combined))
    assert result.unexpected == len(combined) - len(in_full)
    first_copies = list(dict.fromkeys(in_full))
    assert result.reordered == len(first_copies) - lcs_length(full, first_copies)
    assert result.exact == (combined == full)
    assert result.prefix_matches
    assert result.samples_before == len(prefix) and result.resumed_total == len(combined)
    if not result.exact:
        d = result.first_divergence
        assert combined[:d] == full[:d] and (d == min(len(full), len(combined)) or combined[d] != full[d])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 5), max_size=30), st.integers(0, 30))
def test_multisets_match_copies_in_order(full, k):
    """Streams with repeated ids (several epochs): the j-th copy matches the j-th copy."""
    k = min(k, len(full))
    same = resume_comparison(full, full[:k], full[k:])
    assert same.exact and (same.repeated, same.lost, same.reordered) == (0, 0, 0)
    doubled = resume_comparison(full, full[:k], full[max(0, k - 3):])
    assert doubled.repeated == min(3, k) and doubled.lost == 0


def test_a_classic_native_resume():
    full = list(range(10))
    result = resume_comparison(full, [0, 1, 2], [6, 7, 9, 8])
    assert result.as_dict() == {"samples_before": 3, "full_total": 10, "resumed_total": 7, "repeated": 0,
                                "lost": 3, "unexpected": 0, "reordered": 1, "first_divergence": 3,
                                "prefix_matches": True, "exact": False}
    assert not resume_comparison(full, [0, 2], full[2:]).prefix_matches


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 300), st.integers(1, 50), st.integers(0, 2**32 - 1))
def test_reservoir_order_is_a_permutation_bounded_by_its_buffer(num_frames, buffer_size, seed):
    order = reservoir_shuffle_order(num_frames, buffer_size=buffer_size, seed=seed)
    assert sorted(order.tolist()) == list(range(num_frames))
    np.testing.assert_array_equal(order, reservoir_shuffle_order(num_frames, buffer_size=buffer_size, seed=seed))
    # the j-th output was already read: it can be at most buffer_size positions ahead of j
    assert (order <= np.arange(num_frames) + buffer_size).all()


def test_reservoir_of_one_is_sequential_and_randomness_grows_with_the_buffer():
    np.testing.assert_array_equal(reservoir_shuffle_order(50, buffer_size=1, seed=3), np.arange(50))
    episode_of = np.repeat(np.arange(40), 25)
    fractions = [randomness_fraction(batch_episode_ids(episode_of[reservoir_shuffle_order(1000, buffer_size=b,
                                                                                          seed=0)], batch_size=20))
                 for b in (1, 50, 500)]
    assert fractions[0] == pytest.approx(1.5 / 20 * 1.0, abs=0.03)  # sequential: 1-2 episodes per batch
    assert fractions[0] < fractions[1] < fractions[2]


def test_batch_episode_ids_drops_the_short_tail():
    assert batch_episode_ids(np.arange(10), batch_size=4).tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]
    with pytest.raises(ValueError, match="no full batch"):
        batch_episode_ids(np.arange(3), batch_size=4)
