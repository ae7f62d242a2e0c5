"""Padding charts: where `<key>_is_pad` is true along an episode, and per slot across episodes."""

from __future__ import annotations

import altair as alt
import pandas as pd

from lerobot_inspect.charts._common import WIDTH, cap_rows, require_columns

__all__ = ["padding_summary", "padding_timeline"]

PAD_COLORS = alt.Scale(domain=[False, True], range=["#dfe6ee", "#d35400"])


def padding_timeline(frames: pd.DataFrame, *, max_frames: int = 400) -> alt.Chart:
    """One row per (key, slot), one cell per frame of the episode; orange = padded slot.

    Read it as: orange belongs only at the left edge for negative offsets and the right edge for
    positive ones; orange anywhere in the middle means the window crossed into another episode."""
    require_columns(frames, ["frame_index", "key", "slot", "offset_frames", "is_pad"], "padding_timeline")
    table = frames[frames["frame_index"] < max_frames].copy()
    table["window slot"] = table["key"] + "  [" + table["offset_frames"].map("{:+d}".format) + "]"
    table = cap_rows(table, 20000)
    episode = int(table["episode_index"].iloc[0]) if len(table) and "episode_index" in table else None
    title = "Padded window slots" + (f", episode {episode}" if episode is not None else "")
    return alt.Chart(table, title=title).mark_rect().encode(
        x=alt.X("frame_index:O", title="frame in episode", axis=alt.Axis(labelOverlap=True)),
        y=alt.Y("window slot:N", title=None, sort=None),
        color=alt.Color("is_pad:N", scale=PAD_COLORS, title="is_pad"),
        tooltip=["key", "slot", "offset_frames", "frame_index", "query_frame", "is_pad"],
    ).properties(width=WIDTH)


def padding_summary(table: pd.DataFrame) -> alt.Chart:
    """Padded frames per (key, slot offset) across episodes; red bars fail the edge invariant."""
    require_columns(table, ["key", "offset_frames", "padded", "at_edges"], "padding_summary")
    grouped = table.groupby(["key", "offset_frames"], as_index=False).agg(
        padded=("padded", "sum"), at_edges=("at_edges", "all"))
    grouped["pads"] = grouped["at_edges"].map({True: "only at episode edges", False: "NOT only at edges"})
    return alt.Chart(grouped, title="Padded frames per window slot (all episodes)").mark_bar().encode(
        x=alt.X("offset_frames:O", title="slot offset (frames)"),
        y=alt.Y("padded:Q", title="padded frames"),
        column=alt.Column("key:N", title=None),
        color=alt.Color("pads:N", scale=alt.Scale(domain=["only at episode edges", "NOT only at edges"],
                                                  range=["#5b8db8", "#c0392b"]), title=None),
        tooltip=["key", "offset_frames", "padded", "pads"],
    ).resolve_scale(x="independent")
