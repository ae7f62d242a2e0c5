"""MP4 box parser: header bytes in, per-sample tables out (pure; the I/O is a callback).

A LeRobot v3 MP4 holds many episodes of one camera back to back. To read one episode remotely we
need the file's sample table (where each frame's bytes live, its pts and whether it is a keyframe),
which lives in the `moov` box. This module walks the top-level boxes reading only their headers,
fetches `moov`, and turns stts/ctts/stss/stsz/stz2/stsc/stco/co64/elst into numpy arrays in DECODE
order. Timestamps follow FFmpeg's mov demuxer (the one TorchCodec uses): the stream time base is
1/mdhd.timescale and the edit list's media_time is subtracted (an initial empty edit adds its
duration), so `pts` here equals the packet pts FFmpeg, PyAV and TorchCodec report.

Anything we cannot index exactly (fragmented files, truncated or inconsistent tables) raises
`Mp4ParseError` naming the file and the box; loops are bounded by byte counts, so corrupt input
cannot hang the parser. Memory is bounded by the bytes really present: every table's entry count
is checked against its box's payload before anything is allocated, a constant-size `stsz` (which
has no per-sample entries) may not claim more samples than moov has bytes, box counts are capped,
and the bytes fetched while walking the top level are not all kept.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from lerobot_inspect.errors import DatasetFormatError, FragmentedMp4Error, Mp4ParseError

__all__ = [
    "EpisodeSpan",
    "Mp4Info",
    "ReadRange",
    "VideoTrack",
    "custom_frame_mappings_json",
    "episode_span",
    "frame_mappings_json",
    "parse_mp4",
    "read_mp4_header",
    "reorder_depth",
]

ReadRange = Callable[[int, int], bytes]
"""`read(start, stop) -> bytes` for the half-open byte range [start, stop) of one file."""

# Top-level boxes we know how to step over; anything else at the top level is stepped over too
# (its header is enough), but fragments are refused because their samples are not in moov.
_FRAGMENT_BOXES = frozenset({"moof", "mfra", "sidx", "styp"})
# Top-level boxes whose payload a demuxer skips by seeking: only their header must be readable.
_SKIPPED_PAYLOAD = frozenset({"mdat", "free", "skip", "wide"})
_MAX_TOP_LEVEL_BOXES = 1024
"""An MP4 from a camera or FFmpeg has 3 to 6 top-level boxes (ftyp, moov, free, mdat, ...)."""
_MAX_CHILD_BOXES = 1024
"""Children of one container box (moov holds mvhd, a few trak and udta; stbl holds ~8 tables)."""
_MAX_MOOV_BYTES = 256 << 20
"""moov costs ~10-16 bytes per frame: 256 MiB is over ten million frames in one file."""
_MAX_EDITS = 1024
_HEADER_MAX = 16


@dataclass(frozen=True)
class VideoTrack:
    """One video track's samples in DECODE order (the order of the bytes a decoder consumes).

    `pts`/`dts`/`duration` are in stream ticks (1/timescale s) exactly as FFmpeg reports packet
    timestamps, i.e. after the edit-list shift. `offset`/`size` locate each sample in the file."""

    track_id: int
    timescale: int
    codec: str
    width: int
    height: int
    dts: np.ndarray
    pts: np.ndarray
    duration: np.ndarray
    keyframe: np.ndarray
    offset: np.ndarray
    size: np.ndarray
    edit_shift: int = 0

    @property
    def n_samples(self) -> int:
        return int(self.pts.shape[0])

    @property
    def pts_s(self) -> np.ndarray:
        """Presentation times in seconds (float64), the unit of LeRobot's from/to_timestamp."""
        return self.pts / float(self.timescale)

    @property
    def display_order(self) -> np.ndarray:
        """Decode indices sorted by pts: element i is the sample shown i-th."""
        return np.argsort(self.pts, kind="stable")


@dataclass(frozen=True)
class Mp4Info:
    """What the header of one MP4 says: its boxes, and the sample tables of its video tracks."""

    name: str
    file_size: int
    boxes: tuple[tuple[str, int, int], ...]
    """Top-level boxes as (type, start, stop) byte ranges, in file order."""
    tracks: tuple[VideoTrack, ...]
    movie_timescale: int = 0
    header_ranges: tuple[tuple[int, int], ...] = field(default=())
    """Byte ranges a demuxer reads to open the file: whole ftyp/moov (and other small boxes), and
    only the header of mdat/free/skip boxes. A sparse reader must serve these plus the samples."""

    @property
    def video(self) -> VideoTrack:
        """The first video track (LeRobot writes exactly one per file)."""
        if not self.tracks:
            raise Mp4ParseError(f"{self.name}: no video track (no trak with handler 'vide')")
        return self.tracks[0]

    @property
    def moov_range(self) -> tuple[int, int]:
        return next((s, e) for t, s, e in self.boxes if t == "moov")

    @property
    def mdat_ranges(self) -> tuple[tuple[int, int], ...]:
        return tuple((s, e) for t, s, e in self.boxes if t == "mdat")

    @property
    def faststart(self) -> bool:
        """True when moov precedes the first mdat (one read from the head gets the header)."""
        mdats = self.mdat_ranges
        return not mdats or self.moov_range[0] < mdats[0][0]


# --------------------------------------------------------------------------------------------
# Byte access: a cache of fetched segments over a read callback, bounded by the file size.


class _Source:
    """Fetched segments of one file. Reads past what the callback can serve raise Mp4ParseError."""

    def __init__(self, read: ReadRange, file_size: int, name: str, chunk: int) -> None:
        self.read = read
        self.file_size = file_size
        self.name = name
        self.chunk = chunk
        self.segments: list[tuple[int, bytes]] = []
        self.n_reads = 0
        # Fetched bytes kept for later gets: a walk over many large skipped boxes fetches `chunk`
        # bytes per box header, and keeping all of them held count x chunk bytes.
        self.budget = max(4 * chunk, 8 << 20)

    def get(self, start: int, stop: int) -> bytes:
        if start < 0 or stop > self.file_size or start > stop:
            raise Mp4ParseError(
                f"{self.name}: needs bytes {start}-{stop} but the file has {self.file_size} bytes "
                "(truncated file or corrupt box size)"
            )
        for seg_start, data in self.segments:
            if seg_start <= start and stop <= seg_start + len(data):
                return data[start - seg_start : stop - seg_start]
        fetch_stop = min(self.file_size, max(stop, start + self.chunk))
        data = self.read(start, fetch_stop)
        self.n_reads += 1
        if not isinstance(data, bytes | bytearray | memoryview) or len(data) < stop - start:
            got = len(data) if hasattr(data, "__len__") else type(data).__name__
            raise Mp4ParseError(
                f"{self.name}: reading bytes {start}-{fetch_stop} returned {got} bytes "
                "(truncated file, or the header lies beyond the bytes given; use read_mp4_header)"
            )
        data = bytes(data)
        self.segments.append((start, data))
        held = sum(len(d) for _, d in self.segments)
        while held > self.budget and len(self.segments) > 1:
            held -= len(self.segments.pop(0)[1])  # oldest first; a later get refetches if needed
        return data[: stop - start]


def _bytes_reader(data: bytes, name: str) -> ReadRange:
    def read(start: int, stop: int) -> bytes:
        return data[start:stop]

    return read


# --------------------------------------------------------------------------------------------
# Box walking inside a buffer.


def _box_header(buf: bytes, pos: int, stop: int, name: str, parent: str) -> tuple[str, int, int]:
    """(type, payload_start, box_end) of the box at buf[pos:], validated against its parent."""
    if stop - pos < 8:
        raise Mp4ParseError(f"{name}: {stop - pos} stray bytes at the end of {parent} (corrupt box)")
    size, raw_type = struct.unpack_from(">I4s", buf, pos)
    box_type = raw_type.decode("latin-1")
    header = 8
    if size == 1:
        if stop - pos < 16:
            raise Mp4ParseError(f"{name}: truncated 64-bit size of box {box_type!r} in {parent}")
        (size,) = struct.unpack_from(">Q", buf, pos + 8)
        header = 16
    elif size == 0:
        size = stop - pos
    if size < header:
        raise Mp4ParseError(f"{name}: box {box_type!r} in {parent} has size {size} < header {header}")
    if pos + size > stop:
        raise Mp4ParseError(
            f"{name}: box {box_type!r} at +{pos} (size {size}) overruns its parent {parent} "
            f"(which ends at +{stop}); the file is truncated or corrupt"
        )
    return box_type, pos + header, pos + size


def _children(buf: bytes, start: int, stop: int, name: str, parent: str) -> dict[str, list[tuple[int, int]]]:
    """Child boxes of a container as {type: [(payload_start, end), ...]}; bounded by bytes."""
    out: dict[str, list[tuple[int, int]]] = {}
    pos, n = start, 0
    while pos < stop:
        n += 1
        if n > _MAX_CHILD_BOXES:
            raise Mp4ParseError(
                f"{name}: {parent} holds more than {_MAX_CHILD_BOXES} child boxes; no MP4 writer makes that "
                "(corrupt or crafted file)"
            )
        box_type, payload, end = _box_header(buf, pos, stop, name, parent)
        out.setdefault(box_type, []).append((payload, end))
        pos = end
    return out


def _one(kids: dict[str, list[tuple[int, int]]], box: str, name: str, where: str) -> tuple[int, int]:
    found = kids.get(box)
    if not found:
        raise Mp4ParseError(f"{name}: {where} has no {box!r} box")
    return found[0]


class _Payload:
    """Bounds-checked big-endian reads of one box payload."""

    def __init__(self, buf: bytes, start: int, stop: int, name: str, box: str) -> None:
        self.buf, self.start, self.stop, self.name, self.box = buf, start, stop, name, box

    def need(self, offset: int, n: int) -> int:
        at = self.start + offset
        if offset < 0 or at + n > self.stop:
            raise Mp4ParseError(
                f"{self.name}: box {self.box!r} is {self.stop - self.start} bytes, too short for its "
                f"fields (needs {offset + n}); the file is truncated or corrupt"
            )
        return at

    def u8(self, offset: int) -> int:
        return self.buf[self.need(offset, 1)]

    def unpack(self, fmt: str, offset: int) -> tuple:
        return struct.unpack_from(fmt, self.buf, self.need(offset, struct.calcsize(fmt)))

    def array(self, dtype: str, offset: int, count: int, width: int) -> np.ndarray:
        """`count` records of `width` big-endian items of `dtype` as a (count, width) array; a count
        the payload cannot hold is refused before anything is allocated."""
        itemsize = np.dtype(dtype).itemsize
        if offset + count * width * itemsize > self.stop - self.start:
            raise Mp4ParseError(
                f"{self.name}: box {self.box!r} claims {count} entries of {width * itemsize} bytes but its payload "
                f"holds {max(0, self.stop - self.start - offset)} bytes after its header fields; the file is "
                "truncated or corrupt"
            )
        at = self.need(offset, count * width * itemsize)
        flat = np.frombuffer(self.buf, dtype=dtype, count=count * width, offset=at)
        return flat.reshape(count, width)

    def full_box(self) -> tuple[int, int]:
        (word,) = self.unpack(">I", 0)
        return word >> 24, word & 0xFFFFFF


# --------------------------------------------------------------------------------------------
# Top-level walk and moov fetch.


def _walk_top_level(src: _Source) -> tuple[list[tuple[str, int, int]], bytes, int]:
    """Top-level boxes, the moov bytes and moov's start; reads only box headers besides moov."""
    boxes: list[tuple[str, int, int]] = []
    moov: bytes | None = None
    moov_start = -1
    pos = 0
    size_total = src.file_size
    while pos < size_total:
        if len(boxes) >= _MAX_TOP_LEVEL_BOXES:
            raise Mp4ParseError(
                f"{src.name}: more than {_MAX_TOP_LEVEL_BOXES} top-level boxes (an MP4 has a handful: ftyp, moov, "
                "mdat, ...); the file is corrupt or crafted. Re-encode or remux it"
            )
        head = src.get(pos, min(size_total, pos + _HEADER_MAX))
        box_type, box_end = _top_level_box(head, pos, size_total, src.name)
        if box_type in _FRAGMENT_BOXES:
            raise FragmentedMp4Error(
                f"{src.name}: fragmented MP4 ({box_type!r} box at byte {pos}); fragments keep their "
                "sample tables outside moov and cannot be indexed. Remux with `ffmpeg -i IN -c copy "
                "-movflags +faststart OUT.mp4`"
            )
        boxes.append((box_type, pos, box_end))
        if box_type == "moov":
            if moov is not None:
                raise Mp4ParseError(f"{src.name}: two moov boxes (second at byte {pos})")
            if box_end - pos > _MAX_MOOV_BYTES:
                raise Mp4ParseError(
                    f"{src.name}: moov box of {box_end - pos} bytes at byte {pos}; more than {_MAX_MOOV_BYTES >> 20} "
                    "MiB of sample tables is not one camera's video (corrupt box size?)"
                )
            moov = src.get(pos, box_end)
            moov_start = pos
        pos = box_end
    if moov is None:
        raise Mp4ParseError(f"{src.name}: no moov box in {size_total} bytes (not an MP4, or truncated)")
    return boxes, moov, moov_start


def _top_level_box(head: bytes, pos: int, file_size: int, name: str) -> tuple[str, int]:
    """(type, end) of the top-level box whose first bytes are `head`, checked against the file."""
    if len(head) < 8:
        raise Mp4ParseError(f"{name}: {len(head)} stray bytes at byte {pos}, after the last box")
    size, raw_type = struct.unpack_from(">I4s", head, 0)
    box_type = raw_type.decode("latin-1")
    header = 8
    if size == 1:
        if len(head) < 16:
            raise Mp4ParseError(f"{name}: truncated 64-bit size of top-level box {box_type!r} at {pos}")
        (size,) = struct.unpack_from(">Q", head, 8)
        header = 16
    elif size == 0:
        size = file_size - pos
    if size < header:
        raise Mp4ParseError(f"{name}: top-level box {box_type!r} at byte {pos} has size {size}")
    if pos + size > file_size:
        raise Mp4ParseError(
            f"{name}: top-level box {box_type!r} at byte {pos} claims {size} bytes but the file ends "
            f"at {file_size} (truncated download?)"
        )
    return box_type, pos + size


# --------------------------------------------------------------------------------------------
# Track parsing.


def _mdhd_timescale(buf: bytes, mdia_kids: dict[str, list[tuple[int, int]]], name: str, track: str) -> int:
    """A track's mdhd timescale, never 0: every time in the track is divided by it."""
    mdhd = _Payload(buf, *_one(mdia_kids, "mdhd", name, "mdia"), name, "mdhd")
    version, _ = mdhd.full_box()
    (timescale,) = mdhd.unpack(">I", 20 if version == 1 else 12)
    if timescale == 0:
        raise Mp4ParseError(f"{name}: {track} has mdhd timescale 0")
    return int(timescale)


def _parse_trak(buf: bytes, start: int, stop: int, name: str, movie_timescale: int, file_size: int):
    kids = _children(buf, start, stop, name, "trak")
    mdia = _one(kids, "mdia", name, "trak")
    mdia_kids = _children(buf, *mdia, name, "mdia")
    hdlr = _Payload(buf, *_one(mdia_kids, "hdlr", name, "mdia"), name, "hdlr")
    handler = hdlr.unpack(">4s", 8)[0].decode("latin-1")
    if handler != "vide":
        return None

    tkhd = _Payload(buf, *_one(kids, "tkhd", name, "trak"), name, "tkhd")
    version, _ = tkhd.full_box()
    (track_id,) = tkhd.unpack(">I", 20 if version == 1 else 12)

    timescale = _mdhd_timescale(buf, mdia_kids, name, f"track {track_id}")

    minf = _children(buf, *_one(mdia_kids, "minf", name, "mdia"), name, "minf")
    stbl_range = _one(minf, "stbl", name, "minf")
    stbl = _children(buf, *stbl_range, name, "stbl")
    where = f"track {track_id} stbl"

    codec, width, height = _parse_stsd(_Payload(buf, *_one(stbl, "stsd", name, where), name, "stsd"))
    size = _parse_sizes(buf, stbl, name, where, file_size, len(buf))
    n = size.shape[0]
    duration, dts = _parse_stts(_Payload(buf, *_one(stbl, "stts", name, where), name, "stts"), n)
    cts = np.zeros(n, dtype=np.int64)
    if "ctts" in stbl:
        cts = _parse_ctts(_Payload(buf, *stbl["ctts"][0], name, "ctts"), n)
    keyframe = np.ones(n, dtype=bool)
    if "stss" in stbl:
        keyframe = _parse_stss(_Payload(buf, *stbl["stss"][0], name, "stss"), n)
    offset = _parse_offsets(buf, stbl, name, where, size)
    if n and (int(offset.min()) < 0 or int((offset + size).max()) > file_size):
        bad = int(np.argmax((offset < 0) | (offset + size > file_size)))
        raise Mp4ParseError(
            f"{name}: track {track_id} sample {bad} lies at bytes {int(offset[bad])}-"
            f"{int(offset[bad] + size[bad])}, outside the file's {file_size} bytes (truncated file?)"
        )

    shift = 0
    edts = kids.get("edts")
    if edts:
        edts_kids = _children(buf, *edts[0], name, "edts")
        if "elst" in edts_kids:
            shift = _edit_shift(
                _Payload(buf, *edts_kids["elst"][0], name, "elst"), movie_timescale, timescale, name
            )
    # FFmpeg's mov demuxer: pts = raw decode time + composition offset - media_time (+ empty edit),
    # and dts is lowered by the largest negative composition offset so that dts <= pts.
    pts = dts + cts - shift
    dts_shift = max(0, -int(cts.min())) if n else 0
    dts = dts - shift - dts_shift
    return VideoTrack(
        track_id=int(track_id),
        timescale=int(timescale),
        codec=codec,
        width=width,
        height=height,
        dts=dts,
        pts=pts,
        duration=duration,
        keyframe=keyframe,
        offset=offset,
        size=size,
        edit_shift=int(shift),
    )


def _parse_stsd(p: _Payload) -> tuple[str, int, int]:
    (count,) = p.unpack(">I", 4)
    if count < 1:
        raise Mp4ParseError(f"{p.name}: stsd has no sample entry")
    entry_size, fourcc = p.unpack(">I4s", 8)
    if entry_size < 8 + 28:
        raise Mp4ParseError(f"{p.name}: stsd entry {fourcc!r} is {entry_size} bytes, too short for video")
    p.need(8, entry_size)
    width, height = p.unpack(">HH", 8 + 8 + 24)
    return fourcc.decode("latin-1"), int(width), int(height)


def _parse_sizes(buf: bytes, stbl: dict, name: str, where: str, file_size: int, moov_bytes: int) -> np.ndarray:
    if "stsz" in stbl:
        p = _Payload(buf, *stbl["stsz"][0], name, "stsz")
        constant, count = p.unpack(">II", 4)
        if constant:
            # No per-sample entries to bound the count by, and every table below expands to one
            # value per sample (~60 bytes each): a video track stores at least a byte of moov per
            # sample elsewhere, so more samples than moov has bytes is a crafted claim.
            if count > file_size // max(1, constant) + 1 or count > moov_bytes:
                raise Mp4ParseError(
                    f"{name}: {where} stsz claims {count} samples of {constant} bytes, more than the file "
                    f"({file_size} bytes) or its moov ({moov_bytes} bytes) can describe; the file is corrupt"
                )
            return np.full(count, constant, dtype=np.int64)
        return p.array(">u4", 12, count, 1)[:, 0].astype(np.int64)
    if "stz2" in stbl:
        p = _Payload(buf, *stbl["stz2"][0], name, "stz2")
        field_bits, count = p.unpack(">xxxBI", 4)
        if field_bits == 16:
            return p.array(">u2", 12, count, 1)[:, 0].astype(np.int64)
        if field_bits == 8:
            return p.array(">u1", 12, count, 1)[:, 0].astype(np.int64)
        if field_bits == 4:
            packed = p.array(">u1", 12, (count + 1) // 2, 1)[:, 0]
            nibbles = np.stack([packed >> 4, packed & 0xF], axis=1).reshape(-1)
            return nibbles[:count].astype(np.int64)
        raise Mp4ParseError(f"{name}: {where} stz2 field size {field_bits} (must be 4, 8 or 16)")
    raise Mp4ParseError(f"{name}: {where} has neither stsz nor stz2")


def _run_lengths(p: _Payload, n: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    (entries,) = p.unpack(">I", 4)
    table = p.array(">u4", 8, entries, 2).astype(np.int64)
    counts, values = table[:, 0], table[:, 1]
    total = int(counts.sum())
    if total != n:
        raise Mp4ParseError(f"{p.name}: {p.box} covers {total} samples but the {what} lists {n}")
    return counts, values


def _parse_stts(p: _Payload, n: int) -> tuple[np.ndarray, np.ndarray]:
    counts, deltas = _run_lengths(p, n, "sample size table (stsz)")
    duration = np.repeat(deltas, counts)
    dts = np.zeros(n, dtype=np.int64)
    if n > 1:
        np.cumsum(duration[:-1], out=dts[1:])
    return duration, dts


def _parse_ctts(p: _Payload, n: int) -> np.ndarray:
    counts, offsets = _run_lengths(p, n, "sample size table (stsz)")
    # Version 0 declares unsigned offsets, but writers store negative ones there too; FFmpeg reads
    # both versions as signed 32-bit, and so do we.
    signed = offsets.astype(np.uint32).view(np.int32).astype(np.int64)
    return np.repeat(signed, counts)


def _parse_stss(p: _Payload, n: int) -> np.ndarray:
    (entries,) = p.unpack(">I", 4)
    numbers = p.array(">u4", 8, entries, 1)[:, 0].astype(np.int64)
    if entries and (int(numbers.min()) < 1 or int(numbers.max()) > n):
        raise Mp4ParseError(f"{p.name}: stss names sample {int(numbers.max())} of a {n}-sample track")
    keyframe = np.zeros(n, dtype=bool)
    keyframe[numbers - 1] = True
    return keyframe


def _parse_offsets(buf: bytes, stbl: dict, name: str, where: str, size: np.ndarray) -> np.ndarray:
    if "stco" in stbl:
        p = _Payload(buf, *stbl["stco"][0], name, "stco")
        (entries,) = p.unpack(">I", 4)
        chunk_offset = p.array(">u4", 8, entries, 1)[:, 0].astype(np.int64)
    elif "co64" in stbl:
        p = _Payload(buf, *stbl["co64"][0], name, "co64")
        (entries,) = p.unpack(">I", 4)
        chunk_offset = p.array(">u8", 8, entries, 1)[:, 0]
        if entries and int(chunk_offset.max()) > np.iinfo(np.int64).max:
            raise Mp4ParseError(f"{name}: {where} co64 offset beyond 2**63")
        chunk_offset = chunk_offset.astype(np.int64)
    else:
        raise Mp4ParseError(f"{name}: {where} has neither stco nor co64")
    n_chunks = chunk_offset.shape[0]
    n = size.shape[0]

    p = _Payload(buf, *_one(stbl, "stsc", name, where), name, "stsc")
    (entries,) = p.unpack(">I", 4)
    table = p.array(">u4", 8, entries, 3).astype(np.int64)
    first_chunk, per_chunk = table[:, 0], table[:, 1]
    if n and (entries == 0 or first_chunk[0] != 1 or np.any(np.diff(first_chunk) <= 0)):
        raise Mp4ParseError(f"{name}: {where} stsc first_chunk values are not 1, then increasing")
    if entries and int(first_chunk[-1]) > n_chunks:
        raise Mp4ParseError(f"{name}: {where} stsc names chunk {int(first_chunk[-1])} of {n_chunks}")
    runs = np.diff(np.append(first_chunk, n_chunks + 1))
    samples_per_chunk = np.repeat(per_chunk, runs)
    total = int(samples_per_chunk.sum())
    if total != n:
        raise Mp4ParseError(f"{name}: {where} stsc/stco place {total} samples but stsz lists {n}")
    chunk_of_sample = np.repeat(np.arange(n_chunks), samples_per_chunk)
    before = np.cumsum(size) - size  # bytes of all earlier samples
    chunk_first = np.cumsum(samples_per_chunk) - samples_per_chunk
    nonempty = samples_per_chunk > 0
    base = np.zeros(n_chunks, dtype=np.int64)
    base[nonempty] = before[chunk_first[nonempty]]
    return chunk_offset[chunk_of_sample] + before - base[chunk_of_sample]


def _edit_shift(p: _Payload, movie_timescale: int, media_timescale: int, name: str) -> int:
    """media_time minus the leading empty edit, in media ticks: what FFmpeg subtracts from pts."""
    version, _ = p.full_box()
    (entries,) = p.unpack(">I", 4)
    fmt, width = (">Qqhh", 20) if version == 1 else (">Iihh", 12)
    if entries > _MAX_EDITS:
        raise Mp4ParseError(f"{name}: edit list with {entries} entries; only one media edit is supported")
    empty = 0
    normal: list[int] = []
    for i in range(entries):
        p.need(8 + i * width, width)  # bounds before the loop body, so a huge count fails fast
        seg_duration, media_time, rate, _ = p.unpack(fmt, 8 + i * width)
        if media_time == -1:
            if normal:
                raise Mp4ParseError(f"{name}: edit list has an empty edit after a media edit")
            empty += seg_duration
            continue
        if rate != 1:
            raise Mp4ParseError(f"{name}: edit list rate {rate} (only 1 is supported)")
        normal.append(media_time)
    if len(normal) > 1:
        raise Mp4ParseError(
            f"{name}: edit list with {len(normal)} media edits; only one is supported "
            "(remux with `ffmpeg -i IN -c copy OUT.mp4`)"
        )
    if empty and movie_timescale <= 0:
        raise Mp4ParseError(f"{name}: empty edit but mvhd timescale is {movie_timescale}")
    empty_media = (empty * media_timescale) // movie_timescale if empty else 0
    return (normal[0] if normal else 0) - empty_media


def _parse_moov(moov: bytes, name: str, file_size: int) -> tuple[int, tuple[VideoTrack, ...]]:
    _, payload, end = _box_header(moov, 0, len(moov), name, "the file")
    kids = _children(moov, payload, end, name, "moov")
    if "mvex" in kids:
        raise FragmentedMp4Error(
            f"{name}: fragmented MP4 (moov has mvex); its samples live in moof boxes and cannot be "
            "indexed. Remux with `ffmpeg -i IN -c copy -movflags +faststart OUT.mp4`"
        )
    mvhd = _Payload(moov, *_one(kids, "mvhd", name, "moov"), name, "mvhd")
    version, _ = mvhd.full_box()
    (movie_timescale,) = mvhd.unpack(">I", 20 if version == 1 else 12)
    tracks = []
    for start, stop in kids.get("trak", []):
        track = _parse_trak(moov, start, stop, name, movie_timescale, file_size)
        if track is not None:
            tracks.append(track)
    return movie_timescale, tuple(tracks)


def _header_ranges(boxes: list[tuple[str, int, int]]) -> tuple[tuple[int, int], ...]:
    out = []
    for box_type, start, stop in boxes:
        if box_type in _SKIPPED_PAYLOAD:
            out.append((start, min(stop, start + _HEADER_MAX)))
        else:
            out.append((start, stop))
    return tuple(out)


def _parse(src: _Source) -> Mp4Info:
    try:
        boxes, moov, _ = _walk_top_level(src)
        movie_timescale, tracks = _parse_moov(moov, src.name, src.file_size)
    except Mp4ParseError:
        raise
    except (struct.error, IndexError, ValueError, OverflowError, MemoryError) as exc:
        # Every field read above is bounds-checked; reaching here means a check is missing.
        raise Mp4ParseError(f"{src.name}: malformed MP4 header ({type(exc).__name__}: {exc})") from exc
    if not any(t == "mdat" for t, _, _ in boxes) and any(t.n_samples for t in tracks):
        raise Mp4ParseError(f"{src.name}: has samples but no mdat box")
    return Mp4Info(
        name=src.name,
        file_size=src.file_size,
        boxes=tuple(boxes),
        tracks=tracks,
        movie_timescale=int(movie_timescale),
        header_ranges=_header_ranges(boxes),
    )


def parse_mp4(source: bytes | ReadRange, *, file_size: int | None = None, name: str) -> Mp4Info:
    """Parse an MP4's box tree and video sample tables.

    `source` is either bytes holding the file from byte 0 (the whole file, or at least everything
    up to the end of moov for a faststart file), or a `read(start, stop) -> bytes` callback, in which
    case only box headers and moov are read. `file_size` is the true size of the file (defaults to
    len(source) for bytes); it bounds every box so that truncation is detected, not guessed."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        size = len(data) if file_size is None else file_size
        return _parse(_Source(_bytes_reader(data, name), size, name, chunk=0))
    if file_size is None:
        raise Mp4ParseError(f"{name}: parse_mp4 with a read callback needs file_size=")
    return _parse(_Source(source, file_size, name, chunk=0))


def read_mp4_header(
    read: ReadRange, file_size: int, *, name: str, probe_bytes: int = 2 << 20
) -> tuple[tuple[tuple[int, bytes], ...], Mp4Info]:
    """Fetch and parse the header of a possibly remote MP4 in as few reads as possible.

    One read of the first `probe_bytes` usually holds ftyp+moov (faststart). Otherwise the walk
    reads only box headers; each miss fetches `probe_bytes` from the header on, so a moov at the
    end of the file (the last box) usually arrives in that same read. Returns the byte segments a
    sparse reader must serve for a demuxer to open the file (`Mp4Info.header_ranges`, as
    (start, bytes) pairs) and the parsed info."""
    if probe_bytes < 16:
        raise Mp4ParseError(f"{name}: probe_bytes={probe_bytes} is below one box header (16 bytes)")
    src = _Source(read, file_size, name, chunk=probe_bytes)
    info = _parse(src)
    segments = tuple((start, src.get(start, stop)) for start, stop in info.header_ranges)
    return segments, info


# --------------------------------------------------------------------------------------------
# Episode spans and TorchCodec frame mappings.


@dataclass(frozen=True)
class EpisodeSpan:
    """The samples of one episode in one file, and the bytes needed to decode them.

    Decode indices [first_sample, first_sample + n_samples) run from the keyframe before the
    episode's first decoded frame to the last sample the decoder must be fed (including decoder
    reorder lookahead). [span_start, span_stop) covers their bytes; `floor_bytes` is the sum of
    their sizes (what a reader that skipped interleaved data would fetch)."""

    first_sample: int
    n_samples: int
    frame_samples: np.ndarray
    """Decode indices of the episode's frames, in display (pts) order."""
    span_start: int
    span_stop: int
    floor_bytes: int
    from_pts: int
    to_pts: int

    @property
    def n_frames(self) -> int:
        return int(self.frame_samples.shape[0])

    @property
    def span_bytes(self) -> int:
        return self.span_stop - self.span_start


def reorder_depth(track: VideoTrack) -> int:
    """How many samples past a frame (in decode order) a decoder must see before it outputs it.

    Without B-frames this is 0. With reordering, display position minus decode position peaks at
    the number of frames the decoder holds back; those samples must be fetched too."""
    if track.n_samples == 0:
        return 0
    rank = np.empty(track.n_samples, dtype=np.int64)
    rank[track.display_order] = np.arange(track.n_samples)
    return max(0, int((rank - np.arange(track.n_samples)).max()))


def episode_span(
    info: Mp4Info | VideoTrack,
    *,
    from_timestamp: float,
    to_timestamp: float,
    name: str = "",
    lookahead: int | None = None,
) -> EpisodeSpan:
    """Samples with pts in [from_timestamp, to_timestamp) seconds and the byte span to decode them.

    Seconds are rounded to stream ticks first, because LeRobot's to_timestamp accumulates float
    error (1.6333333333333333) and must still equal the next episode's first pts exactly.
    `lookahead` defaults to `reorder_depth(track)`."""
    track = info.video if isinstance(info, Mp4Info) else info
    name = name or (info.name if isinstance(info, Mp4Info) else "video")
    from_pts = round(from_timestamp * track.timescale)
    to_pts = round(to_timestamp * track.timescale)
    selected = np.flatnonzero((track.pts >= from_pts) & (track.pts < to_pts))
    if selected.size == 0:
        first = float(track.pts_s.min()) if track.n_samples else float("nan")
        last = float(track.pts_s.max()) if track.n_samples else float("nan")
        raise DatasetFormatError(
            f"{name}: no frame with pts in [{from_timestamp}, {to_timestamp}) s; the file's frames "
            f"span {first}-{last} s. Check videos/*/from_timestamp and to_timestamp in meta/episodes"
        )
    frame_samples = selected[np.argsort(track.pts[selected], kind="stable")]
    earliest = int(selected.min())
    keyframes = np.flatnonzero(track.keyframe[: earliest + 1])
    if keyframes.size == 0:
        raise Mp4ParseError(f"{name}: no keyframe at or before sample {earliest}; cannot decode it")
    k0 = int(keyframes[-1])
    extra = reorder_depth(track) if lookahead is None else lookahead
    k1 = min(track.n_samples - 1, int(selected.max()) + extra)
    offsets = track.offset[k0 : k1 + 1]
    sizes = track.size[k0 : k1 + 1]
    return EpisodeSpan(
        first_sample=k0,
        n_samples=k1 - k0 + 1,
        frame_samples=frame_samples,
        span_start=int(offsets.min()),
        span_stop=int((offsets + sizes).max()),
        floor_bytes=int(sizes.sum()),
        from_pts=int(from_pts),
        to_pts=int(to_pts),
    )


def frame_mappings_json(pts: np.ndarray, duration: np.ndarray, keyframe: np.ndarray) -> bytes:
    """TorchCodec's custom_frame_mappings JSON from per-sample arrays (any order; it sorts by pts)."""
    frames = [
        {"pts": int(p), "duration": int(d), "key_frame": bool(k)}
        for p, d, k in zip(pts.tolist(), duration.tolist(), keyframe.tolist(), strict=True)
    ]
    return json.dumps({"frames": frames}, separators=(",", ":")).encode()


def custom_frame_mappings_json(info: Mp4Info | VideoTrack) -> bytes:
    """Frame mappings for the whole file, for `VideoDecoder(src, custom_frame_mappings=...)`.

    pts/duration are stream ticks after the edit-list shift (what TorchCodec's own scan records);
    order does not matter because TorchCodec sorts by pts."""
    track = info.video if isinstance(info, Mp4Info) else info
    return frame_mappings_json(track.pts, track.duration, track.keyframe)
