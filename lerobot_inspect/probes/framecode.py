"""Frame codes: an image that says which (camera, episode, frame) it is, and survives a lossy codec.

The frames page reads them at run time to say whether a decoded frame is the one that was asked
for; the fixture generator (`data_fixtures`) draws them into every frame it encodes. Pure numpy.

Every fixture video frame is a 7x7 grid of flat cells, each dark (luma 32) or light (luma 224).
The 49 bits, read row by row from the top-left cell, are (most significant first):

    camera (5 bits) | episode (16 bits) | frame (16 bits) | checksum (12 bits)

The checksum is a multiplicative hash of the 37 payload bits XOR a constant, so neither an all-dark
nor an all-light frame (a blank decode, a padding frame) reads as a valid code. Cells are large and
flat, and colors are gray (no chroma), so 4:2:0 subsampling and AV1/H.264 quantisation at CRF 30 leave
the cell centres on the right side of the threshold down to 32x32 pixels (about 4.5 px per cell).
The decoder averages the middle half of each cell and thresholds at mid-gray: why a test can check
that the loader returned *the right frame*, not merely a frame of the right shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["FrameCode", "decode_frame_code", "encode_frame_code"]

GRID = 7
CAMERA_BITS = 5
EPISODE_BITS = 16
FRAME_BITS = 16
CHECK_BITS = 12
PAYLOAD_BITS = CAMERA_BITS + EPISODE_BITS + FRAME_BITS
TOTAL_BITS = PAYLOAD_BITS + CHECK_BITS
assert TOTAL_BITS == GRID * GRID
DARK = 32
LIGHT = 224
_CHECK_XOR = 0xA5C
_MIN_SIDE = 16


@dataclass(frozen=True)
class FrameCode:
    """Identity of one fixture frame: camera position in the dataset's camera list, episode, frame."""

    camera: int
    episode: int
    frame: int


def _checksum(payload: int) -> int:
    mixed = (payload * 0x9E3779B97F4A7C15) & 0xFFFF_FFFF_FFFF_FFFF
    return ((mixed >> (64 - CHECK_BITS)) ^ _CHECK_XOR) & ((1 << CHECK_BITS) - 1)


def _payload(code: FrameCode) -> int:
    limits = (("camera", code.camera, CAMERA_BITS), ("episode", code.episode, EPISODE_BITS),
              ("frame", code.frame, FRAME_BITS))
    for name, value, bits in limits:
        if not 0 <= value < (1 << bits):
            raise ValueError(f"frame code {name}={value} does not fit in {bits} bits (0..{(1 << bits) - 1})")
    return (code.camera << (EPISODE_BITS + FRAME_BITS)) | (code.episode << FRAME_BITS) | code.frame


def _edges(size: int) -> np.ndarray:
    return (np.arange(GRID + 1) * size) // GRID


def encode_frame_code(code: FrameCode, height: int, width: int) -> np.ndarray:
    """Draw `code` as an HWC uint8 RGB image of the given size (gray cells, so all channels match)."""
    if height < _MIN_SIDE or width < _MIN_SIDE:
        raise ValueError(f"frame code image {height}x{width} is too small; use at least 32x32")
    payload = _payload(code)
    word = (payload << CHECK_BITS) | _checksum(payload)
    bits = [(word >> (TOTAL_BITS - 1 - i)) & 1 for i in range(TOTAL_BITS)]
    cells = np.where(np.array(bits, dtype=bool).reshape(GRID, GRID), LIGHT, DARK).astype(np.uint8)
    rows = np.repeat(np.arange(GRID), np.diff(_edges(height)))
    cols = np.repeat(np.arange(GRID), np.diff(_edges(width)))
    gray = cells[rows[:, None], cols[None, :]]
    return np.repeat(gray[:, :, None], 3, axis=2)


def _to_gray_hw(frame: Any) -> np.ndarray:
    """Accept torch or numpy, CHW or HWC (or HW), uint8 or float in [0, 1]; return float HW in 0..255."""
    if hasattr(frame, "detach"):
        frame = frame.detach().cpu().numpy()
    array = np.asarray(frame)
    if array.ndim == 3:
        if array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
            array = array.transpose(1, 2, 0)
        array = array.mean(axis=2, dtype=np.float64)
    elif array.ndim != 2:
        raise ValueError(f"expected one image (CHW, HWC or HW), got shape {array.shape}")
    array = array.astype(np.float64)
    if np.issubdtype(np.asarray(frame).dtype, np.floating):
        array = array * 255.0
    return array


def decode_frame_code(frame: Any) -> FrameCode:
    """Read the code back from a decoded frame; ValueError when the checksum does not match."""
    gray = _to_gray_hw(frame)
    height, width = gray.shape
    rows, cols = _edges(height), _edges(width)
    word = 0
    for r in range(GRID):
        top, bottom = rows[r], rows[r + 1]
        inset_r = (bottom - top) // 4
        for c in range(GRID):
            left, right = cols[c], cols[c + 1]
            inset_c = (right - left) // 4
            cell = gray[top + inset_r: bottom - inset_r, left + inset_c: right - inset_c]
            word = (word << 1) | int(cell.mean() > (DARK + LIGHT) / 2)
    payload, check = word >> CHECK_BITS, word & ((1 << CHECK_BITS) - 1)
    if _checksum(payload) != check:
        raise ValueError(f"frame code checksum mismatch (read word {word:#x}); not a fixture frame, "
                         "or the frame was damaged or is a different frame than expected")
    camera = payload >> (EPISODE_BITS + FRAME_BITS)
    episode = (payload >> FRAME_BITS) & ((1 << EPISODE_BITS) - 1)
    return FrameCode(camera=camera, episode=episode, frame=payload & ((1 << FRAME_BITS) - 1))
