"""Resume chart: which samples a resumed run repeated or lost, step by step."""

from __future__ import annotations

import altair as alt
import pandas as pd

from lerobot_inspect.charts._common import WIDTH, cap_rows, require_columns

__all__ = ["resume_overlap"]

STATUS_COLORS = alt.Scale(domain=["before resume", "same", "repeated", "lost"],
                          range=["#b8c4d0", "#4c9a5a", "#e69f00", "#c0392b"])


def resume_overlap(table: pd.DataFrame, *, resume_step: int | None = None) -> alt.Chart:
    """One row per pipeline, one mark per step; orange = a sample seen again, red = one never seen.

    `table` columns: pipeline, step, status (before resume / same / repeated / lost)."""
    require_columns(table, ["pipeline", "step", "status"], "resume_overlap")
    table = cap_rows(table, 20000)
    chart = alt.Chart(table, title="Resume: samples after the checkpoint").mark_tick(thickness=3, size=18).encode(
        x=alt.X("step:Q", title="step"),
        y=alt.Y("pipeline:N", title=None),
        color=alt.Color("status:N", scale=STATUS_COLORS, title=None),
        tooltip=[c for c in ("pipeline", "step", "status", "index") if c in table.columns],
    ).properties(width=WIDTH)
    if resume_step is not None:
        rule = alt.Chart(pd.DataFrame({"step": [resume_step]})).mark_rule(strokeDash=[4, 3]).encode(x="step:Q")
        chart = chart + rule
    return chart
