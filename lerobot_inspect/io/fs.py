"""Filesystems for dataset roots: the one opener and guarded join, and fork safety.

Every read in lerobot_inspect goes through fsspec so that local disks, HTTP servers and object
stores share one code path. Three things matter for a data loader:

- One opener, one join: `open_root` resolves a root (local path or fsspec URL) and `join` builds
  every path below it, refusing any that would leave it (`..`, also percent-encoded, URLs,
  control characters). `DatasetMeta` opens its root and builds every path from its metadata
  (info.json templates, camera names, the byte index) through them, so a crafted dataset cannot
  make a reader leave its root, locally or over HTTP.
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
import posixpath
import re
import urllib.parse
from typing import Any

import fsspec
from fsspec.asyn import AsyncFileSystem

from lerobot_inspect.errors import FetchError, OptionError

__all__ = ["escape_problem", "for_this_process", "is_http", "join", "open_fs", "open_root"]


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


# The one opener and the one guarded join: every path built from a dataset's metadata (info.json
# templates, camera names, the byte index) goes through `join`, so a crafted dataset cannot make a
# reader leave its root, locally or over HTTP. `lerobot_inspect.io` re-exports both.
_HTTP_PROTOCOLS = ("http", "https")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def open_root(
    root: str | os.PathLike[str], *, storage_options: dict[str, Any] | None = None
) -> tuple[fsspec.AbstractFileSystem, str]:
    """(filesystem, root path inside it) for a local path or any fsspec URL.

    A plain path becomes the local filesystem with an absolute path, so later joins do not
    depend on the working directory. HTTP roots keep their full URL as the path (that is how
    fsspec's HTTP filesystem addresses files) and get block caching switched off: the byte index
    asks for exact spans, and a read-ahead cache would turn a 200 KB episode read into MBs.
    """
    if isinstance(root, os.PathLike):
        root = os.fspath(root)
    if not isinstance(root, str) or not root:
        raise OptionError(f"root={root!r}; pass a local directory or an fsspec URL such as https://host/ds")
    options = dict(storage_options or {})
    protocol = _protocol_of(root)
    if protocol in _HTTP_PROTOCOLS:
        # Seekable files whose reads become exact Range requests: no read-ahead block cache.
        # (block_size=0 would give a streaming, unseekable file, which parquet readers cannot use.)
        options.setdefault("cache_type", "none")
        # Each open gets its own filesystem, hence its own shared RangeReader and file pins: a
        # dataset opened again after a re-upload reads the new version (fsspec's instance cache
        # would hand back the old object, whose pins refused every file as "changed"; seen as a
        # flaky test when a later test's server got an earlier one's port).
        options.setdefault("skip_instance_cache", True)
    try:
        fs, path = fsspec.core.url_to_fs(root, **options)
    except (ImportError, ValueError) as exc:
        raise OptionError(
            f"cannot open dataset root {root!r}: {exc}. For s3:// install s3fs, for hf:// install "
            "huggingface_hub; local paths and http(s):// work out of the box."
        ) from exc
    if protocol in _HTTP_PROTOCOLS:
        path = root.rstrip("/")
    elif protocol in ("file", "local"):
        path = os.path.abspath(path)
    else:
        path = path.rstrip("/") or path
    return fs, path


def open_fs(root: str | os.PathLike[str]) -> tuple[fsspec.AbstractFileSystem, str]:
    """The same as `open_root` (kept for callers that know it under this name)."""
    return open_root(root)


def join(root_path: str, rel: str) -> str:
    """Join a path relative to the dataset root with '/', as every fsspec filesystem expects.

    Works for URLs too (posixpath leaves `https://host` alone). Backslashes count as separators
    and a leading '/' is dropped, so the result always lies below `root_path`; a relative part
    that would leave it anyway (a `..` segment, also percent-encoded, a URL, a control character)
    is refused with OptionError, since a crafted info.json could otherwise point anywhere.
    """
    clean = rel.replace("\\", "/").lstrip("/")
    problem = escape_problem(clean)
    if problem:
        raise OptionError(f"path {rel!r} leaves the dataset root {root_path!r} ({problem}); use a path below it")
    if not clean:
        return root_path
    if not root_path:
        return clean
    return posixpath.join(root_path.rstrip("/") or root_path, clean)


def escape_problem(rel: str) -> str | None:
    if _CONTROL.search(rel):
        return "it holds a control character"
    if "://" in rel:
        return "it is a URL"
    for segment in rel.split("/"):
        decoded = segment
        for _ in range(3):  # %252e%252e decodes to %2e%2e, then to ..
            decoded = urllib.parse.unquote(decoded)
        if decoded.strip() == "..":
            return "a '..' segment"
    return None


def is_http(fs: fsspec.AbstractFileSystem) -> bool:
    """True for fsspec's HTTP filesystem, where we talk to the server ourselves to check ranges."""
    protocol = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return any(p in _HTTP_PROTOCOLS for p in protocol)


def _protocol_of(root: str) -> str:
    if "://" not in root:
        return "file"
    return root.split("://", 1)[0].lower()


