"""Audit charts: findings by code and severity, and the decode check's episode x camera grid."""

from __future__ import annotations

import altair as alt
import pandas as pd

from lerobot_inspect.charts._common import WIDTH, cap_rows, require_columns

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


def decode_grid(rows: pd.DataFrame) -> alt.Chart:
    """Episode x camera cells: green when the first/middle/last frames decoded at their timestamps."""
    require_columns(rows, ["episode_index", "camera", "ok"], "decode_grid")
    cells = rows.groupby(["episode_index", "camera"], as_index=False).agg(
        ok=("ok", "all"), frames=("ok", "size"))
    cells["status"] = cells["ok"].map({True: "decoded at its timestamp", False: "failed"})
    cells = cap_rows(cells)
    return alt.Chart(cells, title="Decode check: first / middle / last frame per episode").mark_rect().encode(
        x=alt.X("episode_index:O", title="episode"),
        y=alt.Y("camera:N", title=None),
        color=alt.Color("status:N", scale=alt.Scale(domain=["decoded at its timestamp", "failed"],
                                                    range=["#4c9a5a", "#c0392b"]), title=None),
        tooltip=["episode_index", "camera", "frames", "status"],
    ).properties(width=WIDTH - 160)
