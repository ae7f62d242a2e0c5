"""Charts build valid Vega-Lite from probe tables, cap what they embed, and render offline to SVG."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import vl_convert

from lerobot_inspect import charts
from lerobot_inspect.charts._common import MAX_ROWS


def _svg(chart) -> str:
    return vl_convert.vegalite_to_svg(chart.to_json())


def test_heatmap_title_carries_randomness_and_counts_samples():
    samples = pd.DataFrame({"batch": np.repeat(np.arange(4), 8), "episode_index": np.arange(32) % 5})
    chart = charts.batch_episode_heatmap(samples, randomness=0.9371)
    spec = chart.to_dict()
    assert "0.94" in str(spec["title"])
    values = pd.DataFrame(chart.data)
    assert values["count"].sum() == 32  # every sample lands in one cell
    assert "<svg" in _svg(chart)


def test_heatmap_keeps_only_first_batches():
    samples = pd.DataFrame({"batch": np.arange(1000), "episode_index": 0})
    chart = charts.batch_episode_heatmap(samples, max_batches=64)
    assert pd.DataFrame(chart.data)["batch"].max() == 63


def test_padding_timeline_marks_pads_and_caps_frames():
    frames = pd.DataFrame({"episode_index": 0, "key": "action", "frame_index": np.arange(1000), "slot": 0,
                           "offset_frames": -1, "query_frame": np.maximum(np.arange(1000) - 1, 0),
                           "is_pad": np.arange(1000) == 0})
    chart = charts.padding_timeline(frames, max_frames=100)
    data = pd.DataFrame(chart.data)
    assert data["frame_index"].max() == 99 and data["is_pad"].sum() == 1
    assert "episode 0" in str(chart.to_dict()["title"])


def test_chart_names_missing_columns():
    with pytest.raises(ValueError, match="lacks"):
        charts.fetch_size_histogram(pd.DataFrame({"bytes": [1]}))


def test_bytes_vs_floor_keeps_the_worst_episodes():
    per_episode = pd.DataFrame({"episode_index": np.arange(MAX_ROWS * 3), "bytes_read": 10, "floor_bytes": 5})
    per_episode.loc[per_episode["episode_index"] == 12345, "bytes_read"] = 10_000
    chart = charts.bytes_vs_floor(per_episode, max_episodes=40)
    data = pd.DataFrame(chart.data)
    assert data["episode_index"].nunique() == 40 and len(data) == 80  # header + span per episode
    assert 12345 in set(data["episode_index"])  # worst first: the one read far above its floor stays
    assert "40 of 15000" in str(chart.to_dict()["title"])
    assert "<svg" in _svg(chart)


def test_every_chart_stays_small_on_big_tables():
    """Whatever the input size, a chart embeds a few thousand rows at most (altair refuses 5,000)."""
    steps = 200_000
    status = np.where(np.arange(steps) < 40, "before resume", "same").astype(object)
    status[[41, 42, 150_000]] = "repeated"
    resume = pd.DataFrame({"pipeline": "pool", "step": np.arange(steps), "status": status})
    window = charts.resume_overlap(resume, resume_step=40)
    overview = charts.resume_overview(resume)
    assert len(window.layer[0].data) <= 400 and "<svg" in _svg(window)
    assert len(overview.data) <= 60 * 4 and "<svg" in _svg(overview)
    assert set(overview.data["status"]) >= {"repeated"}  # a repeat far from the checkpoint still shows
    fetches = pd.DataFrame({"size_bytes": np.arange(50_000) * 7 % 300_000, "kind": "span"})
    hist = charts.fetch_size_histogram(fetches)
    assert len(hist.data) <= 30 and hist.data["fetches"].sum() == 50_000
    rows = pd.DataFrame({"episode_index": np.repeat(np.arange(10_000), 2), "camera": ["a", "b"] * 10_000,
                         "ok": True})
    rows.loc[(rows["episode_index"] == 7777) & (rows["camera"] == "b"), "ok"] = False
    grid = charts.decode_grid(rows)
    data = pd.DataFrame(grid.data)
    assert len(data) <= 2 * 60 and data["failed"].sum() == 1
    assert "<svg" in _svg(grid)
    samples = pd.DataFrame({"batch": np.repeat(np.arange(1000), 8), "episode_index": np.arange(8000) // 30})
    heat = charts.batch_episode_heatmap(samples)
    assert len(heat.data) <= 120 * 80 and heat.data["batch"].nunique() <= 120


def test_resume_window_covers_the_overlap_region():
    status = ["before resume"] * 100 + ["repeated"] * 30 + ["same"] * 5000
    table = pd.DataFrame({"pipeline": "datasets", "step": np.arange(len(status)), "status": status})
    start, stop = charts.resume_window(table, 100)
    assert start == 80 and 129 < stop <= 160  # the checkpoint and every repeat, not the 5,000 steps after


def test_resume_and_fetch_charts_render():
    table = pd.DataFrame({"pipeline": ["ours"] * 4 + ["datasets"] * 4, "step": list(range(4)) * 2,
                          "status": ["before resume", "same", "same", "same",
                                     "before resume", "repeated", "lost", "same"]})
    assert "<svg" in _svg(charts.resume_overlap(table, resume_step=1))
    fetches = pd.DataFrame({"size_bytes": [1000, 200_000, 64_000]})
    assert "<svg" in _svg(charts.fetch_size_histogram(fetches))
    # cache hits cost no request: the histogram counts network fetches only
    with_hits = pd.DataFrame({"size_bytes": [1000, 1000, 9000], "kind": ["header", "header", "span"],
                              "cache_hit": [False, True, False]})
    hist = charts.fetch_size_histogram(with_hits)
    assert len(hist.data) == 2 and "2 requests" in str(hist.to_dict()["title"])
    per_episode = pd.DataFrame({"episode_index": [0, 1], "camera": "c", "bytes_read": [12, 10], "floor_bytes": [12, 10],
                                "header_bytes_read": [2, 0], "span_bytes_read": [10, 10]})
    assert "<svg" in _svg(charts.bytes_vs_floor(per_episode))


def test_frames_side_by_side_difference_map_is_black_for_identical_frames():
    frame = np.full((8, 10, 3), 200, np.uint8)
    other = frame.copy()
    other[:4] = 0
    same = np.asarray(charts.frames_side_by_side({"a": frame, "b": frame}, scale=1))
    differ = np.asarray(charts.frames_side_by_side({"a": frame, "b": other}, scale=1))
    label = 14
    diff_same = same[label:, 2 * (10 + 8):]
    diff_other = differ[label:, 2 * (10 + 8):]
    assert diff_same.max() == 0
    assert diff_other.max() == 255
    assert same.shape == (8 + label, 3 * 10 + 2 * 8, 3)


def test_frame_offsets_colours_each_status():
    parity = pd.DataFrame({"episode_index": [0, 0, 1], "camera": "c", "position": ["first", "last", "first"],
                           "frame_index": [0, 9, 0], "frame_offset": [1.0, np.nan, 0.0], "code_episode": [0, 1, 1],
                           "code_frame": [1, 0, 0], "error": ["", "", ""]})
    data = pd.DataFrame(charts.frame_offsets(parity).data)
    assert data["status"].tolist() == ["shifted", "other episode", "right frame"]


def test_findings_and_decode_grid():
    findings = pd.DataFrame({"severity": ["error", "warning", "error"], "code": ["a", "b", "a"]})
    data = pd.DataFrame(charts.findings_bar(findings).data)
    assert data.set_index("code")["findings"].to_dict() == {"a": 2, "b": 1}
    rows = pd.DataFrame({"episode_index": [0, 0, 1], "camera": "c", "ok": [True, False, True]})
    grid = pd.DataFrame(charts.decode_grid(rows).data)
    assert grid.set_index("episode_index")["ok"].to_dict() == {0: False, 1: True}
