"""Measurement: what every bench configuration reports, taken the same way for all of them.

Samples (or batches) are drained from an iterator while each arrival is timed, which gives
throughput, time to first batch, latency percentiles and shuffle randomness; peak RSS comes from
the process (and its DataLoader workers). Bytes over the byte floor come from the fetches probe's
accounting (`probes.fetches.byte_floor`), counted at the loopback server.
"""

from __future__ import annotations

import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = ["FIGURES", "TreeMemory", "iterate", "machine_info", "peak_rss_mb"]

# Every configuration's result carries each of these keys (None where it does not apply).
FIGURES = ("samples_per_s", "frames_per_s", "decoded_frames_per_s", "ceiling_ratio", "bytes_over_floor",
           "first_batch_s",
           "peak_rss_mb", "peak_tree_pss_mb", "randomness_frac", "randomness_epoch", "latency_ms",
           "steady_samples_per_s", "steady_frames_per_s", "steady_decoded_frames_per_s", "steady_ceiling_ratio",
           "requests_per_episode")


class TreeMemory:
    """Peak proportional set size (PSS) of this process and all its descendants, sampled by a thread.

    Summing RSS over DataLoader workers double-counts the pages they share with the parent after a
    fork; PSS splits each shared page between its users, so the sum is the memory the job takes.
    Sampled every `interval_s`, so a spike shorter than that can be missed: each sample walks every
    process's page tables (~7 ms per process with torch loaded), and at 4 samples/s that took 5-10%
    of the throughput of the 2-worker loaders it measured."""

    def __init__(self, interval_s: float = 1.0) -> None:
        import threading

        self.interval_s = interval_s
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-pss", daemon=True)

    def sample(self) -> int:
        import psutil

        root = psutil.Process()
        total = 0
        for process in [root, *root.children(recursive=True)]:
            try:
                total += process.memory_full_info().pss
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        self.peak_bytes = max(self.peak_bytes, total)
        return total

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def __enter__(self) -> TreeMemory:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    @property
    def peak_mb(self) -> float:
        return self.peak_bytes / 1e6


def peak_rss_mb() -> float:
    """Peak resident memory of this process or its largest child (DataLoader workers), in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024.0


def iterate(samples: Iterable[Any], *, limit: int, count_frames: Callable[[Any], int],
            episode_of: Callable[[Any], Sequence[int]] | None = None,
            count_decoded: Callable[[Any], int] | None = None) -> dict[str, Any]:
    """Drain up to `limit` samples (or batches), timing each arrival.

    `count_frames` counts the frames an item delivers; `count_decoded` the frames the loader had to
    decode for it, where that is fewer (frames shared between windows); without it, the delivered ones.
    With `episode_of` (a batch's episode indices) the result also has randomness_frac (distinct
    episodes per batch / batch size) and `_episodes`, the episodes consumed (for the byte floor)."""
    import numpy as np

    start = time.perf_counter()
    arrivals: list[float] = []
    frames = decoded = 0
    produced = 0
    episodes: list[Sequence[int]] = []
    first_frames = first_decoded = 0
    for item in samples:
        arrivals.append(time.perf_counter())
        delivered = count_frames(item)
        frames += delivered
        decoded += count_decoded(item) if count_decoded is not None else delivered
        first_frames = first_frames or frames
        first_decoded = first_decoded or decoded
        if episode_of is not None:
            episodes.append(episode_of(item))
        produced += len(episodes[-1]) if episode_of is not None else 1
        if produced >= limit:
            break
    elapsed = max(time.perf_counter() - start, 1e-9)
    gaps = np.diff(np.asarray([start, *arrivals]))
    first_size = len(episodes[0]) if episode_of is not None and episodes else 1
    steady_s = elapsed - float(gaps[0]) if len(gaps) > 1 else None
    result = {
        "samples": produced, "seconds": elapsed, "samples_per_s": produced / elapsed,
        # After the first batch: what a training run sees once the loader is warm (the first batch
        # has its own figure), so a short budget does not charge start-up to throughput.
        "steady_samples_per_s": (produced - first_size) / steady_s if steady_s else None,
        "steady_frames_per_s": (frames - first_frames) / steady_s if steady_s else None,
        "steady_decoded_frames_per_s": (decoded - first_decoded) / steady_s if steady_s else None,
        "frames_per_s": frames / elapsed, "decoded_frames_per_s": decoded / elapsed,
        "first_batch_s": float(gaps[0]) if len(gaps) else None,
        "latency_ms": {f"p{q}": float(np.percentile(gaps, q) * 1e3) for q in (50, 95, 99)} if len(gaps) else None,
    }
    result["_episodes"] = sorted({int(e) for batch in episodes for e in batch})
    if episodes and all(len(e) > 1 for e in episodes):
        result["randomness_frac"] = float(np.mean([len(set(e)) / len(e) for e in episodes]))
    return result


def machine_info() -> dict[str, Any]:
    import torch
    import torchcodec

    return {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(),
            "torch": torch.__version__, "torchcodec": torchcodec.__version__,
            "torch_threads": torch.get_num_threads()}
