"""Markdown tables from bench JSON: the README's bench tables are regenerated from the committed files.

    python -m lerobot_inspect.bench.tables benchmarks/bench_issue16_av1_320x240.json [...]

prints one loader table per file and, where the file has pool-size sweep configurations, the
randomness / samples/s / memory trade table.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

__all__ = ["loader_table", "pool_trade_table"]

_LOADER_ROWS = (
    ("decode_ceiling", "decode ceiling, 1 process (sequential TorchCodec)"),
    ("decode_ceiling_p2", "decode ceiling, 2 processes"),
    ("map_shuffled_w0", "MapDataset + EpisodeAwareSampler, 0 workers"),
    ("map_shuffled_w2", "MapDataset + EpisodeAwareSampler, 2 workers"),
    ("map_shuffled_ring_w2", "MapDataset + EpisodeAwareSampler, 2 workers, `ring_collate`"),
    ("stream_random_w0", "pool before decode-ahead (frames shuffled, one decode per sample), 0 workers"),
    ("stream_random_w2", "pool before decode-ahead, 2 workers"),
    ("stream_pool_w0", "**StreamingDataset default** (decode-ahead, frames in order), 0 workers"),
    ("stream_pool_w2", "**StreamingDataset default**, 2 workers"),
    ("stream_pool_ring_w0", "StreamingDataset default, 0 workers, `collate_fn=ring_collate`"),
    ("stream_pool_ring_w2", "StreamingDataset default, 2 workers, `collate_fn=ring_collate`"),
    ("stream_pool_http_w0", "default pool over loopback HTTP, 0 workers"),
    ("stream_pool_http_w2", "default pool over loopback HTTP, 2 workers"),
    ("stream_pool_http_ring_w2", "default pool over loopback HTTP, 2 workers, `ring_collate`"),
    ("stream_pool_http_epoch_w2", "default pool over loopback HTTP, 2 workers, full epoch"),
)


def _number(value: Any, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def _pair(figures: dict[str, Any], whole: str, steady: str, digits: int = 0) -> str:
    if figures.get(steady) is None:
        return _number(figures.get(whole), digits)
    return f"{_number(figures.get(whole), digits)} / {_number(figures.get(steady), digits)}"


def _frames(figures: dict[str, Any]) -> str:
    """Delivered frames/s, and the decoded ones where a loader decodes fewer (shared window frames)."""
    delivered, decoded = figures.get("frames_per_s"), figures.get("decoded_frames_per_s")
    if decoded is None or delivered is None or abs(decoded - delivered) < 0.5:
        return _number(delivered)
    return f"{_number(delivered)} / {_number(decoded)}"


def _randomness(figures: dict[str, Any]) -> str:
    """Measured over the batches read, then over the whole epoch from the schedule where known."""
    read = _number(figures.get("randomness_frac"), 2)
    epoch = figures.get("randomness_epoch")
    return read if epoch is None else f"{read} / {_number(epoch, 2)}"


def loader_table(report: dict[str, Any]) -> str:
    """One row per loader configuration present in `report` (a `run_bench` result)."""
    configs = report["configs"]
    lines = ["| configuration | samples/s (run / after first batch) | frames/s delivered / decoded "
             "| decoded × ceiling, same parallelism (run / after first batch) | first batch s | p95 batch ms "
             "| peak PSS MB (process tree) | randomness (read / epoch) | bytes / floor |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, label in _LOADER_ROWS:
        figures = configs.get(name)
        if figures is None or "error" in figures:
            continue
        latency = figures.get("latency_ms") or {}
        lines.append(
            f"| {label} | {_pair(figures, 'samples_per_s', 'steady_samples_per_s')} "
            f"| {_frames(figures)} "
            f"| {_pair(figures, 'ceiling_ratio', 'steady_ceiling_ratio', 2)} "
            f"| {_number(figures.get('first_batch_s'), 2)} "
            f"| {_number(latency.get('p95'))} | {_number(figures.get('peak_tree_pss_mb'))} "
            f"| {_randomness(figures)} | {_number(figures.get('bytes_over_floor'), 3)} |")
    return "\n".join(lines)


def pool_trade_table(report: dict[str, Any]) -> str:
    """Pool size (and decode-ahead depth) against randomness, samples/s and memory, 2 workers with
    `ring_collate` (the sweeps and the default configuration they vary)."""
    configs = report["configs"]
    rows = []
    for name, figures in configs.items():
        # The sweeps and the default they vary, all 2 workers with ring_collate.
        swept = re.fullmatch(r"stream_(pool\d+|ahead\d+|pool_ring)_w2", name) is not None
        if "error" in figures or not swept or figures.get("pool_size") is None:
            continue
        rows.append((figures["pool_size"], figures["decode_ahead"], figures))
    if not rows:
        return ""
    lines = ["| pool_size | decode_ahead (depth used) | randomness, batch 32 (read / epoch) "
             "| samples/s (run / after first batch) "
             "| peak PSS MB |",
             "|---|---|---|---|---|"]
    for pool_size, depth, figures in sorted(rows, key=lambda row: (row[0], row[1])):
        lines.append(f"| {pool_size} | {depth} | {_randomness(figures)} "
                     f"| {_pair(figures, 'samples_per_s', 'steady_samples_per_s')} "
                     f"| {_number(figures.get('peak_tree_pss_mb'))} |")
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
