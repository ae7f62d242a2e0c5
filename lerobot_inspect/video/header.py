"""Read one MP4's header (box headers and moov) through any fsspec filesystem: what the audit and
the loader's span check need, without touching the sample data."""

from __future__ import annotations

import fsspec

from lerobot_inspect.video.mp4 import Mp4Info, read_mp4_header

__all__ = ["HEADER_PROBE_BYTES", "read_video_header"]

# First read: enough for a faststart file's ftyp + moov in one request.
HEADER_PROBE_BYTES = 256 << 10


def read_video_header(fs: fsspec.AbstractFileSystem, path: str, *, name: str) -> Mp4Info:
    """Parse the MP4 at `path`, reading only box headers and moov; `name` is shown in errors."""
    size = int(fs.size(path))
    with fs.open(path, "rb") as handle:
        def read(start: int, stop: int) -> bytes:
            handle.seek(start)
            return handle.read(stop - start)

        _, info = read_mp4_header(read, size, name=name, probe_bytes=HEADER_PROBE_BYTES)
    return info
