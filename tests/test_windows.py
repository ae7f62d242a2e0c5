"""Window math: LeRobot's delta_timestamps validation, clamping and `_is_pad` masks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lerobot_inspect.errors import OptionError
from lerobot_inspect.loaders.windows import delta_indices, needed_frames, query_indices


@st.composite
def episode_frames(draw):
    """Random episodes laid end to end, some frames inside them, and a set of offsets."""
    lengths = draw(st.lists(st.integers(1, 40), min_size=1, max_size=6))
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    n = draw(st.integers(1, 30))
    episodes = np.array(draw(st.lists(st.integers(0, len(lengths) - 1), min_size=n, max_size=n)))
    start, stop = bounds[episodes], bounds[episodes + 1]
    within = np.array(draw(st.lists(st.floats(0, 1, exclude_max=True), min_size=n, max_size=n)))
    absolute = start + (within * (stop - start)).astype(np.int64)
    deltas = np.array(draw(st.lists(st.integers(-50, 50), min_size=1, max_size=8)), dtype=np.int64)
    return absolute, start, stop, deltas


@settings(max_examples=200, deadline=None)
@given(episode_frames())
def test_query_is_clamped_and_padded_exactly_where_the_window_leaves_the_episode(case):
    absolute, start, stop, deltas = case
    query, is_pad = query_indices(absolute, start, stop, deltas)
    assert query.shape == is_pad.shape == (len(absolute), len(deltas))
    assert query.dtype == np.int64 and is_pad.dtype == bool
    assert ((query >= start[:, None]) & (query <= stop[:, None] - 1)).all()
    unclamped = absolute[:, None] + deltas[None, :]
    expected_pad = (unclamped < start[:, None]) | (unclamped >= stop[:, None])
    np.testing.assert_array_equal(is_pad, expected_pad)
    np.testing.assert_array_equal(query[~is_pad], unclamped[~is_pad])
    # A padded slot repeats the boundary frame on the side it fell off.
    before = unclamped < start[:, None]
    after = unclamped >= stop[:, None]
    np.testing.assert_array_equal(query[before], np.broadcast_to(start[:, None], query.shape)[before])
    np.testing.assert_array_equal(query[after], np.broadcast_to(stop[:, None] - 1, query.shape)[after])
    # Frames at least max|d| away from both ends never pad.
    reach = int(np.abs(deltas).max())
    interior = (absolute - start >= reach) & (stop - 1 - absolute >= reach)
    assert not is_pad[interior].any()


@settings(max_examples=100, deadline=None)
@given(episode_frames())
def test_needed_frames_is_the_sorted_union_of_queries(case):
    query, _ = query_indices(*case)
    frames = needed_frames(query)
    assert list(frames) == sorted(set(query.ravel().tolist()))


def test_query_indices_of_lerobot_example():
    query, is_pad = query_indices(1, 0, 10, np.array([-2, -1, 0, 9]))
    assert query.tolist() == [[0, 0, 1, 9]]
    assert is_pad.tolist() == [[True, False, False, True]]


def test_query_indices_refuses_a_frame_outside_its_episode():
    with pytest.raises(OptionError, match=r"frame 10 is not inside its episode \[0, 10\)"):
        query_indices(np.array([3, 10]), 0, 10, np.array([0]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-300, 300), min_size=1, max_size=10), st.sampled_from([10, 15, 30, 50]))
def test_multiples_of_the_frame_period_round_trip(frames, fps):
    offsets = delta_indices({"action": [k / fps for k in frames]}, fps)
    assert offsets["action"].dtype == np.int64
    assert offsets["action"].tolist() == frames


def test_lerobot_example_rounded_deltas_are_accepted_and_0_02_rejected():
    # abs(0.0333*30 - 1)/30 = 3.3e-5 and abs(0.0667*30 - 2)/30 = 3.3e-5, both <= 1e-4.
    assert delta_indices({"a": [0.0333, 0.0667, -0.0333]}, 30)["a"].tolist() == [1, 2, -1]
    # 0.02*30 = 0.6 frames: 0.4/30 = 0.013 > 1e-4. The message names key, delta, nearest valid and fps.
    with pytest.raises(OptionError, match=r"'observation.state'.*0\.02 s.*fps=30.*nearest valid delta is 0\.0"):
        delta_indices({"observation.state": [0.0, 0.02]}, 30)
    with pytest.raises(ValueError, match=r"nearest valid delta is 0\.03333"):
        delta_indices({"a": [0.034]}, 30)


def test_tolerance_is_respected_at_the_boundary():
    assert delta_indices({"a": [0.0333]}, 30, tolerance_s=4e-5)["a"].tolist() == [1]
    with pytest.raises(OptionError):
        delta_indices({"a": [0.0333]}, 30, tolerance_s=3e-5)


def test_key_order_none_and_empty_list():
    offsets = delta_indices({"z": [0.0], "a": [-0.1, 0.0], "m": [0.1]}, 10)
    assert list(offsets) == ["z", "a", "m"]
    assert delta_indices(None, 30) == {}
    with pytest.raises(OptionError, match=r"delta_timestamps\['a'\] is empty"):
        delta_indices({"a": []}, 30)
    with pytest.raises(OptionError, match="fps"):
        delta_indices({"a": [0.0]}, 0)
