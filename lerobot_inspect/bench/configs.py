"""`lerobot-inspect bench`: loaders side by side on the same data, in one run.

Each configuration runs in a fresh spawned process so its peak RSS is its own, one after the
other (never concurrently: these machines have two cores and ratios are only honest when the
configurations share the same conditions). Throughput figures are reported as ratios to the
decode ceiling measured in the same run: sequential TorchCodec decoding of the same frames.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any

import numpy as np

__all__ = ["CONFIGS", "BenchConfig", "run_bench"]

FIGURES = ("samples_per_s", "frames_per_s", "ceiling_ratio", "bytes_over_floor", "first_batch_s",
           "peak_rss_mb", "randomness_frac", "latency_ms", "requests_per_episode")


@dataclass(frozen=True)
class BenchConfig:
    """One loader configuration: `run(root, budget)` returns raw measurements in the child process."""

    name: str
    description: str
    run: Callable[[str, dict[str, Any]], dict[str, Any]]
    tags: tuple[str, ...] = field(default_factory=tuple)


# ---------------------------------------------------------------------- measurement helpers
def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024.0


def _iterate(samples: Iterable[Any], *, limit: int, count_frames: Callable[[Any], int],
             episode_of: Callable[[Any], Sequence[int]] | None = None) -> dict[str, Any]:
    """Drain up to `limit` samples (or batches), timing each arrival."""
    start = time.perf_counter()
    arrivals: list[float] = []
    frames = 0
    produced = 0
    episodes: list[Sequence[int]] = []
    for item in samples:
        arrivals.append(time.perf_counter())
        frames += count_frames(item)
        if episode_of is not None:
            episodes.append(episode_of(item))
        produced += len(episodes[-1]) if episode_of is not None else 1
        if produced >= limit:
            break
    elapsed = max(time.perf_counter() - start, 1e-9)
    gaps = np.diff(np.asarray([start, *arrivals]))
    result = {
        "samples": produced, "seconds": elapsed, "samples_per_s": produced / elapsed,
        "frames_per_s": frames / elapsed, "first_batch_s": float(gaps[0]) if len(gaps) else None,
        "latency_ms": {f"p{q}": float(np.percentile(gaps, q) * 1e3) for q in (50, 95, 99)} if len(gaps) else None,
    }
    result["_episodes"] = sorted({int(e) for batch in episodes for e in batch})
    if episodes and all(len(e) > 1 for e in episodes):
        result["randomness_frac"] = float(np.mean([len(set(e)) / len(e) for e in episodes]))
    return result


def _video_frames_in(sample: dict[str, Any], video_keys: Sequence[str]) -> int:
    total = 0
    for key in video_keys:
        value = sample[key]
        total += 1 if value.ndim == 3 else int(np.prod(value.shape[:-3]))
    return total


# ---------------------------------------------------------------------- configurations
def _map_dataset(root: str, budget: dict[str, Any], *, shuffle: bool, workers: int) -> dict[str, Any]:
    from torch.utils.data import DataLoader

    from lerobot_inspect import MapDataset
    from lerobot_inspect.loaders.sampler import EpisodeAwareSampler

    dataset = MapDataset(root)
    meta = dataset.meta
    sampler = EpisodeAwareSampler(meta.dataset_from_index, meta.dataset_to_index, shuffle=shuffle,
                                  seed=budget["seed"])
    batch = budget["batch_size"]
    # The config runs in a spawned process, whose children would be spawned too (a fresh torch import
    # per worker, seconds on this machine); a training job on Linux forks its workers, so do that.
    loader = DataLoader(dataset, batch_size=batch, sampler=sampler, num_workers=workers,
                        persistent_workers=False, multiprocessing_context="fork" if workers else None)
    keys = meta.video_keys
    return _iterate(loader, limit=budget["samples"],
                    count_frames=lambda b: sum(int(np.prod(b[k].shape[:-3])) for k in keys),
                    episode_of=lambda b: b["episode_index"].tolist())


def _decode_ceiling(root: str, budget: dict[str, Any]) -> dict[str, Any]:
    """Sequential decode of the frames the loaders read: the ceiling no loader can pass."""
    from torchcodec.decoders import VideoDecoder

    from lerobot_inspect.format import DatasetMeta

    meta = DatasetMeta.open(root)
    wanted = budget["samples"] * max(1, len(meta.video_keys))
    frames = 0
    start = time.perf_counter()
    first = None
    for camera in meta.video_keys:
        for rel in meta.video_files(camera):
            decoder = VideoDecoder(meta.path(rel), seek_mode="approximate")
            step = 64
            for begin in range(0, len(decoder), step):
                batch = decoder.get_frames_in_range(start=begin, stop=min(begin + step, len(decoder)))
                frames += len(batch.data)
                first = first or time.perf_counter() - start
                if frames >= wanted:
                    break
            if frames >= wanted:
                break
    elapsed = time.perf_counter() - start
    return {"samples": None, "seconds": elapsed, "frames_per_s": frames / elapsed, "samples_per_s": None,
            "first_batch_s": first}


def _naive_exact(root: str, budget: dict[str, Any]) -> dict[str, Any]:
    """Open each episode's MP4 with seek_mode='exact' (a full-file scan) and decode its frames."""
    from torchcodec.decoders import VideoDecoder

    from lerobot_inspect.format import DatasetMeta

    meta = DatasetMeta.open(root)
    rng = np.random.default_rng(budget["seed"])
    order = rng.permutation(meta.num_episodes)
    frames = samples = 0
    start = time.perf_counter()
    first = None
    for episode in order.tolist():
        length = int(meta.lengths[episode])
        for camera in meta.video_keys:
            begin, _ = meta.video_span_s(episode, camera)
            decoder = VideoDecoder(meta.path(meta.video_file(episode, camera)), seek_mode="exact")
            batch = decoder.get_frames_played_at(seconds=(begin + np.arange(length) / meta.fps).tolist())
            frames += len(batch.data)
        samples += length
        first = first or time.perf_counter() - start
        if samples >= budget["samples"]:
            break
    elapsed = time.perf_counter() - start
    return {"samples": samples, "seconds": elapsed, "samples_per_s": samples / elapsed,
            "frames_per_s": frames / elapsed, "first_batch_s": first}


def _byte_floor(index: Any, episodes: Sequence[int], cameras: Sequence[str]) -> tuple[int, int]:
    """(floor, spans) in bytes for reading `episodes`: per touched file, the union of its header ranges
    with the samples the episodes' decoders consume (floor) or with the episodes' whole spans (spans)."""
    from lerobot_inspect.video.remote import merge_ranges

    headers: dict[str, list[tuple[int, int]]] = {}
    samples: dict[str, list[tuple[int, int]]] = {}
    spans: dict[str, list[tuple[int, int]]] = {}
    for episode in episodes:
        for camera in cameras:
            entry = index.episode(episode, camera)
            headers.setdefault(entry.path, list(entry.header_ranges))
            frames = index.file_frames(entry.path)
            chosen = slice(entry.first_sample, entry.first_sample + entry.n_samples)
            offsets, sizes = frames["offset"][chosen], frames["size"][chosen]
            samples.setdefault(entry.path, []).extend(zip(offsets.tolist(), (offsets + sizes).tolist(), strict=True))
            spans.setdefault(entry.path, []).append((entry.span_start, entry.span_stop))

    def union(parts: dict[str, list[tuple[int, int]]]) -> int:
        return sum(b - a for path in parts for a, b in merge_ranges([*headers[path], *parts[path]]))

    return union(samples), union(spans)


def _remote_episodes_http(root: str, budget: dict[str, Any]) -> dict[str, Any]:
    """Serve the dataset on 127.0.0.1, build its byte index over HTTP, then read episodes through it.

    Two passes, each with a fresh cache: every episode in order (prefetching the next two), then a
    seeded random 10% of the episodes. Bytes and requests are counted at the server. The floor is
    what any reader must fetch: the header of each touched file once plus the samples the episodes'
    decoders consume; spans add the bytes between those samples. torchcodec is imported before the
    clock starts, so time to first frame is I/O and decoder opening, not library loading."""
    import torchcodec.decoders  # noqa: F401  (import cost is not what this configuration measures)

    from lerobot_inspect.format import DatasetMeta
    from lerobot_inspect.io import RangeReader
    from lerobot_inspect.io.loopback import serve_directory
    from lerobot_inspect.video.index_io import build_dataset_index
    from lerobot_inspect.video.remote import ByteIndexSource, ByteIndexVideoReader

    if "://" in root and not root.startswith("file://"):
        from lerobot_inspect.errors import OptionError

        raise OptionError(f"remote_episodes_http serves a local directory over HTTP itself; got {root!r}")

    def video_traffic(stats: dict[str, Any]) -> tuple[int, int]:
        mp4 = [entry for path, entry in stats["paths"].items() if path.endswith(".mp4")]
        return sum(e["bytes_sent"] for e in mp4), sum(e["get_requests"] for e in mp4)

    def read_episodes(server: Any, meta: Any, index: Any, episodes: list[int]) -> dict[str, Any]:
        server.reset_stats()
        began = time.perf_counter()
        video = ByteIndexVideoReader(meta, source=ByteIndexSource(meta, index=index), return_uint8=True)
        first_frame_s = None
        frames = samples = 0
        for position, episode in enumerate(episodes):
            video.prefetch(episodes[position + 1 : position + 3])
            timestamps = np.arange(int(meta.lengths[episode])) / meta.fps
            decoded = video.frames_for(episode, {camera: timestamps for camera in meta.video_keys})
            if first_frame_s is None:
                first_frame_s = time.perf_counter() - began
            frames += sum(len(batch) for batch in decoded.values())
            samples += len(timestamps)
        elapsed = time.perf_counter() - began
        fetched, requests = video_traffic(server.stats())
        floor, spans = _byte_floor(index, episodes, meta.video_keys)
        touched = {index.episode(e, c).path for e in episodes for c in meta.video_keys}
        touched_bytes = int(sum(size for path, size in zip(index.files.column("path").to_pylist(),
                                                           index.files.column("size_bytes").to_pylist(), strict=True)
                                if path in touched))
        pairs = len(episodes) * len(meta.video_keys)
        return {
            "samples": samples, "seconds": elapsed, "samples_per_s": samples / elapsed,
            "frames_per_s": frames / elapsed, "first_batch_s": first_frame_s, "first_frame_s": first_frame_s,
            "episodes": len(episodes), "bytes_fetched": fetched, "floor_bytes": floor, "span_bytes": spans,
            "bytes_over_floor": fetched / floor if floor else None,
            "bytes_over_spans": fetched / spans if spans else None,
            "bytes_over_touched_files": fetched / touched_bytes if touched_bytes else None,
            "requests": requests, "requests_per_episode": requests / max(1, len(episodes)),
            "requests_per_episode_camera": requests / max(1, pairs),
            "cache_hit_rate": video.stats()["cache"]["hit_rate"],
        }

    with serve_directory(root.removeprefix("file://")) as server:
        meta = DatasetMeta.open(server.url)
        server.reset_stats()
        began = time.perf_counter()
        index = build_dataset_index(meta, RangeReader(meta.fs))
        build_s = time.perf_counter() - began
        build_bytes, build_requests = video_traffic(server.stats())
        n_files = index.files.num_rows
        video_bytes = int(sum(index.files.column("size_bytes").to_pylist()))
        episodes = meta.episode_index.tolist()
        result = read_episodes(server, meta, index, episodes)
        rng = np.random.default_rng(budget["seed"])
        subset = sorted(rng.choice(episodes, size=max(1, len(episodes) // 10), replace=False).tolist())
        sampled = read_episodes(server, meta, index, subset)

    result.update(
        cameras=len(meta.video_keys), video_bytes=video_bytes,
        random_10pct={key: sampled[key] for key in ("episodes", "bytes_fetched", "floor_bytes", "bytes_over_floor",
                                                     "bytes_over_spans", "bytes_over_touched_files",
                                                     "requests_per_episode", "first_frame_s", "samples_per_s")},
        index_files=n_files, index_build_s=build_s, index_build_s_per_file=build_s / max(1, n_files),
        index_build_s_per_gb=build_s / (video_bytes / 1e9) if video_bytes else None,
        index_build_bytes=build_bytes, index_build_requests=build_requests,
    )
    return result


def _streaming(root: str, budget: dict[str, Any], *, workers: int, http: bool,
               pipeline: str = "pool", frames_in_order: bool = False) -> dict[str, Any]:
    """StreamingDataset in a DataLoader, on the local root or over a loopback HTTP server started here.

    Over HTTP the bytes and GET requests for MP4s are counted at the server; the floor is the union
    of the touched files' headers with the samples the consumed episodes' decoders need."""
    import contextlib

    import torchcodec.decoders  # noqa: F401  (import cost is not what this configuration measures)
    from torch.utils.data import DataLoader

    from lerobot_inspect.format import DatasetMeta
    from lerobot_inspect.io.loopback import serve_directory
    from lerobot_inspect.loaders.streaming import StreamingDataset

    local = root.removeprefix("file://")
    batch = budget["batch_size"]
    with serve_directory(local) if http else contextlib.nullcontext() as server:
        meta = DatasetMeta.open(server.url if server is not None else local)
        dataset = StreamingDataset(meta, seed=budget["seed"], batch_size=batch, pipeline=pipeline,
                                   return_uint8=True, frames_in_order=frames_in_order)
        if server is not None:
            server.reset_stats()
        loader = DataLoader(dataset, batch_size=batch, num_workers=workers,
                            multiprocessing_context="fork" if workers else None)
        keys = meta.video_keys
        result = _iterate(loader, limit=budget["samples"],
                          count_frames=lambda b: sum(int(np.prod(b[k].shape[:-3])) for k in keys),
                          episode_of=lambda b: b["episode_index"].tolist())
        if server is not None:
            stats = server.stats()
            mp4 = [e for path, e in stats["paths"].items() if path.endswith(".mp4")]
            fetched, requests = sum(e["bytes_sent"] for e in mp4), sum(e["get_requests"] for e in mp4)
            video = getattr(dataset, "video", None)
            index = getattr(getattr(video, "source", None), "index", None)
            result.update(bytes_fetched=fetched, requests=requests)
            if index is not None:
                # Episodes the prefetcher fetched may go beyond the consumed ones: count those touched.
                touched = sorted(set(result.pop("_episodes", [])))
                floor, spans = _byte_floor(index, touched, keys)
                result.update(floor_bytes=floor, span_bytes=spans, episodes=len(touched),
                              bytes_over_floor=fetched / floor if floor else None,
                              requests_per_episode=requests / max(1, len(touched)))
    result.pop("_episodes", None)
    return result


CONFIGS: dict[str, BenchConfig] = {
    config.name: config
    for config in (
        BenchConfig("decode_ceiling", "sequential TorchCodec decode of the same files", _decode_ceiling,
                    ("ceiling",)),
        BenchConfig("map_shuffled_w0", "MapDataset + EpisodeAwareSampler(shuffle), 0 workers",
                    lambda root, b: _map_dataset(root, b, shuffle=True, workers=0), ("map",)),
        BenchConfig("map_shuffled_w2", "MapDataset + EpisodeAwareSampler(shuffle), 2 workers",
                    lambda root, b: _map_dataset(root, b, shuffle=True, workers=2), ("map",)),
        BenchConfig("map_sequential_w0", "MapDataset + EpisodeAwareSampler(in order), 0 workers",
                    lambda root, b: _map_dataset(root, b, shuffle=False, workers=0), ("map",)),
        BenchConfig("stream_pool_w0", "StreamingDataset pool, local files, 0 workers",
                    lambda root, b: _streaming(root, b, workers=0, http=False), ("streaming",)),
        BenchConfig("stream_pool_w2", "StreamingDataset pool, local files, 2 workers",
                    lambda root, b: _streaming(root, b, workers=2, http=False), ("streaming",)),
        BenchConfig("stream_pool_http_w0", "StreamingDataset pool over loopback HTTP (byte index), 0 workers",
                    lambda root, b: _streaming(root, b, workers=0, http=True), ("streaming", "remote")),
        BenchConfig("stream_pool_http_w2", "StreamingDataset pool over loopback HTTP (byte index), 2 workers",
                    lambda root, b: _streaming(root, b, workers=2, http=True), ("streaming", "remote")),
        BenchConfig("stream_pool_inorder_w2", "StreamingDataset pool, frames_in_order=True, local files, 2 workers",
                    lambda root, b: _streaming(root, b, workers=2, http=False, frames_in_order=True),
                    ("streaming",)),
        BenchConfig("stream_pool_http_inorder_w2",
                    "StreamingDataset pool over loopback HTTP, frames_in_order=True, 2 workers",
                    lambda root, b: _streaming(root, b, workers=2, http=True, frames_in_order=True),
                    ("streaming", "remote")),
        BenchConfig("stream_datasets_w0", "StreamingDataset(pipeline='datasets'), local files, 0 workers",
                    lambda root, b: _streaming(root, b, workers=0, http=False, pipeline="datasets"),
                    ("streaming",)),
        BenchConfig("naive_exact", "per episode: VideoDecoder(seek_mode='exact') reads the whole MP4",
                    _naive_exact, ("baseline",)),
        BenchConfig("remote_episodes_http", "loopback HTTP: byte index build, then every episode via header + span",
                    _remote_episodes_http, ("remote",)),
    )
}


def _run_one(name: str, root: str, budget: dict[str, Any]) -> dict[str, Any]:
    result = CONFIGS[name].run(root, budget)
    result.pop("_episodes", None)
    result["peak_rss_mb"] = _peak_rss_mb()
    return result


def machine_info() -> dict[str, Any]:
    import torch
    import torchcodec

    return {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(),
            "torch": torch.__version__, "torchcodec": torchcodec.__version__,
            "torch_threads": torch.get_num_threads()}


def run_bench(
    root: str,
    *,
    configs: Sequence[str] | None = None,
    samples: int = 2000,
    batch_size: int = 32,
    seed: int = 0,
    progress: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Run the configurations one after the other, each in its own process; figures per config."""
    names = list(configs or CONFIGS)
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        from lerobot_inspect.errors import OptionError

        raise OptionError(f"unknown bench configuration(s) {unknown}; choose among {list(CONFIGS)}")
    budget = {"samples": samples, "batch_size": batch_size, "seed": seed}
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
            progress(f"      {raw.get('samples_per_s') or 0:9.1f} samples/s  {raw.get('frames_per_s') or 0:9.1f} "
                     f"frames/s  peak RSS {raw.get('peak_rss_mb', 0):.0f} MB")
    ceiling = results.get("decode_ceiling", {}).get("frames_per_s")
    for raw in results.values():
        for figure in FIGURES:
            raw.setdefault(figure, None)
        if ceiling and raw.get("frames_per_s"):
            raw["ceiling_ratio"] = raw["frames_per_s"] / ceiling
    return {"root": str(root), "budget": budget, "machine": machine_info(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "configs": results}


def write_json(report: dict[str, Any], path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as handle:
        json.dump(report, handle, indent=2)


SCALE_CONFIGS = ("stream_pool_w0", "stream_pool_w2", "stream_pool_http_w0", "map_shuffled_w0")


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
