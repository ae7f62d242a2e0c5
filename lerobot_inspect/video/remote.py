"""Remote video at the cost of the episodes a loader touches: MP4 header + one episode's byte span.

Opening a remote MP4 the usual way costs a scan (`seek_mode="exact"`) or a stream of read-ahead
blocks across a 200 MB file. With the byte index, a decoder for (episode, camera) is a TorchCodec
`VideoDecoder` over a `SparseFile` that holds the file's header ranges and the episode's span,
both fetched through a `ByteCache` (so headers are fetched once per file and prefetched spans are
waiting when the loader arrives), with `custom_frame_mappings` from the index so TorchCodec never
scans. Frames are picked by nearest pts from the index's pts table.

FFmpeg reads in fixed blocks (64 KiB through TorchCodec's file-like adapter) and walks through
short gaps by reading rather than seeking, so the sparse file runs with `gap_policy="zeros"`: bytes
the decoder's read-ahead pulls from outside the held ranges read as zeros (counted, never
fetched), while a read that lands in a gap after a seek, which is a request for bytes the index
did not promise, raises FetchError.

`make_video_reader` picks the access path: the whole-file decoder for local roots (LeRobot's
behaviour and the fastest there), the byte index for every other fsspec root; it loads the index
(or builds it in memory from the MP4 headers) right away, in the process that makes the dataset.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, get_args

import numpy as np
import torch
from fsspec.implementations.local import LocalFileSystem

from lerobot_inspect.errors import DecodeError, IndexStaleError, check_option
from lerobot_inspect.format import DatasetMeta
from lerobot_inspect.io._forks import ProcessLocal
from lerobot_inspect.io.byte_cache import ByteCache
from lerobot_inspect.io.ranges import RangeReader
from lerobot_inspect.io.sparse import SparseFile
from lerobot_inspect.video.byte_index import ByteIndex, EpisodeBytes
from lerobot_inspect.video.decode import DEFAULT_DECODER_CACHE_SIZE
from lerobot_inspect.video.index_io import DEFAULT_PROBE_BYTES, load_or_build_index
from lerobot_inspect.video.mp4 import VideoTrack
from lerobot_inspect.video.reader import VideoReader

__all__ = [
    "VIDEO_ACCESS",
    "ByteIndexSource",
    "ByteIndexVideoReader",
    "VideoAccess",
    "make_video_reader",
    "merge_ranges",
    "resolve_video_access",
]

VideoAccess = Literal["auto", "file", "byte_index"]
VIDEO_ACCESS: tuple[str, ...] = get_args(VideoAccess)
DEFAULT_CACHE_BYTES = 256 << 20


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Sorted [start, stop) ranges with overlapping or touching ones joined: one request each."""
    merged: list[list[int]] = []
    for start, stop in sorted((int(a), int(b)) for a, b in ranges if b > a):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([start, stop])
    return tuple((a, b) for a, b in merged)


def resolve_video_access(meta: DatasetMeta, video_access: VideoAccess) -> Literal["file", "byte_index"]:
    """"auto" means whole files on a local disk (nothing to save there) and the byte index elsewhere."""
    check_option("video_access", video_access, VIDEO_ACCESS)
    if video_access != "auto":
        return video_access  # type: ignore[return-value]
    return "file" if isinstance(meta.fs, LocalFileSystem) else "byte_index"


class ByteIndexSource(ProcessLocal):
    """`episode_source` for VideoReader: (episode, camera) -> (key, decoder opener, pts table).

    The index is loaded (or built) on first use, not at construction, so creating a dataset stays
    cheap and a DataLoader worker that never decodes never fetches it. Each video file's size is
    checked against the index the first time a decoder for it opens (one size request per file
    touched): a re-uploaded file raises IndexStaleError instead of decoding the wrong bytes."""

    def __init__(
        self,
        meta: DatasetMeta,
        *,
        index: ByteIndex | None = None,
        reader: RangeReader | None = None,
        cache: ByteCache | None = None,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        prefetch_threads: int = 2,
        probe_bytes: int = DEFAULT_PROBE_BYTES,
    ) -> None:
        self.meta = meta
        # `is not None`, not `or`: an empty ByteCache has len() 0 and would be silently replaced.
        if reader is None:
            reader = cache.reader if cache is not None else RangeReader(meta.fs)
        self.reader = reader
        if cache is None:
            cache = ByteCache(self.reader, capacity_bytes=cache_bytes, prefetch_threads=prefetch_threads)
        self.cache = cache
        self.probe_bytes = probe_bytes
        self._index = index
        self._start_process_state()

    _PROCESS_FIELDS = ("_lock", "_checked", "_sparse", "_waits")

    def _init_process_state(self) -> None:
        # In a forked child or a spawned worker, counters and open sparse files describe the parent.
        self._lock = threading.Lock()
        self._checked: set[str] = set()
        self._sparse: weakref.WeakSet[SparseFile] = weakref.WeakSet()
        self._waits = threading.local()  # seconds this thread spent waiting for bytes

    # ---- index ----------------------------------------------------------------------------------
    @property
    def index(self) -> ByteIndex:
        """The byte index, loaded from meta/byte_index/ or built in memory the first time it is needed."""
        if self._index is None:
            with self._lock:
                if self._index is None:
                    self._index = load_or_build_index(
                        self.meta, self.reader, verify_sizes=False, probe_bytes=self.probe_bytes
                    )
        return self._index

    def entry(self, episode: int, camera: str) -> EpisodeBytes:
        return self.index.episode(episode, camera)

    def _check_identity(self, entry: EpisodeBytes) -> None:
        """The file is the one the index was built from: same size and, where the index recorded
        one, same version tag. One size request per file and process; the reader pins the answer,
        so every later range read of the file is checked against it too."""
        if entry.path in self._checked:
            return
        found = self.reader.identity(self.meta.path(entry.path))
        recorded = self.index.version_of(entry.path)
        if found.size != entry.size_bytes or (recorded and found.version and recorded != found.version):
            change = (f"is {found.size} bytes but the byte index was built for {entry.size_bytes} bytes"
                      if found.size != entry.size_bytes else
                      f"has version {found.version} but the byte index was built from {recorded}")
            raise IndexStaleError(
                f"{self.meta.url(entry.path)}: {change} (the file changed). Run "
                f"`lerobot-inspect index build {self.meta.root}`", file=self.meta.url(entry.path),
                code="index-stale", fix=f"lerobot-inspect index build {self.meta.root}")
        self._checked.add(entry.path)

    def _keys(self, entry: EpisodeBytes) -> list[tuple[str, int, int]]:
        full = self.meta.path(entry.path)
        headers = merge_ranges(entry.header_ranges)
        return [(full, a, b) for a, b in (*headers, (entry.span_start, entry.span_stop))]

    # ---- the episode_source protocol ------------------------------------------------------------
    def __call__(self, episode: int, camera: str) -> tuple[object, Callable[[], object], np.ndarray]:
        entry = self.entry(episode, camera)
        key = ("byte_index", entry.path, entry.span_start, entry.span_stop)
        mappings, pts = self.index.episode_mappings(entry)
        return key, lambda: self.open_decoder(entry, mappings), pts

    def open_decoder(self, entry: EpisodeBytes, mappings: bytes | None = None) -> object:
        """A VideoDecoder of one (episode, camera) from header + span. It numbers the episode's own
        frames (`ByteIndex.episode_mappings`, pts order), so it cannot be asked for another's."""
        from torchcodec.decoders import VideoDecoder

        self._check_identity(entry)
        began = time.perf_counter()
        segments = [(start, self.cache.get(path, start, stop)) for path, start, stop in self._keys(entry)]
        self._waits.seconds = getattr(self._waits, "seconds", 0.0) + time.perf_counter() - began
        sparse = SparseFile(entry.size_bytes, segments, name=self.meta.url(entry.path), gap_policy="zeros")
        self._sparse.add(sparse)
        try:
            if mappings is None:
                mappings = self.index.episode_mappings(entry)[0]
            return VideoDecoder(sparse, custom_frame_mappings=mappings)
        except (RuntimeError, ValueError) as exc:
            raise DecodeError(
                f"{self.meta.url(entry.path)}: FFmpeg cannot open camera {entry.camera} for episode "
                f"{entry.episode_index} from its header and bytes [{entry.span_start}, {entry.span_stop}): "
                f"{exc}. Rebuild the index (`lerobot-inspect index build {self.meta.root}`) or check the file"
            ) from exc

    # ---- prefetch and stats ---------------------------------------------------------------------
    def prefetch(self, episodes: Iterable[int], cameras: Iterable[str] | None = None) -> None:
        """Start fetching the header and span of each (episode, camera) in the background."""
        keys = []
        for episode in episodes:
            for camera in cameras if cameras is not None else self.meta.video_keys:
                keys.extend(self._keys(self.entry(int(episode), camera)))
        self.cache.prefetch(keys)

    def take_wait_seconds(self) -> float:
        """Seconds this thread waited for bytes since the last call (to split fetch from decode time)."""
        seconds = getattr(self._waits, "seconds", 0.0)
        self._waits.seconds = 0.0
        return seconds

    def stats(self) -> dict[str, Any]:
        """Cache counters, range-reader counters and the zero bytes served to FFmpeg's read-ahead
        (summed over the decoders still open in this process)."""
        live = list(self._sparse)
        return {
            "cache": self.cache.snapshot(),
            "reader": self.reader.snapshot(),
            "sparse": {
                "live_decoders": len(live),
                "zero_filled_bytes": sum(s.zero_filled_bytes for s in live),
                "zero_filled_reads": sum(s.zero_filled_reads for s in live),
            },
        }


class ByteIndexVideoReader(VideoReader):
    """VideoReader whose decoders read header + episode span through the byte index and a ByteCache.

    Adds `prefetch(episodes)` (the streaming dataset calls it with the episodes it will read next)
    and `stats()`."""

    def __init__(
        self,
        meta: DatasetMeta,
        *,
        source: ByteIndexSource | None = None,
        tolerance_s: float = 1e-4,
        return_uint8: bool = False,
        decoder_cache_size: int = DEFAULT_DECODER_CACHE_SIZE,
    ) -> None:
        self.source = source or ByteIndexSource(meta)
        super().__init__(meta, tolerance_s=tolerance_s, return_uint8=return_uint8,
                         decoder_cache_size=decoder_cache_size, episode_source=self.source)

    @property
    def index(self) -> ByteIndex:
        return self.source.index

    def frames(self, episode: int, camera: str, timestamps_s: Sequence[float] | np.ndarray) -> torch.Tensor:
        """As VideoReader.frames; the time not spent waiting for bytes is added to the cache's decode_s,
        so `stats()` shows whether fetching or decoding bounds throughput."""
        began = time.perf_counter()
        self.source.take_wait_seconds()
        out = super().frames(episode, camera, timestamps_s)
        decode_s = time.perf_counter() - began - self.source.take_wait_seconds()
        self.source.cache.record_decode_seconds(max(0.0, decode_s))
        return out

    def prefetch(self, episodes: Iterable[int]) -> None:
        self.source.prefetch(episodes)

    def track_for(self, camera: str, rel: str) -> VideoTrack:
        """The sample table from the index, so the span check costs no extra request."""
        frames = self.index.file_frames(rel)
        return VideoTrack(track_id=0, timescale=self.index.timescale(rel), codec="", width=0, height=0,
                          dts=frames["dts"], pts=frames["pts"], duration=frames["duration"],
                          keyframe=frames["keyframe"], offset=frames["offset"], size=frames["size"])

    def stats(self) -> dict[str, Any]:
        out = self.source.stats()
        out["decoders_opened"] = self.decoders.opened
        return out


def make_video_reader(
    meta: DatasetMeta,
    *,
    video_access: VideoAccess = "auto",
    tolerance_s: float = 1e-4,
    return_uint8: bool = False,
    decoder_cache_size: int = DEFAULT_DECODER_CACHE_SIZE,
) -> VideoReader:
    """The VideoReader `video_access` asks for ("auto": whole files locally, byte index remotely)."""
    access = resolve_video_access(meta, video_access)
    if access == "file":
        return VideoReader(meta, tolerance_s=tolerance_s, return_uint8=return_uint8,
                           decoder_cache_size=decoder_cache_size)
    reader = ByteIndexVideoReader(meta, tolerance_s=tolerance_s, return_uint8=return_uint8,
                                  decoder_cache_size=decoder_cache_size)
    # Load (or build) the index here, once: DataLoader workers then inherit it (fork) or receive its
    # tables (spawn) instead of each fetching or re-parsing every MP4 header.
    reader.source.index  # noqa: B018
    return reader
