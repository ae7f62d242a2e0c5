"""Shared chart helpers: row caps (Vega-Lite embeds every row in the spec) and the house theme."""

from __future__ import annotations

import pandas as pd

MAX_ROWS = 5000
WIDTH = 560


def cap_rows(table: pd.DataFrame, max_rows: int = MAX_ROWS) -> pd.DataFrame:
    """First `max_rows` rows: a spec with 100k rows makes the page (and the report) unusable."""
    return table if len(table) <= max_rows else table.iloc[:max_rows]


def require_columns(table: pd.DataFrame, columns: list[str], chart: str) -> None:
    """Name the missing column instead of letting altair fail deep inside the spec."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{chart} needs columns {columns}; the table lacks {missing} "
                         f"(it has {list(table.columns)})")
