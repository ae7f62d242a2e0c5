"""Fetches probe: every byte range the byte-index reader asks for while decoding episodes, and its cost.

Remote loading is bound by two numbers: bytes pulled over the network and round trips. The probe
decodes a seeded sample of frames of each chosen episode through the same reader a remote training
run uses (`ByteIndexVideoReader`: MP4 header ranges + the episode's byte span, through a
`ByteCache`) and records each lookup the decoder's sparse file makes: which range, header or
span, a cache hit or a network fetch, how many requests it took (retries count).

A local root is served over HTTP on 127.0.0.1 (`io.loopback.serve_directory`) for the duration of
the probe, so the numbers are those of real range requests, cross-checked against the bytes the
server sent; any fsspec URL is read as given. The per-episode floor is what any reader must fetch
for that (episode, camera) at that point of the run: the bytes of the samples its decoder consumes,
plus the file's header ranges the first time the run touches the file.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
from fsspec.implementations.local import LocalFileSystem

from lerobot_inspect.errors import OptionError, check_int
from lerobot_inspect.format import DatasetMeta
from lerobot_inspect.io.byte_cache import ByteCache
from lerobot_inspect.io.ranges import RangeReader
from lerobot_inspect.loaders.rows import select_episodes
from lerobot_inspect.video.remote import ByteIndexSource, ByteIndexVideoReader, merge_ranges

__all__ = ["FETCH_COLUMNS", "PER_EPISODE_COLUMNS", "byte_floor", "fetch_table", "header_bytes", "sample_ranges",
           "video_traffic"]

FETCH_COLUMNS = ["order", "episode_index", "camera", "file", "kind", "start", "stop", "size_bytes", "cache_hit",
                 "requests", "bytes_fetched", "seconds"]
PER_EPISODE_COLUMNS = ["episode_index", "camera", "file", "frames_decoded", "bytes_read", "header_bytes_read",
                       "span_bytes_read", "floor_bytes", "sample_bytes", "span_bytes", "requests", "cache_hits"]


class _RecordingCache(ByteCache):
    """The real ByteCache, plus one record per `get`: hit or fetch, requests and bytes it cost.

    No prefetch threads, so every network request happens inside the `get` that needs it and the
    reader's counters, read before and after, belong to that lookup alone."""

    def __init__(self, reader: RangeReader, *, capacity_bytes: int, **_ignored: Any) -> None:
        super().__init__(reader, capacity_bytes=capacity_bytes, prefetch_threads=0)
        self.records: list[dict[str, Any]] = []
        self.context: dict[str, Any] = {}

    def get(self, path: str, start: int, stop: int) -> bytes:
        stats = self.reader.stats
        requests, fetched, misses = stats["requests"], stats["bytes"], self.stats["misses"]
        began = time.perf_counter()
        data = super().get(path, start, stop)
        self.records.append({
            **self.context, "start": int(start), "stop": int(stop), "size_bytes": len(data),
            "cache_hit": self.stats["misses"] == misses, "requests": stats["requests"] - requests,
            "bytes_fetched": stats["bytes"] - fetched, "seconds": time.perf_counter() - began,
        })
        return data


@contextlib.contextmanager
def _served(root: str, serve_local: bool) -> Iterator[tuple[str, Any]]:
    """(root to read, server or None): a local directory behind a loopback HTTP server when asked."""
    meta = DatasetMeta.open(root)
    if not (serve_local and isinstance(meta.fs, LocalFileSystem)):
        yield root, None
        return
    from lerobot_inspect.io.loopback import serve_directory

    with serve_directory(meta.root.removeprefix("file://")) as server:
        yield server.url, server


def video_traffic(server: Any) -> tuple[int, int]:
    """(bytes, GET requests) a loopback server sent for MP4 files since its last reset; (0, 0) without one."""
    if server is None:
        return 0, 0
    mp4 = [entry for path, entry in server.stats()["paths"].items() if path.endswith(".mp4")]
    return sum(e["bytes_sent"] for e in mp4), sum(e.get("get_requests", 0) for e in mp4)


# ---- the byte floor: what any reader must fetch --------------------------------------------------------
def sample_ranges(index: Any, entry: Any) -> list[tuple[int, int]]:
    """Byte ranges of the samples an (episode, camera) decoder consumes, in file order."""
    frames = index.file_frames(entry.path)
    chosen = slice(entry.first_sample, entry.first_sample + entry.n_samples)
    offsets, sizes = frames["offset"][chosen], frames["size"][chosen]
    return list(zip(offsets.tolist(), (offsets + sizes).tolist(), strict=True))


def header_bytes(entry: Any) -> int:
    """Bytes of the MP4 header ranges a reader fetches once per file."""
    return sum(b - a for a, b in merge_ranges(entry.header_ranges))


def byte_floor(index: Any, episodes: Sequence[int], cameras: Sequence[str]) -> tuple[int, int]:
    """(floor, spans) in bytes for reading `episodes` x `cameras`: per touched file, the union of its
    header ranges with the samples the episodes' decoders consume (floor), or with the episodes'
    whole byte spans (spans: what a byte-index reader fetches)."""
    headers: dict[str, list[tuple[int, int]]] = {}
    samples: dict[str, list[tuple[int, int]]] = {}
    spans: dict[str, list[tuple[int, int]]] = {}
    for episode in episodes:
        for camera in cameras:
            entry = index.episode(int(episode), camera)
            headers.setdefault(entry.path, list(entry.header_ranges))
            samples.setdefault(entry.path, []).extend(sample_ranges(index, entry))
            spans.setdefault(entry.path, []).append((entry.span_start, entry.span_stop))

    def union(parts: dict[str, list[tuple[int, int]]]) -> int:
        return sum(b - a for path in parts for a, b in merge_ranges([*headers[path], *parts[path]]))

    return union(samples), union(spans)


def fetch_table(
    root: str,
    *,
    seed: int = 0,
    episodes: Sequence[int] | None = None,
    cameras: Sequence[str] | None = None,
    frames_per_episode: int = 3,
    cache_bytes: int = 256 << 20,
    serve_local: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Decode `frames_per_episode` seeded frames of each episode (in a seeded order) through the
    byte-index reader; return (fetches, per_episode).

    `fetches`: one row per range the decoder's sparse file asked the cache for (columns
    FETCH_COLUMNS; kind is "header" or "span"; requests and bytes_fetched are 0 on a cache hit).
    `per_episode`: one row per (episode, camera) read (PER_EPISODE_COLUMNS): bytes and requests
    fetched while opening its decoder, its floor (see the module docstring), the bytes of its
    samples and of its whole span. Run totals are in `fetches.attrs`: index_bytes/index_requests
    (loading or building the byte index), server_video_bytes/server_video_requests
    (counted at the loopback server; 0 when reading a remote URL), served_url, floor_bytes_total.

    `cache_bytes` is the ByteCache capacity: shrink it to see evictions turn into refetches."""
    check_int("seed", seed)
    check_int("frames_per_episode", frames_per_episode, minimum=1)
    rng = np.random.default_rng([int(seed), 0x46455443])
    with _served(str(root), serve_local) as (read_root, server):
        meta = DatasetMeta.open(read_root)
        if not meta.video_keys:
            raise OptionError(f"{meta.root} has no video features; there are no byte-range fetches to measure")
        chosen_cameras = list(cameras) if cameras is not None else list(meta.video_keys)
        unknown = [c for c in chosen_cameras if c not in meta.video_keys]
        if unknown:
            raise OptionError(f"cameras {unknown} are not video keys of {meta.root}; choose among {meta.video_keys}")
        order = rng.permutation(select_episodes(meta, episodes))

        reader = RangeReader(meta.fs)
        cache = _RecordingCache(reader, capacity_bytes=cache_bytes)
        source = ByteIndexSource(meta, reader=reader, cache=cache)
        if server is not None:
            server.reset_stats()
        index = source.index  # loaded from meta/byte_index or built from the MP4 headers, over the wire
        if server is not None:  # the server sees every read, the Parquet tables of a saved index too
            index_bytes, index_requests = server.stats()["bytes_sent"], server.stats()["requests"]
            server.reset_stats()
        else:
            index_bytes = reader.stats["bytes"]
            index_requests = reader.stats["requests"] + reader.stats["size_requests"]
        reader.stats.reset()
        video = ByteIndexVideoReader(meta, source=source, return_uint8=True)

        per_episode = []
        headers_seen: set[str] = set()
        for episode in order.tolist():
            length = int(meta.lengths[episode])
            frames = np.sort(rng.choice(length, size=min(frames_per_episode, length), replace=False))
            for camera in chosen_cameras:
                entry = index.episode(episode, camera)
                cache.context = {"episode_index": episode, "camera": camera, "file": entry.path,
                                 "span": (entry.span_start, entry.span_stop)}
                first = len(cache.records)
                video.frames(episode, camera, frames / meta.fps)
                mine = cache.records[first:]
                for record in mine:
                    record["kind"] = "span" if (record["start"], record["stop"]) == record["span"] else "header"
                header_floor = 0
                if entry.path not in headers_seen:
                    headers_seen.add(entry.path)
                    header_floor = header_bytes(entry)
                samples = sum(b - a for a, b in sample_ranges(index, entry))
                per_episode.append({
                    "episode_index": episode, "camera": camera, "file": entry.path,
                    "frames_decoded": len(frames),
                    "bytes_read": sum(r["bytes_fetched"] for r in mine),
                    "header_bytes_read": sum(r["bytes_fetched"] for r in mine if r["kind"] == "header"),
                    "span_bytes_read": sum(r["bytes_fetched"] for r in mine if r["kind"] == "span"),
                    "floor_bytes": samples + header_floor, "sample_bytes": samples,
                    "span_bytes": entry.span_stop - entry.span_start,
                    "requests": sum(r["requests"] for r in mine),
                    "cache_hits": sum(bool(r["cache_hit"]) for r in mine),
                })
        video_bytes, video_requests = video_traffic(server)
        video.decoders.clear()
        cache.close()

    fetches = pd.DataFrame(
        [{k: r[k] for k in FETCH_COLUMNS if k in r} | {"order": i} for i, r in enumerate(cache.records)],
        columns=FETCH_COLUMNS)
    table = pd.DataFrame(per_episode, columns=PER_EPISODE_COLUMNS)
    fetches.attrs.update(
        served_url=read_root if server is not None else None, index_bytes=int(index_bytes),
        index_requests=int(index_requests),
        server_video_bytes=int(video_bytes), server_video_requests=int(video_requests),
        floor_bytes_total=int(table["floor_bytes"].sum()), seed=int(seed), frames_per_episode=frames_per_episode)
    return fetches, table
