"""Codec, frame size and pixel format of an MP4 video track, from its sample entry: no decoding.

info.json records what LeRobot's writer saw in the first MP4 (`video.codec`, `video.pix_fmt`,
`video.width`, `video.height`); the audit compares every MP4 against it. The sample entry
(moov/trak/mdia/minf/stbl/stsd, first entry) holds the coded width and height, and its codec
configuration box holds chroma subsampling and bit depth:
- `av1C` (AV1): high_bitdepth / twelve_bit, monochrome, chroma_subsampling_x/y;
- `avcC` (H.264): the SPS it carries (chroma_format_idc, bit_depth_luma_minus8 for the High
  profiles; 4:2:0 8-bit otherwise);
- `hvcC` (HEVC): chromaFormat, bitDepthLumaMinus8;
- `vpcC` (VP9): bitDepth, chromaSubsampling.
The pixel format is named as FFmpeg names it (`yuv420p`, `yuv420p10le`, `yuv444p`, `gray`, ...).
Colour range is not derived (it lives in the bitstream's VUI), so `yuvj420p` in info.json is read
as `yuv420p` (`same_pix_fmt`).

Everything here is pure: bytes in, a `CodecInfo` out; malformed input raises `ValueError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = ["CodecInfo", "codec_name", "moov_video_sample_entry", "same_codec", "same_pix_fmt", "sample_entry_info"]

# Sample-entry fourcc -> FFmpeg codec name (what LeRobot stores as video.codec).
_FOURCC_CODEC = {"av01": "av1", "avc1": "h264", "avc3": "h264", "hvc1": "hevc", "hev1": "hevc", "vp09": "vp9",
                 "mp4v": "mpeg4"}
# Encoder or decoder names people put in info.json -> the codec they produce.
_CODEC_ALIASES = {"libsvtav1": "av1", "libaom-av1": "av1", "libdav1d": "av1", "librav1e": "av1", "av01": "av1",
                  "libx264": "h264", "avc": "h264", "avc1": "h264", "libx265": "hevc", "h265": "hevc",
                  "hvc1": "hevc", "libvpx-vp9": "vp9"}
_CHROMA_PREFIX = {"4:2:0": "yuv420p", "4:2:2": "yuv422p", "4:4:4": "yuv444p", "4:0:0": "gray"}
# H.264 profiles whose SPS carries chroma_format_idc and bit depths (ITU-T H.264 7.3.2.1.1).
_AVC_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}
_VISUAL_SAMPLE_ENTRY_BYTES = 86  # box header (8) + VisualSampleEntry fields (78); child boxes follow


@dataclass(frozen=True)
class CodecInfo:
    """What one video sample entry says. `pix_fmt`, `bit_depth` and `chroma` are None when the
    entry has no configuration box this module reads."""

    fourcc: str
    codec: str
    width: int
    height: int
    pix_fmt: str | None
    bit_depth: int | None
    chroma: str | None


def codec_name(name: str) -> str:
    """The codec an info.json `video.codec` value means (encoder names map to their codec)."""
    lowered = str(name).strip().lower()
    return _CODEC_ALIASES.get(lowered, lowered)


def same_codec(declared: str, actual: str) -> bool:
    return codec_name(declared) == codec_name(actual)


def same_pix_fmt(declared: str, actual: str) -> bool:
    """Equal pixel formats, ignoring the JPEG-range alias (`yuvj420p` is `yuv420p` + full range)."""
    def norm(value: str) -> str:
        value = str(value).strip().lower()
        return "yuv" + value[4:] if value.startswith("yuvj") else value

    return norm(declared) == norm(actual)


def _pix_fmt(chroma: str | None, depth: int | None) -> str | None:
    if chroma is None or depth is None or chroma not in _CHROMA_PREFIX:
        return None
    base = _CHROMA_PREFIX[chroma]
    if depth == 8:
        return base
    return f"{base}{depth}le" if base != "gray" else f"gray{depth}le"


def _boxes(data: bytes, start: int, stop: int) -> list[tuple[str, int, int]]:
    """(type, payload start, box stop) of each box in data[start:stop]."""
    out = []
    pos = start
    while pos + 8 <= stop:
        size, raw = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > stop:
                raise ValueError(f"box at {pos} has a 64-bit size but only {stop - pos} bytes")
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:
            size = stop - pos
        if size < header or pos + size > stop:
            raise ValueError(f"box {raw!r} at {pos} claims {size} bytes, past its parent's end {stop}")
        out.append((raw.decode("latin-1"), pos + header, pos + size))
        pos += size
    return out


def _child(data: bytes, start: int, stop: int, name: str) -> tuple[int, int]:
    for kind, payload, end in _boxes(data, start, stop):
        if kind == name:
            return payload, end
    raise ValueError(f"no {name!r} box")


def moov_video_sample_entry(moov: bytes) -> bytes:
    """The first sample entry (its whole box) of the first video track of a moov box (`moov` holds
    the moov box from its header on)."""
    kind, payload, end = _boxes(moov, 0, len(moov))[0]
    if kind != "moov":
        raise ValueError(f"expected a moov box, got {kind!r}")
    for trak_kind, trak_start, trak_stop in _boxes(moov, payload, end):
        if trak_kind != "trak":
            continue
        mdia = _child(moov, trak_start, trak_stop, "mdia")
        hdlr_start, hdlr_stop = _child(moov, *mdia, "hdlr")
        if hdlr_stop - hdlr_start < 12 or moov[hdlr_start + 8:hdlr_start + 12] != b"vide":
            continue
        minf = _child(moov, *mdia, "minf")
        stbl = _child(moov, *minf, "stbl")
        stsd_start, stsd_stop = _child(moov, *stbl, "stsd")
        if stsd_stop - stsd_start < 16:
            raise ValueError("stsd is too short to hold a sample entry")
        (count,) = struct.unpack_from(">I", moov, stsd_start + 4)
        if count < 1:
            raise ValueError("stsd has no sample entry")
        (size,) = struct.unpack_from(">I", moov, stsd_start + 8)
        if size < 8 or stsd_start + 8 + size > stsd_stop:
            raise ValueError(f"stsd entry claims {size} bytes, past the end of stsd")
        return moov[stsd_start + 8: stsd_start + 8 + size]
    raise ValueError("no video track (no trak with handler 'vide')")


def sample_entry_info(entry: bytes) -> CodecInfo:
    """Parse a visual sample entry box (header included): fourcc, size, codec, pixel format."""
    if len(entry) < _VISUAL_SAMPLE_ENTRY_BYTES:
        raise ValueError(f"sample entry is {len(entry)} bytes, shorter than a visual sample entry (86)")
    size, raw = struct.unpack_from(">I4s", entry, 0)
    fourcc = raw.decode("latin-1")
    width, height = struct.unpack_from(">HH", entry, 32)
    stop = min(len(entry), size) if size >= _VISUAL_SAMPLE_ENTRY_BYTES else len(entry)
    chroma = depth = None
    for kind, payload, end in _boxes(entry, _VISUAL_SAMPLE_ENTRY_BYTES, stop):
        body = entry[payload:end]
        if kind == "av1C":
            chroma, depth = _av1c(body)
        elif kind == "avcC":
            chroma, depth = _avcc(body)
        elif kind == "hvcC":
            chroma, depth = _hvcc(body)
        elif kind == "vpcC":
            chroma, depth = _vpcc(body)
        else:
            continue
        break
    return CodecInfo(fourcc=fourcc, codec=_FOURCC_CODEC.get(fourcc, fourcc), width=int(width), height=int(height),
                     pix_fmt=_pix_fmt(chroma, depth), bit_depth=depth, chroma=chroma)


def _chroma_from_subsampling(x: int, y: int) -> str:
    return {(1, 1): "4:2:0", (1, 0): "4:2:2", (0, 0): "4:4:4"}.get((x, y), f"subsampling {x},{y}")


def _av1c(body: bytes) -> tuple[str, int]:
    """AV1CodecConfigurationRecord (AV1-ISOBMFF 2.3.3)."""
    if len(body) < 4:
        raise ValueError("av1C is shorter than its 4-byte record")
    flags = body[2]
    high_bitdepth, twelve_bit, monochrome = (flags >> 6) & 1, (flags >> 5) & 1, (flags >> 4) & 1
    depth = 12 if high_bitdepth and twelve_bit else 10 if high_bitdepth else 8
    chroma = "4:0:0" if monochrome else _chroma_from_subsampling((flags >> 3) & 1, (flags >> 2) & 1)
    return chroma, depth


def _hvcc(body: bytes) -> tuple[str, int]:
    """HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 8.3.3)."""
    if len(body) < 19:
        raise ValueError("hvcC is shorter than its 23-byte record")
    chroma = {0: "4:0:0", 1: "4:2:0", 2: "4:2:2", 3: "4:4:4"}[body[16] & 0x03]
    return chroma, (body[17] & 0x07) + 8


def _vpcc(body: bytes) -> tuple[str, int]:
    """VPCodecConfigurationRecord (a full box: version and flags first)."""
    if len(body) < 7:
        raise ValueError("vpcC is too short")
    packed = body[6]
    chroma = {0: "4:2:0", 1: "4:2:0", 2: "4:2:2", 3: "4:4:4"}.get((packed >> 1) & 0x07, "unknown")
    return chroma, packed >> 4


def _avcc(body: bytes) -> tuple[str, int]:
    """AVCDecoderConfigurationRecord: the first SPS decides chroma format and bit depth."""
    if len(body) < 8:
        raise ValueError("avcC is shorter than its header")
    if body[5] & 0x1F == 0:
        raise ValueError("avcC holds no SPS")
    (sps_length,) = struct.unpack_from(">H", body, 6)
    sps = body[8:8 + sps_length]
    if len(sps) != sps_length or sps_length < 4:
        raise ValueError("avcC's SPS is truncated")
    return _avc_sps_format(sps)


def _avc_sps_format(nal: bytes) -> tuple[str, int]:
    rbsp = nal[1:].replace(b"\x00\x00\x03", b"\x00\x00")  # drop emulation-prevention bytes
    profile = rbsp[0]
    if profile not in _AVC_HIGH_PROFILES:
        return "4:2:0", 8
    bits = _Bits(rbsp[3:])
    bits.ue()  # seq_parameter_set_id
    chroma_format = bits.ue()
    if chroma_format == 3:
        bits.u(1)  # separate_colour_plane_flag
    depth = bits.ue() + 8
    return {0: "4:0:0", 1: "4:2:0", 2: "4:2:2", 3: "4:4:4"}.get(chroma_format, "unknown"), depth


class _Bits:
    """MSB-first bit reader with Exp-Golomb codes, enough for the start of an SPS."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def u(self, n: int) -> int:
        value = 0
        for _ in range(n):
            byte = self.pos >> 3
            if byte >= len(self.data):
                raise ValueError("SPS ends mid-field")
            value = (value << 1) | ((self.data[byte] >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return value

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("Exp-Golomb code longer than 32 bits")
        return (1 << zeros) - 1 + self.u(zeros)
