"""Fetch charts: size of each byte-range read, and bytes read per episode against the floor."""

from __future__ import annotations

import altair as alt
import pandas as pd

from lerobot_inspect.charts._common import WIDTH, cap_rows, require_columns

__all__ = ["bytes_vs_floor", "fetch_size_histogram"]


def fetch_size_histogram(fetches: pd.DataFrame) -> alt.Chart:
    """Histogram of fetch sizes (log2 bins): many tiny reads mean round-trip-bound remote loading."""
    require_columns(fetches, ["size_bytes"], "fetch_size_histogram")
    table = cap_rows(fetches[["size_bytes"]].copy(), 20000)
    table["size_kib"] = table["size_bytes"] / 1024
    return alt.Chart(table, title="Fetch sizes").mark_bar().encode(
        x=alt.X("size_kib:Q", bin=alt.Bin(maxbins=30), title="fetch size (KiB)"),
        y=alt.Y("count():Q", title="fetches"),
    ).properties(width=WIDTH)


def bytes_vs_floor(per_episode: pd.DataFrame) -> alt.Chart:
    """Bytes read per episode (bars) against the floor, the episode's own byte span (ticks).

    Bars far above their tick mean the loader reads neighbours' bytes (whole files, wide GOPs)."""
    require_columns(per_episode, ["episode_index", "bytes_read", "floor_bytes"], "bytes_vs_floor")
    table = cap_rows(per_episode)
    base = alt.Chart(table, title="Bytes read per episode vs floor").encode(
        x=alt.X("episode_index:O", title="episode", axis=alt.Axis(labelOverlap=True)))
    bars = base.mark_bar(color="#5b8db8").encode(y=alt.Y("bytes_read:Q", title="bytes"),
                                                  tooltip=["episode_index", "bytes_read", "floor_bytes"])
    ticks = base.mark_tick(color="#c0392b", thickness=2).encode(y="floor_bytes:Q")
    return (bars + ticks).properties(width=WIDTH)
