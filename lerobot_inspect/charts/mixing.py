"""Mixing charts: which episodes each batch drew from."""

from __future__ import annotations

import altair as alt
import pandas as pd

from lerobot_inspect.charts._common import WIDTH, require_columns

__all__ = ["batch_episode_heatmap"]


def batch_episode_heatmap(samples: pd.DataFrame, *, randomness: float | None = None,
                          max_batches: int = 2000, max_columns: int = 120, max_episodes: int = 80,
                          label: str | None = None) -> alt.Chart:
    """Batch (x) by episode (y), shaded by how many of the batch's samples came from that episode.

    `samples` has one row per sample (columns batch, episode_index) or per cell (plus `count`).
    A diagonal band means batches drew from few neighbouring episodes (poor mixing); an even
    speckle means good mixing. The first `max_batches` batches are used; past `max_columns` of
    them, consecutive batches share a column (the title says how many), and only the
    `max_episodes` episodes with most samples get a row, so the chart stays a few thousand marks
    at most. The randomness fraction, when given, goes in the title."""
    require_columns(samples, ["batch", "episode_index"], "batch_episode_heatmap")
    table = samples[samples["batch"] < samples["batch"].min() + max_batches]
    if "count" not in table:
        table = table.assign(count=1)
    n_batches = int(table["batch"].nunique())
    per_column = max(1, -(-n_batches // max_columns))
    table = table.assign(batch=(table["batch"] - table["batch"].min()) // per_column * per_column)
    cells = table.groupby(["batch", "episode_index"], as_index=False)["count"].sum()
    episodes = int(cells["episode_index"].nunique())
    top = cells.groupby("episode_index")["count"].sum().nlargest(max_episodes).index
    cells = cells[cells["episode_index"].isin(top)]
    title = f"{label}: episodes per batch" if label else "Episodes per batch"
    if randomness is not None:
        title += f" (randomness fraction {randomness:.2f})"
    notes = [f"{n_batches} batches" + (f", {per_column} per column" if per_column > 1 else "")]
    if episodes > max_episodes:
        notes.append(f"the {max_episodes} of {episodes} episodes with most samples")
    return alt.Chart(cells, title=alt.Title(title, subtitle="; ".join(notes))).mark_rect().encode(
        x=alt.X("batch:O", title="batch" + (f" (first of each {per_column})" if per_column > 1 else ""),
                axis=alt.Axis(labelOverlap=True, labelAngle=0)),
        y=alt.Y("episode_index:O", title="episode", axis=alt.Axis(labelOverlap=True)),
        color=alt.Color("count:Q", title="samples", scale=alt.Scale(scheme="blues")),
        tooltip=["batch", "episode_index", "count"],
    ).properties(width=WIDTH)
