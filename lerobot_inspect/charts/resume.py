"""Resume charts: which samples a resumed run repeated or lost, around the checkpoint and overall.

A run has as many steps as the dataset has frames (10k to 2M), and the interesting part (the
samples after the checkpoint that differ) is a few dozen of them: one mark per step over the whole
run would draw them as an invisible sliver, and past 5,000 rows altair refuses the chart. So two
charts: the steps around the checkpoint, one tick each (`resume_overlap`), and the whole run in
bins (`resume_overview`), both over probe-sized tables.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from lerobot_inspect.charts._common import WIDTH, require_columns

__all__ = ["resume_overlap", "resume_overview", "resume_window"]

STATUSES = ["before resume", "same", "repeated", "lost"]
STATUS_COLORS = alt.Scale(domain=STATUSES, range=["#b8c4d0", "#4c9a5a", "#e69f00", "#c0392b"])


def resume_window(table: pd.DataFrame, resume_step: int, *, before: int = 20, after: int = 20,
                  max_steps: int = 400) -> tuple[int, int]:
    """Steps [start, stop) worth drawing one by one: `before` steps ahead of the checkpoint, through
    the last repeated/lost sample (plus `after`), at most `max_steps` wide."""
    require_columns(table, ["step", "status"], "resume_window")
    differing = table.loc[table["status"].isin(["repeated", "lost"]), "step"]
    last = int(differing.max()) if len(differing) else resume_step
    start = max(0, resume_step - before)
    stop = min(int(table["step"].max()) + 1 if len(table) else 0, max(last, resume_step) + after + 1)
    return start, min(stop, start + max_steps)


def resume_overlap(table: pd.DataFrame, *, resume_step: int | None = None,
                   window: tuple[int, int] | None = None) -> alt.Chart:
    """One row per pipeline, one tick per step inside `window` (default: `resume_window`);
    orange = a sample seen again, red = one never seen, dashed rule = the checkpoint.

    `table` columns: pipeline, step, status (before resume / same / repeated / lost)."""
    require_columns(table, ["pipeline", "step", "status"], "resume_overlap")
    start, stop = window or resume_window(table, resume_step or 0)
    shown = table[(table["step"] >= start) & (table["step"] < stop)]
    title = f"Resume: steps {start}-{stop - 1} around the checkpoint (one tick per sample)"
    chart = alt.Chart(shown, title=title).mark_tick(thickness=2, size=18).encode(
        x=alt.X("step:Q", title="step", scale=alt.Scale(domain=[start, max(stop - 1, start + 1)], nice=False)),
        y=alt.Y("pipeline:N", title=None),
        color=alt.Color("status:N", scale=STATUS_COLORS, title=None),
        tooltip=[c for c in ("pipeline", "step", "status", "index") if c in shown.columns],
    ).properties(width=WIDTH)
    if resume_step is not None:
        rule = alt.Chart(pd.DataFrame({"step": [resume_step]})).mark_rule(strokeDash=[4, 3]).encode(x="step:Q")
        chart = chart + rule
    return chart


def resume_overview(table: pd.DataFrame, *, bins: int = 60) -> alt.Chart:
    """The whole run in `bins` step ranges per pipeline: stacked counts of each status, so lost and
    repeated samples far from the checkpoint still show (a few hundred marks at any run length)."""
    require_columns(table, ["pipeline", "step", "status"], "resume_overview")
    last = int(table["step"].max()) + 1 if len(table) else 1
    width = max(1, int(np.ceil(last / bins)))
    binned = table.assign(bin_start=(table["step"] // width) * width)
    counts = binned.groupby(["pipeline", "bin_start", "status"], as_index=False).size().rename(
        columns={"size": "samples"})
    counts["bin_end"] = counts["bin_start"] + width
    title = f"Resume: the whole run, {width} steps per bar"
    return alt.Chart(counts, title=title).mark_bar().encode(
        x=alt.X("bin_start:Q", title="step", bin="binned"),
        x2="bin_end:Q",
        y=alt.Y("samples:Q", title="samples", stack=True),
        row=alt.Row("pipeline:N", title=None, header=alt.Header(labelAngle=0, labelOrient="top", labelAlign="left")),
        color=alt.Color("status:N", scale=STATUS_COLORS, title=None),
        tooltip=["pipeline", "bin_start", "bin_end", "status", "samples"],
    ).properties(width=WIDTH, height=70)
