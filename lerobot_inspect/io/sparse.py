"""A read-only file that holds only some byte ranges of a remote file (e.g. MP4 header + one episode).

TorchCodec's `VideoDecoder` accepts any object with `read(size) -> bytes` and
`seek(offset, whence) -> int` (checked in torchcodec 0.13: it also seeks with whence=2 to learn
the size, and a Python exception raised inside `read` reaches the caller unchanged). Handing it a
`SparseFile` with the header and the episode's span lets it decode exact frames from a few hundred
KB instead of the whole concatenated video.

A read outside the held spans means the byte index promised bytes the decoder did not need or
does not match the file: that raises a FetchError naming the file and the offset, instead of
feeding FFmpeg zeros. With `on_miss` the missing bytes are fetched instead, and recorded in
`misses` so a probe can show the index is too tight.

FFmpeg reads in fixed blocks (64 KiB through TorchCodec's file-like adapter) and walks through a
short gap by reading on rather than seeking, so it asks for bytes past the end of a held span that
it then discards. `gap_policy="zeros"` serves those: a read that starts inside a held span, or
exactly where the previous read ended, is filled to the size asked with zeros wherever nothing is
held (counted in `zero_filled_bytes`, never fetched). A read that lands in a gap any other way
(after a seek: a request for bytes the index did not promise) still goes to `on_miss` or raises.
"""

from __future__ import annotations

import bisect
import io
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Literal, get_args

from lerobot_inspect.errors import FetchError, OptionError, check_option

__all__ = ["GapPolicy", "SparseFile"]

GapPolicy = Literal["raise", "zeros"]

_STALE_HINT = "the byte index may be stale — run `lerobot-inspect index build`"


class SparseFile(io.RawIOBase):
    """Seekable, read-only view of a `size`-byte file of which only `segments` are present.

    `segments` maps a byte offset to the bytes found there (a mapping or (offset, bytes) pairs);
    overlapping or touching segments are merged. `on_miss(start, stop) -> bytes` is called for a
    read that starts in a gap, with the gap clipped to the read; its bytes are kept.
    `gap_policy="zeros"` zero-fills read-ahead past the held spans (see the module docstring).
    """

    def __init__(
        self,
        size: int,
        segments: Mapping[int, bytes] | Iterable[tuple[int, bytes]],
        *,
        name: str,
        on_miss: Callable[[int, int], bytes] | None = None,
        gap_policy: GapPolicy = "raise",
    ) -> None:
        super().__init__()
        if size < 0:
            raise OptionError(f"size={size!r} for {name}; pass the file's size in bytes (>= 0)")
        check_option("gap_policy", gap_policy, get_args(GapPolicy))
        self.size = int(size)
        self.name = name
        self.on_miss = on_miss
        self.gap_policy = gap_policy
        self.misses: list[tuple[int, int]] = []
        self.zero_filled_bytes = 0
        self.zero_filled_reads = 0
        self._position = 0
        self._last_read_stop: int | None = None
        self._starts: list[int] = []
        self._blocks: list[bytes] = []
        pairs = segments.items() if isinstance(segments, Mapping) else segments
        for offset, data in pairs:
            self._add(int(offset), bytes(data))

    # ---- segments -------------------------------------------------------------------------------
    @property
    def spans(self) -> list[tuple[int, int]]:
        """The [start, stop) byte ranges held, sorted and disjoint."""
        return [(s, s + len(b)) for s, b in zip(self._starts, self._blocks, strict=True)]

    @property
    def held_bytes(self) -> int:
        return sum(len(b) for b in self._blocks)

    def _add(self, offset: int, data: bytes) -> None:
        stop = offset + len(data)
        if offset < 0 or stop > self.size:
            raise OptionError(
                f"segment [{offset}, {stop}) lies outside {self.name} (size {self.size}); "
                f"{_STALE_HINT}"
            )
        if not data:
            return
        # Merge with every held block that overlaps or touches [offset, stop).
        first = bisect.bisect_right(self._starts, offset) - 1
        if first < 0 or self._starts[first] + len(self._blocks[first]) < offset:
            first += 1
        last = first
        while last < len(self._starts) and self._starts[last] <= stop:
            last += 1
        if first == last:
            self._starts.insert(first, offset)
            self._blocks.insert(first, data)
            return
        new_start = min(offset, self._starts[first])
        new_stop = max(stop, self._starts[last - 1] + len(self._blocks[last - 1]))
        merged = bytearray(new_stop - new_start)
        for start, block in zip(self._starts[first:last], self._blocks[first:last], strict=True):
            merged[start - new_start : start - new_start + len(block)] = block
        merged[offset - new_start : stop - new_start] = data
        self._starts[first:last] = [new_start]
        self._blocks[first:last] = [bytes(merged)]

    def _locate(self, offset: int) -> int | None:
        """Index of the held block containing `offset`, if any."""
        i = bisect.bisect_right(self._starts, offset) - 1
        if i >= 0 and offset < self._starts[i] + len(self._blocks[i]):
            return i
        return None

    def _miss(self, offset: int, want_stop: int) -> int:
        next_block = bisect.bisect_right(self._starts, offset)
        gap_stop = self._starts[next_block] if next_block < len(self._starts) else self.size
        stop = min(want_stop, gap_stop)
        if self.on_miss is None:
            raise FetchError(
                f"byte {offset} of {self.name} is outside the fetched spans "
                f"{_describe(self.spans)}; {_STALE_HINT}"
            )
        data = self.on_miss(offset, stop)
        if len(data) != stop - offset:
            raise FetchError(
                f"on_miss returned {len(data)} bytes for [{offset}, {stop}) of {self.name}; "
                f"it must return exactly {stop - offset}"
            )
        self.misses.append((offset, stop))
        self._add(offset, bytes(data))
        located = self._locate(offset)
        assert located is not None
        return located

    # ---- io.RawIOBase ---------------------------------------------------------------------------
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def tell(self) -> int:
        self._check_open()
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._check_open()
        if whence == os.SEEK_SET:
            position = offset
        elif whence == os.SEEK_CUR:
            position = self._position + offset
        elif whence == os.SEEK_END:
            position = self.size + offset
        else:
            raise OptionError(f"whence={whence!r}; choose 0 (start), 1 (current) or 2 (end)")
        if position < 0:
            raise OptionError(f"seek to {position} in {self.name}; positions start at 0")
        self._position = position  # past the end is allowed, as for real files; reads give b""
        return position

    def read(self, size: int | None = -1) -> bytes:
        self._check_open()
        start = self._position
        if start >= self.size:
            return b""
        stop = self.size if size is None or size < 0 else min(self.size, start + size)
        if stop <= start:
            return b""
        if size is None or size < 0:
            # read-all: every byte to the end must be present, not just the first block.
            parts = []
            while self._position < self.size:
                parts.append(self.read(self.size - self._position))
            return b"".join(parts)
        i = self._locate(start)
        if self.gap_policy == "zeros" and (i is not None or start == self._last_read_stop
                                           or self._reaches_held(start, stop)):
            out = self._zero_filled(start, stop)
        else:
            if i is None:
                i = self._miss(start, stop)
            block_start, block = self._starts[i], self._blocks[i]
            # A short read at the edge of a held block is legal; the next read hits the gap.
            out = block[start - block_start : min(stop, block_start + len(block)) - block_start]
        self._position = self._last_read_stop = start + len(out)
        return out

    def _reaches_held(self, start: int, stop: int) -> bool:
        """A block read that starts in a gap and runs into held bytes: after a backward seek FFmpeg
        re-reads a whole buffer (measured: from the 32 KiB boundary before the keyframe it wants), so
        the bytes it needs are inside the read while its first bytes are not."""
        following = bisect.bisect_right(self._starts, start)
        return following < len(self._starts) and self._starts[following] < stop

    def _zero_filled(self, start: int, stop: int) -> bytes:
        """Bytes [start, stop): held bytes where held, zeros elsewhere (counted)."""
        out = bytearray(stop - start)
        held = 0
        i = max(0, bisect.bisect_right(self._starts, start) - 1)
        while i < len(self._starts) and self._starts[i] < stop:
            block_start, block = self._starts[i], self._blocks[i]
            low, high = max(start, block_start), min(stop, block_start + len(block))
            if high > low:
                out[low - start : high - start] = memoryview(block)[low - block_start : high - block_start]
                held += high - low
            i += 1
        if held < stop - start:
            self.zero_filled_bytes += stop - start - held
            self.zero_filled_reads += 1
        return bytes(out)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        n = len(data)
        memoryview(buffer).cast("B")[:n] = data
        return n

    def readall(self) -> bytes:
        return self.read(-1)

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError(f"I/O operation on closed SparseFile {self.name}")

    def __repr__(self) -> str:
        return f"SparseFile({self.name!r}, size={self.size}, spans={_describe(self.spans)})"


def _describe(spans: list[tuple[int, int]], limit: int = 4) -> str:
    shown = ", ".join(f"[{a}, {b})" for a, b in spans[:limit])
    more = f" and {len(spans) - limit} more" if len(spans) > limit else ""
    return f"{shown}{more}" if spans else "(none)"
