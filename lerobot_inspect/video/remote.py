"""Remote video at the cost of the episodes a loader touches: MP4 header + one episode's byte span.

Opening a remote MP4 the usual way costs a scan (`seek_mode="exact"`) or a stream of read-ahead
blocks across a 200 MB file. With the byte index, a decoder for (episode, camera) reads the file's
header ranges and the episode's span, both fetched through a `ByteCache` (so headers are fetched
once per file and prefetched spans are waiting when the loader arrives), with
`custom_frame_mappings` from the index so TorchCodec never scans. Frames are picked by nearest pts
from the index's pts table.

The decoder is not handed the file's own moov: FFmpeg's mov demuxer indexes every sample it lists
(~9 MB per open decoder for a 10,000-episode file, and a streaming pool keeps dozens open). It gets
a small MP4 written for the episode (`video.mp4_write`): the file's codec description (taken once
per file and process from the cached header bytes) and the episode's samples, followed by the span
bytes as cached, so its memory follows the episode and its frames keep their pts.

`make_video_reader` picks the access path: the whole-file decoder for local roots (LeRobot's
behaviour and the fastest there), the byte index for every other fsspec root; it loads the index
(or builds it in memory from the MP4 headers) right away, in the process that makes the dataset.
"""

from __future__ import annotations

import io
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, get_args

import numpy as np
import torch
from fsspec.implementations.local import LocalFileSystem

from lerobot_inspect.errors import DecodeError, IndexStaleError, Mp4ParseError, OptionError, check_option
from lerobot_inspect.format import DatasetMeta
from lerobot_inspect.io._forks import ProcessLocal
from lerobot_inspect.io.byte_cache import ByteCache
from lerobot_inspect.io.ranges import RangeReader
from lerobot_inspect.video.byte_index import ByteIndex, EpisodeBytes
from lerobot_inspect.video.decode import DEFAULT_DECODER_CACHE_SIZE
from lerobot_inspect.video.index_io import DEFAULT_PROBE_BYTES, load_or_build_index
from lerobot_inspect.video.mp4 import VideoTrack
from lerobot_inspect.video.mp4_write import TrackTemplate, episode_mp4_header, track_template
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

    _PROCESS_FIELDS = ("_lock", "_checked", "_templates", "_files", "_waits")

    def _init_process_state(self) -> None:
        # In a forked child or a spawned worker, counters and open files describe the parent.
        self._lock = threading.Lock()
        self._checked: set[str] = set()
        self._templates: dict[str, TrackTemplate] = {}  # per video file: its codec description
        self._files: weakref.WeakSet[_EpisodeFile] = weakref.WeakSet()
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
        """A VideoDecoder of one (episode, camera) over the episode's own small MP4 (see the module
        docstring). It numbers the episode's own frames (`ByteIndex.episode_mappings`, pts order),
        so it cannot be asked for another's, and reports the pts the whole file would."""
        from torchcodec.decoders import VideoDecoder

        self._check_identity(entry)
        began = time.perf_counter()
        # The header ranges go through the cache on every open, as the span does: a hit once the
        # file was touched, and what the fetch probe counts. Only the first open parses them.
        *header, (_, span) = [(start, self.cache.get(path, start, stop)) for path, start, stop in self._keys(entry)]
        self._waits.seconds = getattr(self._waits, "seconds", 0.0) + time.perf_counter() - began
        name = self.meta.url(entry.path)
        try:
            prefix = self._episode_header(entry, header, name)
            if mappings is None:
                mappings = self.index.episode_mappings(entry)[0]
            file = _EpisodeFile(prefix, span, name=name)
            decoder = VideoDecoder(file, custom_frame_mappings=mappings)
        except (Mp4ParseError, RuntimeError, ValueError) as exc:
            raise DecodeError(
                f"{name}: FFmpeg cannot open camera {entry.camera} for episode "
                f"{entry.episode_index} from its header and bytes [{entry.span_start}, {entry.span_stop}): "
                f"{exc}. Rebuild the index (`lerobot-inspect index build {self.meta.root}`) or check the file"
            ) from exc
        self._files.add(file)
        return decoder

    def _episode_header(self, entry: EpisodeBytes, header: list[tuple[int, bytes]], name: str) -> bytes:
        """The episode MP4's header (ftyp + moov + mdat header; the span follows it). The file's
        template is parsed from its header bytes on the first open in this process, then kept."""
        template = self._templates.get(entry.path)
        if template is None:
            template = track_template(header, file_size=entry.size_bytes, name=name)
            self._templates[entry.path] = template
        frames = self.index.episode_frames(entry)
        return episode_mp4_header(
            template, pts=frames["pts"], dts=frames["dts"], duration=frames["duration"],
            keyframe=frames["keyframe"], offset=frames["offset"], size=frames["size"],
            span_start=entry.span_start, span_stop=entry.span_stop, name=name)

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
        """Cache counters, range-reader counters and the decoders still open in this process, with
        the bytes of the episode MP4 headers written for them."""
        live = list(self._files)
        return {
            "cache": self.cache.snapshot(),
            "reader": self.reader.snapshot(),
            "episode_files": {
                "live_decoders": len(live),
                "header_bytes": sum(f.header_bytes for f in live),
            },
        }


class _EpisodeFile(io.RawIOBase):
    """One episode's MP4 as the read-only file TorchCodec reads: the written header, then the span
    bytes in place (the cache's own object, not copied into one buffer), with no gaps. Reads past
    the end return b"", as a real file's do."""

    def __init__(self, header: bytes, span: bytes, *, name: str) -> None:
        super().__init__()
        self.name = name
        self.header_bytes = len(header)
        self._header = memoryview(header)
        self._span = memoryview(span)
        self._size = len(header) + len(span)
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        self._check_open()
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._check_open()
        bases = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self._size}
        if whence not in bases:
            raise OptionError(f"whence={whence!r}; choose 0 (start), 1 (current) or 2 (end)")
        position = bases[whence] + offset
        if position < 0:
            raise OptionError(f"seek to {position} in the episode file of {self.name}; positions start at 0")
        self._position = position
        return position

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        self._check_open()
        out = memoryview(buffer).cast("B")
        wanted = max(0, min(len(out), self._size - self._position))
        done = 0
        while done < wanted:
            at = self._position + done
            part, base = (self._header, 0) if at < len(self._header) else (self._span, len(self._header))
            take = min(wanted - done, base + len(part) - at)
            out[done : done + take] = part[at - base : at - base + take]
            done += take
        self._position += wanted
        return wanted

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError(f"I/O operation on the closed episode file of {self.name}")


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
