"""Audit charts: findings by code and severity, and the decode check's episode x camera grid."""

from __future__ import annotations

import altair as alt
import pandas as pd

from lerobot_inspect.charts._common import WIDTH, require_columns

__all__ = ["decode_grid", "findings_bar"]

SEVERITY_COLORS = alt.Scale(domain=["error", "warning", "info"], range=["#c0392b", "#e69f00", "#5b8db8"])


def findings_bar(findings: pd.DataFrame) -> alt.Chart:
    """One bar per finding code, coloured by severity: what kind of trouble, and how much."""
    require_columns(findings, ["severity", "code"], "findings_bar")
    counts = findings.groupby(["severity", "code"], as_index=False).size().rename(columns={"size": "findings"})
    if counts.empty:
        counts = pd.DataFrame({"severity": ["info"], "code": ["no findings"], "findings": [0]})
    return alt.Chart(counts, title="Findings by code").mark_bar().encode(
        x=alt.X("findings:Q", title="findings"),
        y=alt.Y("code:N", sort="-x", title=None),
        color=alt.Color("severity:N", scale=SEVERITY_COLORS),
        tooltip=["code", "severity", "findings"],
    ).properties(width=WIDTH - 160)


def decode_grid(rows: pd.DataFrame, *, max_columns: int = 60) -> alt.Chart:
    """Episode x camera cells: green when the first/middle/last frames decoded at their timestamps.

    Up to `max_columns` episodes get a cell each; beyond that, episodes are grouped into about
    `max_columns` consecutive ranges and a cell is red when any episode in its range failed (the
    tooltip and the colour scale give how many), so one bad episode among 10,000 still shows."""
    require_columns(rows, ["episode_index", "camera", "ok"], "decode_grid")
    cells = rows.groupby(["episode_index", "camera"], as_index=False).agg(ok=("ok", "all"))
    episodes = int(cells["episode_index"].nunique())
    if episodes <= max_columns:
        cells["status"] = cells["ok"].map({True: "decoded at its timestamp", False: "failed"})
        return alt.Chart(cells, title="Decode check: first / middle / last frame per episode").mark_rect().encode(
            x=alt.X("episode_index:O", title="episode", axis=alt.Axis(labelOverlap=True, labelAngle=0)),
            y=alt.Y("camera:N", title=None),
            color=alt.Color("status:N", scale=alt.Scale(domain=["decoded at its timestamp", "failed"],
                                                        range=["#4c9a5a", "#c0392b"]), title=None),
            tooltip=["episode_index", "camera", "status"],
        ).properties(width=WIDTH - 160)
    span = -(-int(cells["episode_index"].max() + 1) // max_columns)
    cells["first"] = (cells["episode_index"] // span) * span
    ranges = cells.groupby(["first", "camera"], as_index=False).agg(
        episodes=("ok", "size"), failed=("ok", lambda ok: int((~ok).sum())))
    ranges["last"] = ranges["first"] + span
    ranges["status"] = ranges["failed"].map(lambda n: "all decoded" if n == 0 else "has failures")
    title = f"Decode check: {episodes} episodes in ranges of {span} (red: a range holding a failed episode)"
    return alt.Chart(ranges, title=title).mark_rect(stroke="white", strokeWidth=0.5).encode(
        x=alt.X("first:Q", bin="binned", title="episode"),
        x2="last:Q",
        y=alt.Y("camera:N", title=None),
        color=alt.Color("status:N", scale=alt.Scale(domain=["all decoded", "has failures"],
                                                    range=["#4c9a5a", "#c0392b"]), title=None),
        tooltip=[alt.Tooltip("first:Q", title="from episode"), alt.Tooltip("last:Q", title="to (excl.)"),
                 "camera", "episodes", "failed"],
    ).properties(width=WIDTH)
