"""Filesystems for dataset roots: the one opener and guarded join, and fork safety.

Every read in lerobot_inspect goes through fsspec so that local disks, HTTP servers and object
stores share one code path. Three things matter for a data loader:

- One opener, one join: `open_root` resolves a root (local path or fsspec URL) and `join` builds
  every path below it, refusing any that would leave it (`..`, also percent-encoded, URLs,
  control characters). Both live with the v3 layout in `lerobot_inspect.format.meta`, because
  `DatasetMeta` opens its root and builds its paths through them; they are re-exported here.
- HTTP roots must not cache or prefetch blocks: the byte index asks for exact spans, and a
  block cache would turn a 200 KB episode read into several MB. Random reads go through
  `RangeReader`, which sends one Range request per span; `open_root` also sets the
  filesystem's default `cache_type="none"` so an incidental `fs.open` does not read ahead.
- fsspec's async filesystems (HTTP, s3fs) bind an event loop and an aiohttp session to the process
  that made them and refuse to run in a forked DataLoader worker ("This class is not
  fork-safe"). `for_this_process(fs)` returns a fresh equivalent filesystem in a child; fsspec's
  instance cache is keyed by pid and cleared after a fork, so the child never receives the
  parent's half-open session.
"""

from __future__ import annotations

import os

import fsspec
from fsspec.asyn import AsyncFileSystem

from lerobot_inspect.errors import FetchError
from lerobot_inspect.format.meta import is_http, join, open_root

__all__ = ["for_this_process", "is_http", "join", "open_root"]


def for_this_process(fs: fsspec.AbstractFileSystem) -> fsspec.AbstractFileSystem:
    """`fs` itself if it may be used in this process, else an equivalent fresh instance.

    An async fsspec filesystem remembers the pid that built it and raises in any other process
    (its loop thread and aiohttp session did not survive the fork). Rebuilding it from its
    constructor arguments gives the child its own loop and session; fsspec clears its instance
    cache on a pid change, so this never returns the parent's object.
    """
    if not isinstance(fs, AsyncFileSystem) or getattr(fs, "_pid", os.getpid()) == os.getpid():
        return fs
    try:
        return type(fs)(*fs.storage_args, **fs.storage_options)
    except Exception as exc:  # a third-party constructor; anything it raises means the same thing
        raise FetchError(
            f"could not re-create the {type(fs).__name__} filesystem in process {os.getpid()} after a "
            f"fork: {exc}. Use DataLoader(multiprocessing_context='spawn') or a local root."
        ) from exc
