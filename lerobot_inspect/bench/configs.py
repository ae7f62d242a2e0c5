"""Bench configurations: each is one way to load the same data, run for a sample budget.

A configuration is a function `(root, budget) -> raw figures` that runs in its own process (see
`bench.run`); heavy imports happen inside it, so the import cost is not what it measures and
listing the configurations stays cheap. Bytes over the floor use the fetches probe's accounting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lerobot_inspect.bench.measure import iterate

__all__ = ["AHEAD_SWEEP", "CONFIGS", "POOL_SWEEP", "SCALE_CONFIGS", "BenchConfig", "bench_windows"]


@dataclass(frozen=True)
class BenchConfig:
    """One loader configuration: `run(root, budget)` returns raw measurements in the child process."""

    name: str
    description: str
    run: Callable[[str, dict[str, Any]], dict[str, Any]]
    tags: tuple[str, ...] = field(default_factory=tuple)


def _frames_in_batch(keys: Any) -> Callable[[Any], int]:
    import numpy as np

    return lambda batch: sum(int(np.prod(batch[k].shape[:-3])) for k in keys)


def _window_frames_decoded(keys: Any, windows: dict[str, list[float]] | None, fps: float) -> Callable[[Any], int]:
    """Frames a loader that decodes each needed frame once (decode-ahead) decodes for a batch: each
    camera's window frames (global index + offset) no earlier batch of the run needed. Padded
    positions repeat an episode's edge frame, which the window already holds."""
    import numpy as np

    offsets = {key: np.rint(np.asarray((windows or {}).get(key, [0.0])) * fps).astype(np.int64) for key in keys}
    seen: dict[str, set[int]] = {key: set() for key in keys}

    def count(batch: Any) -> int:
        index = batch["index"].numpy()
        new = 0
        for key in keys:
            frames = index[:, None] + offsets[key][None, :]
            pad = batch.get(f"{key}_is_pad")
            frames = frames[~pad.numpy()] if pad is not None else frames.ravel()
            before = len(seen[key])
            seen[key].update(frames.tolist())
            new += len(seen[key]) - before
        return new

    return count


def bench_windows(meta: Any, budget: dict[str, Any]) -> dict[str, list[float]] | None:
    """The training windows of issue 16 (budget["windows"]): each camera and the state at
    [-1/fps, 0], the action over 16 steps; None without windows."""
    if not budget.get("windows", True):
        return None
    step = 1.0 / meta.fps
    windows = {camera: [-step, 0.0] for camera in meta.video_keys}
    windows["observation.state"] = [-step, 0.0]
    windows["action"] = [k * step for k in range(16)]
    return {key: value for key, value in windows.items() if key in meta.features}


# ---------------------------------------------------------------------- configurations
def _map_dataset(root: str, budget: dict[str, Any], *, shuffle: bool, workers: int,
                 ring: bool = False) -> dict[str, Any]:
    from torch.utils.data import DataLoader

    from lerobot_inspect.format import DatasetMeta
    from lerobot_inspect.loaders.collate import ring_collate
    from lerobot_inspect.loaders.map_dataset import MapDataset
    from lerobot_inspect.loaders.sampler import EpisodeAwareSampler

    meta = DatasetMeta.open(root)
    dataset = MapDataset(meta, delta_timestamps=bench_windows(meta, budget), return_uint8=True)
    sampler = EpisodeAwareSampler(meta.dataset_from_index, meta.dataset_to_index, shuffle=shuffle,
                                  seed=budget["seed"])
    batch = budget["batch_size"]
    # The config runs in a spawned process, whose children would be spawned too (a fresh torch import
    # per worker, seconds on this machine); a training job on Linux forks its workers, so do that.
    loader = DataLoader(dataset, batch_size=batch, sampler=sampler, num_workers=workers,
                        persistent_workers=False, multiprocessing_context="fork" if workers else None,
                        collate_fn=ring_collate if ring else None)
    keys = meta.video_keys
    result = iterate(loader, limit=budget["samples"], count_frames=_frames_in_batch(keys),
                     episode_of=lambda b: b["episode_index"].tolist())
    result["workers"] = workers  # its ceiling is the one with the same parallelism
    return result


def _decode_files(root: str, camera_files: list[tuple[str, str]], wanted: int) -> tuple[int, float]:
    """(frames, seconds to first frame) of a sequential decode of `camera_files`, stopping at `wanted`."""
    from torchcodec.decoders import VideoDecoder

    from lerobot_inspect.format import DatasetMeta

    meta = DatasetMeta.open(root)
    frames, first, start = 0, None, time.perf_counter()
    for _, rel in camera_files:
        decoder = VideoDecoder(meta.path(rel), seek_mode="approximate")
        for begin in range(0, len(decoder), 64):
            batch = decoder.get_frames_in_range(start=begin, stop=min(begin + 64, len(decoder)))
            frames += len(batch.data)
            first = first or time.perf_counter() - start
            if frames >= wanted:
                return frames, first
    return frames, first or 0.0


def _decode_ceiling(root: str, budget: dict[str, Any], *, processes: int = 1) -> dict[str, Any]:
    """Sequential decode of the dataset's files, the ceiling no loader can pass: in one process, or
    in `processes` forked processes each decoding its share of the files (the ceiling of a loader
    with that many DataLoader workers). Frames: as many as the loaders deliver for the budget."""
    import torchcodec.decoders  # noqa: F401  (import cost is not what this configuration measures)

    from lerobot_inspect.format import DatasetMeta

    meta = DatasetMeta.open(root)
    files = [(camera, rel) for camera in meta.video_keys for rel in meta.video_files(camera)]
    per_sample = max(1, len(meta.video_keys)) * (2 if budget.get("windows", True) else 1)
    wanted = budget["samples"] * per_sample
    start = time.perf_counter()
    if processes == 1:
        frames, first = _decode_files(root, files, wanted)
    else:
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        shares = [files[k::processes] for k in range(processes)]
        with ProcessPoolExecutor(processes, mp_context=get_context("fork")) as pool:
            start = time.perf_counter()
            done = list(pool.map(_decode_files, [root] * processes, shares, [wanted // processes] * processes))
        frames, first = sum(d[0] for d in done), min(d[1] for d in done)
    elapsed = time.perf_counter() - start
    return {"samples": None, "seconds": elapsed, "frames_per_s": frames / elapsed, "samples_per_s": None,
            "first_batch_s": first, "processes": processes}


def _naive_exact(root: str, budget: dict[str, Any]) -> dict[str, Any]:
    """Open each episode's MP4 with seek_mode='exact' (a full-file scan) and decode its frames."""
    import numpy as np
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


def _remote_episodes_http(root: str, budget: dict[str, Any]) -> dict[str, Any]:
    """Serve the dataset on 127.0.0.1, build its byte index over HTTP, then read episodes through it.

    Two passes, each with a fresh cache: every episode in order (prefetching the next two), then a
    seeded random 10% of the episodes. Bytes and requests are counted at the server. The floor is
    what any reader must fetch: the header of each touched file once plus the samples the episodes'
    decoders consume; spans add the bytes between those samples. torchcodec is imported before the
    clock starts, so time to first frame is I/O and decoder opening, not library loading."""
    import numpy as np
    import torchcodec.decoders  # noqa: F401  (import cost is not what this configuration measures)

    from lerobot_inspect.format import DatasetMeta
    from lerobot_inspect.io import RangeReader
    from lerobot_inspect.io.loopback import serve_directory
    from lerobot_inspect.probes.fetches import byte_floor, video_traffic
    from lerobot_inspect.video.index_io import build_dataset_index
    from lerobot_inspect.video.remote import ByteIndexSource, ByteIndexVideoReader

    if "://" in root and not root.startswith("file://"):
        from lerobot_inspect.errors import OptionError

        raise OptionError(f"remote_episodes_http serves a local directory over HTTP itself; got {root!r}")

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
        fetched, requests = video_traffic(server)
        floor, spans = byte_floor(index, episodes, meta.video_keys)
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
        build_bytes, build_requests = video_traffic(server)
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


def _streaming(root: str, budget: dict[str, Any], *, workers: int, http: bool, pipeline: str = "pool",
               full_epoch: bool = False, ring: bool = False, **pool_options: Any) -> dict[str, Any]:
    """StreamingDataset in a DataLoader, on the local root or over a loopback HTTP server started here.

    Over HTTP the bytes and GET requests for MP4s are counted at the server; the floor is the union
    of the touched files' headers with the samples the consumed episodes' decoders need."""
    import contextlib

    import torchcodec.decoders  # noqa: F401  (import cost is not what this configuration measures)
    from torch.utils.data import DataLoader

    from lerobot_inspect.format import DatasetMeta
    from lerobot_inspect.io.loopback import serve_directory
    from lerobot_inspect.loaders.collate import ring_collate
    from lerobot_inspect.loaders.streaming import open_stream
    from lerobot_inspect.probes.fetches import byte_floor, video_traffic

    local = root.removeprefix("file://")
    batch = budget["batch_size"]
    with serve_directory(local) if http else contextlib.nullcontext() as server:
        meta = DatasetMeta.open(server.url if server is not None else local)
        dataset = open_stream(meta, pipeline=pipeline, seed=budget["seed"], batch_size=batch, return_uint8=True,
                              delta_timestamps=bench_windows(meta, budget), **pool_options)
        if server is not None:
            server.reset_stats()
        loader = DataLoader(dataset, batch_size=batch, num_workers=workers,
                            multiprocessing_context="fork" if workers else None,
                            collate_fn=ring_collate if ring else None)
        keys = meta.video_keys
        limit = int(meta.lengths.sum()) if full_epoch else budget["samples"]
        ahead = getattr(dataset, "ahead", None)
        shared = _window_frames_decoded(keys, bench_windows(meta, budget), meta.fps) if ahead is not None else None
        result = iterate(loader, limit=limit, count_frames=_frames_in_batch(keys),
                         episode_of=lambda b: b["episode_index"].tolist(), count_decoded=shared)
        result["workers"] = workers
        if ahead is not None and not workers:  # the buffer's own count (it decodes a little ahead of use)
            result["frames_decoded_counted"] = ahead.frames_decoded
        if pipeline == "pool":
            result.update(pool_size=dataset.pool_size, decode_ahead=ahead.depth if ahead is not None else 0,
                          randomness_epoch=_epoch_randomness(dataset, workers, batch))
        if server is not None:
            fetched, requests = video_traffic(server)
            video = getattr(dataset, "video", None)
            video = getattr(video, "reader", video)  # through the decode-ahead buffer to the byte-index reader
            index = getattr(getattr(video, "source", None), "index", None)
            result.update(bytes_fetched=fetched, requests=requests)
            if index is not None:
                # Episodes the prefetcher fetched may go beyond the consumed ones: count those touched.
                touched = sorted(set(result.pop("_episodes", [])))
                floor, spans = byte_floor(index, touched, keys)
                result.update(floor_bytes=floor, span_bytes=spans, episodes=len(touched),
                              bytes_over_floor=fetched / floor if floor else None,
                              requests_per_episode=requests / max(1, len(touched)))
    result.pop("_episodes", None)
    return result


def _epoch_randomness(dataset: Any, workers: int, batch: int) -> float:
    """Randomness over every full batch of the epoch, from the schedule (no decoding): the measured
    figure covers only the batches the budget reads, before the pool's tail runs out of episodes."""
    import numpy as np

    from lerobot_inspect.loaders.pool import randomness_fraction

    consumers = max(workers, 1)
    batches = []
    for consumer in range(consumers):
        episodes = dataset.consumer_plan(consumer=consumer, n_consumers=consumers).samples[:, 0]
        batches.append(episodes[: episodes.size // batch * batch].reshape(-1, batch))
    return randomness_fraction(np.concatenate(batches))


POOL_SWEEP = (8, 16, 24, 48, 64)
AHEAD_SWEEP = (4, 8, 32)

CONFIGS: dict[str, BenchConfig] = {
    config.name: config
    for config in (
        BenchConfig("decode_ceiling", "sequential TorchCodec decode of the same files, one process",
                    _decode_ceiling, ("ceiling",)),
        BenchConfig("decode_ceiling_p2", "sequential TorchCodec decode of the same files, two processes",
                    lambda root, b: _decode_ceiling(root, b, processes=2), ("ceiling",)),
        BenchConfig("map_shuffled_w0", "MapDataset + EpisodeAwareSampler(shuffle), 0 workers",
                    lambda root, b: _map_dataset(root, b, shuffle=True, workers=0), ("map",)),
        BenchConfig("map_shuffled_w2", "MapDataset + EpisodeAwareSampler(shuffle), 2 workers",
                    lambda root, b: _map_dataset(root, b, shuffle=True, workers=2), ("map",)),
        BenchConfig("map_shuffled_ring_w2", "MapDataset + EpisodeAwareSampler(shuffle), 2 workers, "
                    "collate_fn=ring_collate",
                    lambda root, b: _map_dataset(root, b, shuffle=True, workers=2, ring=True), ("map", "ring")),
        BenchConfig("map_sequential_w0", "MapDataset + EpisodeAwareSampler(in order), 0 workers",
                    lambda root, b: _map_dataset(root, b, shuffle=False, workers=0), ("map",)),
        BenchConfig("stream_pool_w0", "StreamingDataset pool, local files, 0 workers",
                    lambda root, b: _streaming(root, b, workers=0, http=False), ("streaming",)),
        BenchConfig("stream_pool_w2", "StreamingDataset pool, local files, 2 workers",
                    lambda root, b: _streaming(root, b, workers=2, http=False), ("streaming",)),
        BenchConfig("stream_pool_ring_w0", "StreamingDataset pool, local files, 0 workers, collate_fn=ring_collate",
                    lambda root, b: _streaming(root, b, workers=0, http=False, ring=True), ("streaming", "ring")),
        BenchConfig("stream_pool_ring_w2", "StreamingDataset pool, local files, 2 workers, collate_fn=ring_collate",
                    lambda root, b: _streaming(root, b, workers=2, http=False, ring=True), ("streaming", "ring")),
        BenchConfig("stream_pool_http_w0", "StreamingDataset pool over loopback HTTP (byte index), 0 workers",
                    lambda root, b: _streaming(root, b, workers=0, http=True), ("streaming", "remote")),
        BenchConfig("stream_pool_http_w2", "StreamingDataset pool over loopback HTTP (byte index), 2 workers",
                    lambda root, b: _streaming(root, b, workers=2, http=True), ("streaming", "remote")),
        BenchConfig("stream_pool_http_ring_w2",
                    "StreamingDataset pool over loopback HTTP (byte index), 2 workers, collate_fn=ring_collate",
                    lambda root, b: _streaming(root, b, workers=2, http=True, ring=True),
                    ("streaming", "remote", "ring")),
        BenchConfig("stream_pool_http_epoch_w2",
                    "StreamingDataset pool over loopback HTTP, 2 workers, one full epoch (bytes over the floor)",
                    lambda root, b: _streaming(root, b, workers=2, http=True, full_epoch=True),
                    ("streaming", "remote", "epoch")),
        BenchConfig("stream_random_w0",
                    "StreamingDataset before decode-ahead: frames shuffled in episodes, one decode per sample, "
                    "0 workers", lambda root, b: _streaming(root, b, workers=0, http=False, decode_ahead=0,
                                                            frames_in_order=False), ("streaming", "baseline")),
        BenchConfig("stream_random_w2",
                    "StreamingDataset before decode-ahead: frames shuffled in episodes, one decode per sample, "
                    "2 workers", lambda root, b: _streaming(root, b, workers=2, http=False, decode_ahead=0,
                                                            frames_in_order=False), ("streaming", "baseline")),
        *(BenchConfig(f"stream_pool{size}_w2", f"StreamingDataset pool_size={size}, local files, 2 workers, "
                      "collate_fn=ring_collate",
                      lambda root, b, size=size: _streaming(root, b, workers=2, http=False, ring=True,
                                                            pool_size=size),
                      ("streaming", "sweep")) for size in POOL_SWEEP),
        *(BenchConfig(f"stream_ahead{depth}_w2", f"StreamingDataset decode_ahead={depth}, local files, 2 workers, "
                      "collate_fn=ring_collate",
                      lambda root, b, depth=depth: _streaming(root, b, workers=2, http=False, ring=True,
                                                              decode_ahead=depth),
                      ("streaming", "sweep")) for depth in AHEAD_SWEEP),
        BenchConfig("stream_datasets_w0",
                    "DatasetsPipeline (LeRobot's streaming on HF datasets), local files, 0 workers",
                    lambda root, b: _streaming(root, b, workers=0, http=False, pipeline="datasets"),
                    ("streaming",)),
        BenchConfig("naive_exact", "per episode: VideoDecoder(seek_mode='exact') reads the whole MP4",
                    _naive_exact, ("baseline",)),
        BenchConfig("remote_episodes_http", "loopback HTTP: byte index build, then every episode via header + span",
                    _remote_episodes_http, ("remote",)),
    )
}


SCALE_CONFIGS = ("stream_pool_w0", "stream_pool_w2", "stream_pool_http_w0", "map_shuffled_w0")
