"""The report on a dataset of real size: 2,000 episodes (about 60,000 frames, 2 cameras).

Slow: it generates the dataset once per machine (`cached_dataset`, ~2.5 minutes) and runs every
notebook on it (several minutes on 2 cores). What it pins is that nothing on the way assumes a toy
dataset: every page runs to its verdict, and no page grows past a size a browser opens at once
(each chart aggregates; tables are cut to their first rows with a note).
"""

from __future__ import annotations

import json

import pytest

from data_fixtures import cached_dataset
from lerobot_inspect.report import NOTEBOOKS, build_report

MAX_PAGE_BYTES = 8 * 2**20
SCALE_2K = {"episodes": 2000, "episodes_per_file": 100}  # same kwargs as benchmarks/report_scale.py


@pytest.mark.slow
def test_report_on_2000_episodes_every_page_ok_and_small(tmp_path):
    root = cached_dataset(**SCALE_2K)
    lines: list[str] = []
    result = build_report(root, tmp_path / "report", progress=lines.append, timeout_s=1800)
    statuses = {page.name: (page.status, page.verdict, page.error[:500]) for page in result.pages}
    assert [page.name for page in result.pages] == list(NOTEBOOKS)
    assert all(status == "ok" for status, _, _ in statuses.values()), statuses
    sizes = {page.name: (tmp_path / "report" / page.page).stat().st_size for page in result.pages}
    assert all(size < MAX_PAGE_BYTES for size in sizes.values()), sizes
    assert result.index.stat().st_size < MAX_PAGE_BYTES
    # the notebooks' own progress reached the driver while they ran (a long page is not a silent wait)
    assert any(line.startswith("    audit: ") for line in lines), lines[:20]
    record = json.loads(result.report_json.read_text())
    verdicts = {page["name"]: page["verdict"] for page in record["pages"]}
    assert "2000 of 2000 episodes have no error" in verdicts["audit"], verdicts
    assert "checked 60 of 2000 episodes" in verdicts["frames"], verdicts
    assert "UNCHECKED" not in verdicts["frames"], verdicts
