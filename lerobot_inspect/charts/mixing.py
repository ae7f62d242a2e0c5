"""Mixing charts: which episodes each batch drew from."""

from __future__ import annotations

import altair as alt
import pandas as pd

from lerobot_inspect.charts._common import WIDTH, require_columns

__all__ = ["batch_episode_heatmap"]


def batch_episode_heatmap(samples: pd.DataFrame, *, randomness: float | None = None,
                          max_batches: int = 64, max_episodes: int = 80,
                          label: str | None = None) -> alt.Chart:
    """Batch (x) by episode (y), shaded by how many of the batch's samples came from that episode.

    `samples` has one row per sample (columns batch, episode_index) or per cell (plus `count`).
    A diagonal band means batches drew from few neighbouring episodes (poor mixing); an even
    speckle means good mixing. The randomness fraction, when given, goes in the title."""
    require_columns(samples, ["batch", "episode_index"], "batch_episode_heatmap")
    table = samples[samples["batch"] < samples["batch"].min() + max_batches]
    if "count" in table:
        cells = table.groupby(["batch", "episode_index"], as_index=False)["count"].sum()
    else:
        cells = table.groupby(["batch", "episode_index"], as_index=False).size().rename(columns={"size": "count"})
    top = cells.groupby("episode_index")["count"].sum().nlargest(max_episodes).index
    cells = cells[cells["episode_index"].isin(top)]
    title = f"{label}: episodes per batch" if label else "Episodes per batch"
    if randomness is not None:
        title += f" (randomness fraction {randomness:.2f})"
    return alt.Chart(cells, title=title).mark_rect().encode(
        x=alt.X("batch:O", title="batch", axis=alt.Axis(labelOverlap=True)),
        y=alt.Y("episode_index:O", title="episode", axis=alt.Axis(labelOverlap=True)),
        color=alt.Color("count:Q", title="samples", scale=alt.Scale(scheme="blues")),
        tooltip=["batch", "episode_index", "count"],
    ).properties(width=WIDTH)
