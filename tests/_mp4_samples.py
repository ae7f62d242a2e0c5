"""Real MP4s for the parser and byte-index tests, made with the ffmpeg CLI in a temp dir.

Each kind exercises one layout the parser must handle; `episodes` says where forced keyframes
split the file into LeRobot-style concatenated episodes (frame indices at 30 fps)."""

from __future__ import annotations

import io
import struct
import subprocess
from pathlib import Path

import numpy as np

FPS = 30
N_FRAMES = 60
EPISODE_STARTS = (0, 17, 40)  # frames; episodes are [0,17), [17,40), [40,60)

_BASE = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", f"testsrc=size=64x64:rate={FPS}", "-frames:v", str(N_FRAMES), "-pix_fmt", "yuv420p"]
_KEYS = "expr:" + "+".join(f"eq(n,{n})" for n in EPISODE_STARTS)
KINDS = {
    # LeRobot's own layout: AV1, GOP 2, faststart
    "av1_faststart": ["-c:v", "libsvtav1", "-g", "2", "-movflags", "+faststart"],
    # a single-episode LeRobot file keeps the encoder layout: moov at the end
    "av1_moov_end": ["-c:v", "libsvtav1", "-g", "2"],
    # B-frames: ctts + an edit list (media_time = 2 frames), keyframes forced at episode starts
    "h264_bframes": ["-c:v", "libx264", "-bf", "2", "-g", "100", "-force_key_frames", _KEYS],
    # negative composition offsets (ctts version 1), no edit shift
    "h264_negative_cts": ["-c:v", "libx264", "-bf", "2", "-g", "100", "-force_key_frames", _KEYS,
                          "-movflags", "negative_cts_offsets+faststart"],
    # an initial empty edit (the stream starts at 0.5 s)
    "h264_empty_edit": ["-c:v", "libx264", "-bf", "2", "-g", "12", "-output_ts_offset", "0.5"],
}


def make_mp4(directory: Path, kind: str) -> Path:
    path = directory / f"{kind}.mp4"
    if not path.exists():
        subprocess.run([*_BASE, *KINDS[kind], str(path)], check=True, capture_output=True)
    return path


def episode_bounds(offset_s: float = 0.0) -> list[tuple[int, float, float]]:
    """(episode_index, from_timestamp, to_timestamp) as LeRobot writes them for our files."""
    edges = [*EPISODE_STARTS, N_FRAMES]
    return [(i, offset_s + edges[i] / FPS, offset_s + edges[i + 1] / FPS) for i in range(len(EPISODE_STARTS))]


# -- box surgery ------------------------------------------------------------------------------

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf"}


def _rewrite(buf: bytes, fn) -> bytes:
    """Rebuild a box list, letting `fn(type, payload) -> bytes | None` replace leaf boxes."""
    out, pos = bytearray(), 0
    while pos < len(buf):
        size, box_type = struct.unpack_from(">I4s", buf, pos)
        payload = buf[pos + 8 : pos + size]
        if box_type in _CONTAINERS:
            new_payload, new_type = _rewrite(payload, fn), box_type
        else:
            replaced = fn(box_type, payload)
            new_type, new_payload = (box_type, payload) if replaced is None else replaced
        out += struct.pack(">I4s", 8 + len(new_payload), new_type) + new_payload
        pos += size
    return bytes(out)


def to_co64(data: bytes) -> bytes:
    """Same file with stco rewritten as co64 (moov must be the last box, so offsets stay valid)."""
    moov_at = data.rindex(b"moov") - 4
    (moov_size,) = struct.unpack_from(">I", data, moov_at)
    assert moov_at + moov_size == len(data), "to_co64 needs moov at the end"

    def widen(box_type: bytes, payload: bytes):
        if box_type != b"stco":
            return None
        (count,) = struct.unpack_from(">I", payload, 4)
        offsets = struct.unpack_from(f">{count}I", payload, 8)
        return b"co64", payload[:8] + struct.pack(f">{count}Q", *offsets)

    return data[:moov_at] + _rewrite(data[moov_at:], widen)


def sparse_copy(data: bytes, ranges, *, seed: int) -> bytes:
    """The file with only `ranges` kept and every other byte replaced by noise."""
    noise = bytearray(np.random.default_rng(seed).integers(0, 256, len(data), dtype=np.uint8).tobytes())
    for start, stop in ranges:
        noise[start:stop] = data[start:stop]
    return bytes(noise)


class SparseFile(io.RawIOBase):
    """File-like test double holding only some byte ranges; the rest reads as noise.

    FFmpeg's AVIO reads ahead in 32 KiB blocks, so a double that raised on bytes outside the
    ranges would fail on read-ahead it never uses; noise instead proves those bytes are unused."""

    def __init__(self, data: bytes, ranges, *, seed: int = 0) -> None:
        super().__init__()
        self._data = sparse_copy(data, ranges, seed=seed)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: len(self._data)}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer) -> int:
        chunk = self._data[self._pos : self._pos + len(buffer)]
        buffer[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)
