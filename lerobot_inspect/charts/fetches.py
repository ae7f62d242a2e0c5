"""Fetch charts: size of each byte-range read, and bytes read per episode against the floor."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from lerobot_inspect.charts._common import WIDTH, require_columns

__all__ = ["bytes_vs_floor", "fetch_size_histogram"]


def fetch_size_histogram(fetches: pd.DataFrame, *, bins: int = 30) -> alt.Chart:
    """Histogram of network fetch sizes, coloured header vs span: many tiny reads mean a
    round-trip-bound remote loader. Cache hits (no request) are left out when the table says which.
    Binned here, not in Vega-Lite, so the chart carries `bins` rows per kind however many fetches."""
    require_columns(fetches, ["size_bytes"], "fetch_size_histogram")
    table = fetches
    if "cache_hit" in table:
        table = table[~table["cache_hit"].astype(bool)]
    table = table.copy()
    if "kind" not in table:
        table["kind"] = "fetch"
    size_kib = table["size_bytes"].to_numpy(dtype=float) / 1024
    edges = np.histogram_bin_edges(size_kib, bins=bins) if len(size_kib) else np.array([0.0, 1.0])
    rows = []
    for kind, group in table.groupby("kind"):
        counts, _ = np.histogram(group["size_bytes"].to_numpy(dtype=float) / 1024, bins=edges)
        rows += [{"kind": kind, "from_kib": lo, "to_kib": hi, "fetches": int(n)}
                 for lo, hi, n in zip(edges[:-1], edges[1:], counts, strict=True) if n]
    binned = pd.DataFrame(rows, columns=["kind", "from_kib", "to_kib", "fetches"])
    kinds = sorted(set(table["kind"]))
    return alt.Chart(binned, title=f"Network fetch sizes ({len(table)} requests)").mark_bar().encode(
        x=alt.X("from_kib:Q", bin="binned", title="fetch size (KiB)"),
        x2="to_kib:Q",
        y=alt.Y("fetches:Q", title="fetches", stack=True, axis=alt.Axis(tickMinStep=1, format="d")),
        color=alt.Color("kind:N", title=None, scale=alt.Scale(
            domain=kinds, range=[{"header": "#e69f00"}.get(k, "#5b8db8") for k in kinds])),
        tooltip=["kind", "from_kib", "to_kib", "fetches"],
    ).properties(width=WIDTH, height=220)


def bytes_vs_floor(per_episode: pd.DataFrame, *, max_episodes: int = 40) -> alt.Chart:
    """Bytes read per episode (bars: header part, span part) against the floor (black tick), one
    row of bars per camera; past `max_episodes` episodes, the ones read furthest above their floor
    (worst first; the title says how many of how many).

    The floor is the bytes of the samples the episode's decoder needs, plus the file header the
    first time the run touches the file. Bars far above their tick mean the loader reads
    neighbours' bytes (whole files, wide GOPs); bars at the tick mean it reads only what it needs."""
    require_columns(per_episode, ["episode_index", "bytes_read", "floor_bytes"], "bytes_vs_floor")
    table = per_episode.copy()
    episodes = int(table["episode_index"].nunique())
    title = "Bytes read per episode (bars) vs floor (black tick)"
    if episodes > max_episodes:
        excess = (table["bytes_read"] - table["floor_bytes"]).groupby(table["episode_index"]).max()
        worst = excess.sort_values(ascending=False, kind="stable").index[:max_episodes]
        table = table[table["episode_index"].isin(worst)]
        title += (f": the {max_episodes} of {episodes} episodes read furthest above their floor"
                  if excess.max() > 0 else
                  f": all {episodes} episodes read exactly their floor, the first {max_episodes} shown")
    if "camera" not in table:
        table["camera"] = "video"
    if "header_bytes_read" not in table:
        table["header_bytes_read"] = 0
        table["span_bytes_read"] = table["bytes_read"]
    parts = table.melt(id_vars=["episode_index", "camera", "bytes_read", "floor_bytes"],
                       value_vars=["header_bytes_read", "span_bytes_read"], var_name="part", value_name="bytes")
    parts["part"] = parts["part"].map({"header_bytes_read": "header", "span_bytes_read": "span"})
    parts["KiB"] = parts["bytes"] / 1024
    parts["floor_kib"] = parts["floor_bytes"] / 1024
    base = alt.Chart().encode(x=alt.X("episode_index:O", title="episode",
                                      axis=alt.Axis(labelOverlap=True, labelAngle=0)))
    bars = base.mark_bar().encode(
        y=alt.Y("KiB:Q", title="KiB read", stack=True),
        color=alt.Color("part:N", title="bytes read", scale=alt.Scale(domain=["header", "span"],
                                                                       range=["#e69f00", "#5b8db8"])),
        tooltip=["episode_index", "camera", "part", "bytes", "bytes_read", "floor_bytes"])
    ticks = base.transform_filter(alt.datum.part == "span").mark_tick(color="black", thickness=2).encode(
        y=alt.Y("floor_kib:Q"), tooltip=["episode_index", "camera", "floor_bytes"])
    return alt.layer(bars, ticks, data=parts).properties(width=WIDTH - 120, height=140).facet(
        row=alt.Row("camera:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left", labelOrient="top")),
    ).properties(title=title)
