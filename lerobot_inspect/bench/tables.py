"""Markdown tables from bench JSON: the README's bench tables are regenerated from the committed files.

    python -m lerobot_inspect.bench.tables benchmarks/bench_issue16_av1_320x240.json [...]

prints one loader table per file and, where the file has pool-size sweep configurations, the
randomness / samples/s / memory trade table.
"""

from __future__ import annotations

import json
import sys
from typing import Any

__all__ = ["loader_table", "pool_trade_table"]

_LOADER_ROWS = (
    ("decode_ceiling", "decode ceiling, 1 process (sequential TorchCodec)"),
    ("decode_ceiling_p2", "decode ceiling, 2 processes"),
    ("map_shuffled_w0", "MapDataset + EpisodeAwareSampler, 0 workers"),
    ("map_shuffled_w2", "MapDataset + EpisodeAwareSampler, 2 workers"),
    ("stream_random_w0", "pool before decode-ahead (frames shuffled, one decode per sample), 0 workers"),
    ("stream_random_w2", "pool before decode-ahead, 2 workers"),
    ("stream_pool_w0", "**StreamingDataset default** (decode-ahead, frames in order), 0 workers"),
    ("stream_pool_w2", "**StreamingDataset default**, 2 workers"),
    ("stream_pool_http_w0", "default pool over loopback HTTP, 0 workers"),
    ("stream_pool_http_w2", "default pool over loopback HTTP, 2 workers"),
    ("stream_pool_http_epoch_w2", "default pool over loopback HTTP, 2 workers, full epoch"),
)


def _number(value: Any, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def loader_table(report: dict[str, Any]) -> str:
    """One row per loader configuration present in `report` (a `run_bench` result)."""
    configs = report["configs"]
    lines = ["| configuration | samples/s | frames/s | × ceiling (same parallelism) | first batch s | p95 batch ms "
             "| peak PSS MB (process tree) | randomness | bytes / floor |", "|---|---|---|---|---|---|---|---|---|"]
    for name, label in _LOADER_ROWS:
        figures = configs.get(name)
        if figures is None or "error" in figures:
            continue
        latency = figures.get("latency_ms") or {}
        lines.append(
            f"| {label} | {_number(figures.get('samples_per_s'))} | {_number(figures.get('frames_per_s'))} "
            f"| {_number(figures.get('ceiling_ratio'), 2)} | {_number(figures.get('first_batch_s'), 2)} "
            f"| {_number(latency.get('p95'))} | {_number(figures.get('peak_tree_pss_mb'))} "
            f"| {_number(figures.get('randomness_frac'), 2)} | {_number(figures.get('bytes_over_floor'), 3)} |")
    return "\n".join(lines)


def pool_trade_table(report: dict[str, Any]) -> str:
    """Pool size (and decode-ahead depth) against randomness, samples/s and memory, 2 workers."""
    configs = report["configs"]
    rows = []
    for name, figures in configs.items():
        if "error" in figures:
            continue
        if name.startswith("stream_pool") and name.endswith("_w2") and name[len("stream_pool"):-3].isdigit():
            rows.append((int(name[len("stream_pool"):-3]), 16, figures))
        elif name == "stream_pool_w2":
            rows.append((16, 16, figures))
        elif name.startswith("stream_ahead") and name.endswith("_w2"):
            rows.append((16, int(name[len("stream_ahead"):-3]), figures))
    if not rows:
        return ""
    lines = ["| pool_size | decode_ahead | randomness (batch 32) | samples/s | peak PSS MB |", "|---|---|---|---|---|"]
    for pool_size, depth, figures in sorted(rows, key=lambda row: (row[1], row[0])):
        lines.append(f"| {pool_size} | {depth} | {_number(figures.get('randomness_frac'), 2)} "
                     f"| {_number(figures.get('samples_per_s'))} | {_number(figures.get('peak_tree_pss_mb'))} |")
    return "\n".join(lines)


def main(paths: list[str]) -> None:
    for path in paths:
        with open(path) as handle:
            report = json.load(handle)
        print(f"`{path}` ({report['root']}, batch {report['budget']['batch_size']}, "
              f"{report['budget']['samples']} samples per configuration)\n")
        print(loader_table(report))
        trade = pool_trade_table(report)
        if trade:
            print("\n" + trade)
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
