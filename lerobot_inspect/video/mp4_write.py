"""A small, self-contained MP4 for one episode: the file's codec description plus the episode's samples.

A LeRobot MP4 holds thousands of episodes, and FFmpeg's mov demuxer indexes every sample of the
moov it opens (~9 MB for 10,000 episodes), so a decoder over the original header costs memory in
proportion to the file. This module writes, from the byte index, the header of an MP4 that holds
only the samples one (episode, camera) decoder is fed: ftyp + moov (one video track whose `stsd` is
copied verbatim, so av1C/avcC and colour boxes are the original's) + an mdat header, laid out so
the episode's byte span follows it unchanged. Its size grows with the episode, not the file.

Timestamps are kept: a decoder over the small file reports exactly the pts the whole-file decoder
reports. The track's decode times restart at 0, so the edit list puts them back: an initial empty
edit of the first pts, and a media edit starting at the composition delay (see `_edit`), which is
how FFmpeg's mov demuxer (checked with Debian's FFmpeg 5.1) shifts pts without dropping a frame.

Pure: bytes in, bytes out, no I/O. The box walking reuses `video.mp4`'s bounds-checked helpers.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from lerobot_inspect.errors import Mp4ParseError
from lerobot_inspect.video.mp4 import (
    _box_header,
    _children,
    _mdhd_timescale,
    _one,
    _parse_stsd,
    _Payload,
    _top_level_box,
)

__all__ = ["TrackTemplate", "episode_mp4_header", "track_template"]

_U32_MAX = (1 << 32) - 1
_DEFAULT_FTYP_PAYLOAD = b"isom" + struct.pack(">I", 0x200) + b"isomiso2mp41"
_IDENTITY_MATRIX = struct.pack(">9i", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
_LANGUAGE_UND = 0x55C4  # ISO 639-2 "und", packed as three 5-bit letters


@dataclass(frozen=True)
class TrackTemplate:
    """What every per-episode MP4 of one file shares, taken from the file's header once.

    `stsd` is the whole sample-description box, bytes as in the file: the decoder configuration
    (av1C, avcC, colr, pasp) must be the encoder's own, so it is copied, never rebuilt. No edit-list
    shift is kept: the byte index's pts already include it, and each episode gets its own edits."""

    ftyp: bytes
    """The file's whole ftyp box (FFmpeg reads the major brand), or a plain isom one if it had none."""
    timescale: int
    """mdhd timescale of the video track: the unit of every pts, dts and duration in the index."""
    width: int
    height: int
    codec: str
    stsd: bytes


def track_template(segments: Iterable[tuple[int, bytes]], *, file_size: int, name: str) -> TrackTemplate:
    """The template of a file's first video track, from its header bytes.

    `segments` are (file offset, bytes) pieces that each begin at a top-level box, as a byte-index
    reader holds them (ftyp, moov, and the first bytes of mdat); boxes cut off at a segment's end
    (mdat) are stepped over. Raises Mp4ParseError naming `name` when they hold no whole moov with a
    video track."""
    ftyp: bytes | None = None
    moov: bytes | None = None
    for start, data in segments:
        pos = 0
        while len(data) - pos >= 8:
            box_type, end = _top_level_box(data[pos : pos + 16], start + pos, file_size, name)
            if end - start > len(data):
                break  # only this box's header is held (mdat, free): nothing further in this piece
            if box_type == "ftyp" and ftyp is None:
                ftyp = bytes(data[pos : end - start])
            elif box_type == "moov" and moov is None:
                moov = bytes(data[pos : end - start])
            pos = end - start
    if moov is None:
        raise Mp4ParseError(f"{name}: the header bytes hold no whole moov box; rebuild the byte index")
    try:
        return _template_from_moov(moov, ftyp or _box(b"ftyp", _DEFAULT_FTYP_PAYLOAD), name)
    except (struct.error, IndexError, ValueError) as exc:
        raise Mp4ParseError(f"{name}: malformed moov ({type(exc).__name__}: {exc})") from exc


def _template_from_moov(moov: bytes, ftyp: bytes, name: str) -> TrackTemplate:
    _, payload, end = _box_header(moov, 0, len(moov), name, "the file")
    for trak_start, trak_stop in _children(moov, payload, end, name, "moov").get("trak", []):
        trak = _children(moov, trak_start, trak_stop, name, "trak")
        mdia = _children(moov, *_one(trak, "mdia", name, "trak"), name, "mdia")
        hdlr = _Payload(moov, *_one(mdia, "hdlr", name, "mdia"), name, "hdlr")
        if hdlr.unpack(">4s", 8)[0] != b"vide":
            continue
        timescale = _mdhd_timescale(moov, mdia, name, "video track")
        minf = _children(moov, *_one(mdia, "minf", name, "mdia"), name, "minf")
        stsd = _stsd_box(moov, *_one(minf, "stbl", name, "minf"), name)
        codec, width, height = _parse_stsd(_Payload(stsd, *_box_header(stsd, 0, len(stsd), name, "stbl")[1:],
                                                    name, "stsd"))
        return TrackTemplate(ftyp=ftyp, timescale=int(timescale), width=width, height=height, codec=codec,
                             stsd=stsd)
    raise Mp4ParseError(f"{name}: moov has no video track (no trak with handler 'vide')")


def _stsd_box(buf: bytes, start: int, stop: int, name: str) -> bytes:
    """The whole stsd box (header included, to be copied) among the children of the stbl payload
    buf[start:stop]; `_children` gives payload ranges only."""
    pos = start
    while pos < stop:
        box_type, _, end = _box_header(buf, pos, stop, name, "stbl")
        if box_type == "stsd":
            return bytes(buf[pos:end])
        pos = end
    raise Mp4ParseError(f"{name}: stbl has no 'stsd' box")


# --------------------------------------------------------------------------------------------
# Writing.


def episode_mp4_header(
    template: TrackTemplate,
    *,
    pts: np.ndarray,
    dts: np.ndarray,
    duration: np.ndarray,
    keyframe: np.ndarray,
    offset: np.ndarray,
    size: np.ndarray,
    span_start: int,
    span_stop: int,
    name: str = "video",
) -> bytes:
    """ftyp + moov + mdat header of an MP4 whose mdat payload is bytes [span_start, span_stop) of the
    original file, copied as they are.

    The arrays describe the samples a decoder is fed, in decode order (a slice of
    `ByteIndex.file_frames`): stream ticks as FFmpeg reports them for the original file, and each
    sample's byte range there, which must lie inside the span. A decoder reading the header followed
    by the span sees these samples with these pts; their offsets become
    `len(header) + offset - span_start`. One sample per chunk keeps stsc to a single entry."""
    pts, dts, duration, size = (np.asarray(a, dtype=np.int64) for a in (pts, dts, duration, size))
    offset = np.asarray(offset, dtype=np.int64)
    keyframe = np.asarray(keyframe, dtype=bool)
    n = int(pts.shape[0])
    if n == 0 or any(a.shape != (n,) for a in (dts, duration, keyframe, offset, size)):
        raise Mp4ParseError(f"{name}: an episode MP4 needs one pts, dts, duration, keyframe, offset and size per "
                            f"sample and at least one sample (got {n} pts); rebuild the byte index")
    if int(offset.min()) < span_start or int((offset + size).max()) > span_stop:
        raise Mp4ParseError(f"{name}: samples lie at bytes {int(offset.min())}-{int((offset + size).max())}, outside "
                            f"the span [{span_start}, {span_stop}); the byte index is stale, rebuild it")
    if not keyframe[0]:
        raise Mp4ParseError(f"{name}: the first sample of the span is not a keyframe; rebuild the byte index")
    if n > 1 and int(np.diff(dts).min()) <= 0:
        raise Mp4ParseError(f"{name}: decode times do not increase; rebuild the byte index")

    mdat_header = _mdat_header(span_stop - span_start)

    def moov(data_start: int, wide: bool) -> bytes:
        return _moov(template, pts=pts, dts=dts, duration=duration, keyframe=keyframe, size=size,
                     chunk_offset=offset - span_start + data_start, wide=wide)

    # The offsets depend on the header's length, which does not depend on the offsets' values but
    # on their width: 32-bit stco unless the file would pass 4 GiB, then co64.
    wide = False
    data_start = len(template.ftyp) + len(moov(0, wide)) + len(mdat_header)
    if data_start + span_stop - span_start > _U32_MAX:
        wide = True
        data_start = len(template.ftyp) + len(moov(0, wide)) + len(mdat_header)
    return template.ftyp + moov(data_start, wide) + mdat_header


def _moov(template: TrackTemplate, *, pts: np.ndarray, dts: np.ndarray, duration: np.ndarray,
          keyframe: np.ndarray, size: np.ndarray, chunk_offset: np.ndarray, wide: bool) -> bytes:
    decode_time = dts - dts[0]  # the new track's decode times start at 0 ...
    composition = pts - dts  # ... and keep each sample's reorder delay
    media_duration = int(decode_time[-1] + duration[-1])
    empty, media_time, edit_duration = _edit(pts=pts, dts=dts, duration=duration)
    movie_duration = empty + edit_duration
    timescale = template.timescale

    stbl = _box(b"stbl", template.stsd, _stts(decode_time, duration), _ctts(composition),
                _stss(keyframe), _full_box(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, 1, 1)),
                _full_box(b"stsz", 0, 0, struct.pack(">II", 0, len(size)), size.astype(">u4").tobytes()),
                _chunk_offsets(chunk_offset, wide=wide))
    dinf = _box(b"dinf", _full_box(b"dref", 0, 0, struct.pack(">I", 1), _full_box(b"url ", 0, 1)))
    minf = _box(b"minf", _full_box(b"vmhd", 0, 1, bytes(8)), dinf, stbl)
    mdhd = _full_box(b"mdhd", 1, 0, struct.pack(">QQIQHH", 0, 0, timescale, media_duration, _LANGUAGE_UND, 0))
    hdlr = _full_box(b"hdlr", 0, 0, struct.pack(">I4s12x", 0, b"vide"), b"VideoHandler\0")
    tkhd = _full_box(b"tkhd", 1, 3, struct.pack(">QQIIQ8xhhh2x", 0, 0, 1, 0, movie_duration, 0, 0, 0),
                     _IDENTITY_MATRIX, struct.pack(">II", template.width << 16, template.height << 16))
    trak = _box(b"trak", tkhd, _edts(empty, media_time, edit_duration), _box(b"mdia", mdhd, hdlr, minf))
    mvhd = _full_box(b"mvhd", 1, 0, struct.pack(">QQIQIh10x", 0, 0, timescale, movie_duration, 0x10000, 0x100),
                     _IDENTITY_MATRIX, bytes(24), struct.pack(">I", 2))
    return _box(b"moov", mvhd, trak)


def _edit(*, pts: np.ndarray, dts: np.ndarray, duration: np.ndarray) -> tuple[int, int, int]:
    """(empty edit, media_time, media edit duration) in ticks that give the samples their original pts.

    FFmpeg's mov demuxer reports pts = decode_time + composition - media_time + empty, and when the
    earliest pts it keeps, less the empty edit, is above zero it shifts every timestamp down to make
    it zero; samples before media_time are dropped. Starting the media edit at the earliest
    composition time (the reorder delay) avoids that shift and drops nothing, and the empty edit
    then carries the episode's first pts. Samples the original file itself dropped (pts < 0) stay
    dropped: media_time never goes below -dts[0]."""
    relative_pts = pts - dts[0]
    media_time = max(int(relative_pts.min()), -int(dts[0]))
    empty = int(dts[0]) + media_time
    end = int((relative_pts + duration).max())
    return empty, media_time, max(0, end - media_time)


# --------------------------------------------------------------------------------------------
# Boxes.


def _box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    if 8 + len(body) > _U32_MAX:
        return struct.pack(">I4sQ", 1, kind, 16 + len(body)) + body
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *payload)


def _mdat_header(payload_bytes: int) -> bytes:
    if 8 + payload_bytes > _U32_MAX:
        return struct.pack(">I4sQ", 1, b"mdat", 16 + payload_bytes)
    return struct.pack(">I4s", 8 + payload_bytes, b"mdat")


def _runs(values: np.ndarray) -> np.ndarray:
    """(count, value) rows of the runs of equal neighbours in `values`, as stts and ctts store them."""
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    counts = np.diff(np.r_[starts, values.shape[0]])
    return np.stack([counts, values[starts]], axis=1)


def _stts(decode_time: np.ndarray, duration: np.ndarray) -> bytes:
    """Deltas between decode times (the last sample keeps its own duration), run-length coded."""
    deltas = np.r_[np.diff(decode_time), duration[-1:]]
    runs = _runs(deltas)
    return _full_box(b"stts", 0, 0, struct.pack(">I", len(runs)), runs.astype(">u4").tobytes())


def _ctts(composition: np.ndarray) -> bytes:
    """Composition offsets, omitted when every sample is shown at its decode time (no reordering).
    Version 1 (signed) when an offset is negative; FFmpeg reads both as signed."""
    if not composition.any():
        return b""
    runs = _runs(composition)
    version = 1 if int(composition.min()) < 0 else 0
    table = np.stack([runs[:, 0].astype(">u4"), runs[:, 1].astype(">i4").view(">u4")], axis=1)
    return _full_box(b"ctts", version, 0, struct.pack(">I", len(runs)), table.astype(">u4").tobytes())


def _stss(keyframe: np.ndarray) -> bytes:
    """1-based numbers of the sync samples; omitted when all are, which is what no stss means."""
    if keyframe.all():
        return b""
    numbers = np.flatnonzero(keyframe) + 1
    return _full_box(b"stss", 0, 0, struct.pack(">I", len(numbers)), numbers.astype(">u4").tobytes())


def _chunk_offsets(offsets: np.ndarray, *, wide: bool) -> bytes:
    if wide:
        return _full_box(b"co64", 0, 0, struct.pack(">I", len(offsets)), offsets.astype(">u8").tobytes())
    return _full_box(b"stco", 0, 0, struct.pack(">I", len(offsets)), offsets.astype(">u4").tobytes())


def _edts(empty: int, media_time: int, edit_duration: int) -> bytes:
    """An edit list only when it shifts something: FFmpeg treats a missing one as media_time 0."""
    if empty == 0 and media_time == 0:
        return b""
    entries = [(empty, -1)] if empty else []
    entries.append((edit_duration, media_time))
    table = b"".join(struct.pack(">Qqhh", seg, start, 1, 0) for seg, start in entries)
    return _box(b"edts", _full_box(b"elst", 1, 0, struct.pack(">I", len(entries)), table))
