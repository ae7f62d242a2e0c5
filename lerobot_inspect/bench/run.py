"""The bench driver: configurations one after the other, each in a fresh spawned process.

A fresh process per configuration makes its peak RSS its own; never two at once, because these
machines have two cores and ratios are only honest when configurations share the same conditions.
Throughput is reported as a ratio to the decode ceiling measured in the same run.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

from lerobot_inspect.bench.configs import CONFIGS, SCALE_CONFIGS
from lerobot_inspect.bench.measure import FIGURES, TreeMemory, machine_info, peak_rss_mb
from lerobot_inspect.errors import OptionError

__all__ = ["run_bench", "run_scale", "write_json"]


def _run_one(name: str, root: str, budget: dict[str, Any]) -> dict[str, Any]:
    with TreeMemory() as memory:
        result = CONFIGS[name].run(root, budget)
    result.pop("_episodes", None)
    result["peak_rss_mb"] = peak_rss_mb()
    result["peak_tree_pss_mb"] = memory.peak_mb
    return result


def run_bench(
    root: str,
    *,
    configs: Sequence[str] | None = None,
    samples: int = 2000,
    batch_size: int = 32,
    seed: int = 0,
    progress: Callable[[str], None] | None = print,
    windows: bool = True,
) -> dict[str, Any]:
    """Run the configurations one after the other, each in its own process; figures per config.

    `windows=True` gives the loaders training windows (`configs.bench_windows`: 4 frames per
    sample with two cameras); each configuration's ceiling ratio is to the decode ceiling with its
    own parallelism (one process for 0 workers, two for 2 workers) when both were run."""
    names = list(configs or CONFIGS)
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        raise OptionError(f"unknown bench configuration(s) {unknown}; choose among {list(CONFIGS)}")
    budget = {"samples": samples, "batch_size": batch_size, "seed": seed, "windows": windows}
    results: dict[str, dict[str, Any]] = {}
    context = get_context("spawn")
    from tqdm.auto import tqdm

    bar = tqdm(names, desc="bench", unit="config", file=sys.stderr, disable=progress is None)
    for position, name in enumerate(bar, 1):
        bar.set_postfix_str(name)
        if progress:
            progress(f"[{position}/{len(names)}] {name}: {CONFIGS[name].description}")
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            try:
                raw = pool.submit(_run_one, name, str(root), budget).result()
            except Exception as exc:  # a failing configuration is reported, the others still run
                raw = {"error": f"{type(exc).__name__}: {exc}"}
        results[name] = raw
        if progress and "error" not in raw:
            steady = raw.get("steady_samples_per_s")
            warm = f" ({steady:.1f} after the first batch)" if steady else ""
            progress(f"      {raw.get('samples_per_s') or 0:9.1f} samples/s{warm}  {raw.get('frames_per_s') or 0:9.1f} "
                     f"frames/s  peak tree PSS {raw.get('peak_tree_pss_mb', 0):.0f} MB")
    ceilings = {1: results.get("decode_ceiling", {}).get("frames_per_s"),
                2: results.get("decode_ceiling_p2", {}).get("frames_per_s")}
    for raw in results.values():
        for figure in FIGURES:
            raw.setdefault(figure, None)
        parallel = raw.get("processes") or max(1, raw.get("workers") or 1)
        ceiling = ceilings.get(parallel) or ceilings[1]
        # Against the frames the loader decoded: a frame shared by neighbouring windows is decoded once.
        decoded = raw.get("decoded_frames_per_s") or raw.get("frames_per_s")
        if ceiling and decoded:
            raw["ceiling_ratio"] = decoded / ceiling
            raw["ceiling_processes"] = parallel if ceilings.get(parallel) else 1
            steady = raw.get("steady_decoded_frames_per_s") or raw.get("steady_frames_per_s")
            if steady:
                raw["steady_ceiling_ratio"] = steady / ceiling
    return {"root": str(root), "budget": budget, "machine": machine_info(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "configs": results}


def write_json(report: dict[str, Any], path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as handle:
        json.dump(report, handle, indent=2)


def run_scale(small_root: str, large_root: str, *, configs: Sequence[str] = SCALE_CONFIGS, samples: int = 2000,
              batch_size: int = 32, seed: int = 0,
              progress: Callable[[str], None] | None = print) -> dict[str, Any]:
    """Cost growth: the same configurations on a small and a large dataset (e.g. 1,000 vs 10,000
    episodes), with large/small ratios of peak RSS and samples/s; flat is 1.0."""
    runs = {label: run_bench(root, configs=configs, samples=samples, batch_size=batch_size, seed=seed,
                             progress=progress)
            for label, root in (("small", small_root), ("large", large_root))}
    growth = {}
    for name in configs:
        small, large = runs["small"]["configs"][name], runs["large"]["configs"][name]
        growth[name] = {
            figure: (large[figure] / small[figure]) if small.get(figure) and large.get(figure) else None
            for figure in ("peak_rss_mb", "samples_per_s")
        }
    return {"small": runs["small"], "large": runs["large"], "growth": growth}
