"""Exact byte-range reads with retries and byte accounting, over any fsspec filesystem.

`RangeReader.read(path, start, stop)` returns exactly `stop - start` bytes or raises `FetchError`.
For HTTP(S) it sends one `Range: bytes=start-(stop-1)` GET per attempt and checks the answer
itself (fsspec's `cat_file` accepts a 200 with the whole file, or any Content-Range, as success):
a 206 whose Content-Range is not the one asked for, a 200 that ignored the Range header, a short
body, a reset, a timeout or a 5xx all count as transient and are retried with exponential backoff
up to `max_attempts`. Other filesystems go through `fs.cat_file(path, start=, end=)`.

Identity. A remote file is pinned at its first answer (HEAD or range): its size and its ETag (or,
without one, its Last-Modified). Every later HTTP range request is conditional on that identity
(`If-Match` for a strong ETag, `If-Unmodified-Since` otherwise) and every answer is checked
against it, so a file replaced on the server between two requests, even by one of the same size,
fails with a `FetchError` (code "file-changed") naming the file instead of handing the decoder
bytes from two versions. Other filesystems cannot make a read conditional: `identity()` pins
their size and version tag (`fs.info`), which the byte-index reader compares with the index.

Accounting (`stats`) lets the notebooks and `bench` show what a loader really fetched: requests,
bytes, retries, failures and seconds, per path. It is per process: a forked DataLoader worker
starts from zero, so each worker reports its own traffic.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import fsspec
from fsspec.asyn import AsyncFileSystem, sync
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem

from lerobot_inspect.errors import FetchError, OptionError, check_int
from lerobot_inspect.io._forks import ProcessLocal
from lerobot_inspect.io.counters import Counters
from lerobot_inspect.io.fs import for_this_process, is_http

__all__ = ["RANGE_COUNTERS", "FileIdentity", "RangeReader", "reader_for"]

_T = TypeVar("_T")
_RETRYABLE_STATUS = frozenset({408, 425, 429})
_ADVICE = (
    "Check that the server is reachable and answers Range requests with 206 Partial Content; "
    "for a flaky link raise max_attempts= or timeout_s= of the RangeReader."
)


class _Transient(Exception):
    """One attempt failed in a way another attempt may not (5xx, reset, timeout, short body)."""


class _Permanent(Exception):
    """Retrying cannot help (404, 416, 403): fail at once."""


class _Changed(_Permanent):
    """The file is not the one pinned at its first read."""


@dataclass(frozen=True)
class FileIdentity:
    """What identifies one version of a file: its size and, where the store has one, a version tag
    (an HTTP ETag or Last-Modified, an object store's ETag, a local mtime)."""

    size: int
    etag: str | None = None
    last_modified: str | None = None

    @property
    def version(self) -> str | None:
        """A string that changes when the file is replaced, or None when the store gives none."""
        if self.etag:
            return f"etag={self.etag}"
        return f"last-modified={self.last_modified}" if self.last_modified else None

    def differs(self, other: FileIdentity) -> str | None:
        """Why `other` is not this version (None when nothing known differs)."""
        if other.size != self.size:
            return f"size {self.size} then {other.size}"
        if self.etag and other.etag and _etag_value(self.etag) != _etag_value(other.etag):
            return f"ETag {self.etag} then {other.etag}"
        if not (self.etag and other.etag) and self.last_modified and other.last_modified and \
                self.last_modified != other.last_modified:
            return f"Last-Modified {self.last_modified} then {other.last_modified}"
        return None


def _etag_value(etag: str) -> str:
    return etag[2:] if etag.startswith("W/") else etag


RANGE_COUNTERS = ("requests", "size_requests", "bytes", "retries", "failures", "fetch_s")
PER_PATH_COUNTERS = ("requests", "bytes", "retries", "failures", "fetch_s")


class RangeReader(ProcessLocal):
    """Exact byte ranges of files in one fsspec filesystem, retried within a bounded budget.

    Why not `fs.cat_file`: over HTTP it takes whatever the server sends, so a proxy that drops
    the Range header silently returns the whole file, and a truncated body surfaces much later as
    an FFmpeg error. Here every answer is checked against the request before anyone decodes it.
    """

    def __init__(
        self,
        fs: fsspec.AbstractFileSystem,
        *,
        max_attempts: int = 5,
        backoff_s: float = 0.05,
        max_backoff_s: float = 2.0,
        timeout_s: float = 30.0,
    ) -> None:
        check_int("max_attempts", max_attempts, minimum=1)
        for name, value in (("backoff_s", backoff_s), ("max_backoff_s", max_backoff_s)):
            if value < 0:
                raise OptionError(f"{name}={value!r}; pass a number of seconds >= 0")
        if timeout_s <= 0:
            raise OptionError(f"timeout_s={timeout_s!r}; pass a number of seconds > 0")
        self._fs = fs
        self.max_attempts = max_attempts
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self.timeout_s = float(timeout_s)
        self._pins: dict[str, FileIdentity] = {}  # inherited by forked workers: same files, same versions
        self._start_process_state()

    _PROCESS_FIELDS = ("_lock", "stats")

    def _init_process_state(self) -> None:
        # In a forked child the parent's locks may be held by threads that no longer exist, and the
        # counters describe the parent's traffic, not this worker's. Known sizes stay valid.
        self._lock = threading.Lock()
        self.stats = Counters(RANGE_COUNTERS, per_key=PER_PATH_COUNTERS)

    def __repr__(self) -> str:
        return (
            f"RangeReader({type(self._fs).__name__}, max_attempts={self.max_attempts}, "
            f"timeout_s={self.timeout_s})"
        )

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        """The filesystem, re-created once in a forked child where the parent's cannot run."""
        fs = for_this_process(self._fs)
        self._fs = fs
        return fs

    def snapshot(self) -> dict[str, Any]:
        """Counters of this process as a plain dict: totals and a `paths` entry per file."""
        return {"pid": os.getpid(), **self.stats.snapshot()}

    def reset(self) -> None:
        """Zero the counters, e.g. between the warm-up and the measured part of a benchmark."""
        self.stats.reset()

    # ----------------------------------------------------------------------------------------------
    def identity(self, path: str) -> FileIdentity:
        """Size and version tag of `path`, asked once and pinned: later reads must find the same."""
        with self._lock:
            known = self._pins.get(path)
        if known is not None:
            return known
        fs = self.fs
        if is_http(fs):
            found = self._with_retries(path, None, lambda: self._http_identity(fs, path), what="size")
        else:
            found = self._with_retries(path, None, lambda: self._generic_identity(fs, path), what="size")
        return self._pin(path, found)

    def size(self, path: str) -> int:
        """Size of `path` in bytes (see `identity`)."""
        return self.identity(path).size

    def read(self, path: str, start: int, stop: int) -> bytes:
        """Bytes [start, stop) of `path`: exactly stop - start of them, or FetchError."""
        start, stop = _check_range(path, start, stop)
        if start == stop:
            return b""
        fs = self.fs
        if is_http(fs):
            attempt = lambda: self._http_range(fs, path, start, stop)  # noqa: E731
        else:
            attempt = lambda: self._generic_range(fs, path, start, stop)  # noqa: E731
        return self._with_retries(path, (start, stop), attempt, what="read")

    def _pin(self, path: str, found: FileIdentity) -> FileIdentity:
        """Pin `found` as the identity of `path`, or raise when another version is pinned already."""
        with self._lock:
            pinned = self._pins.setdefault(path, found)
        change = pinned.differs(found)
        if change is not None:
            raise FetchError(
                f"{path} changed since it was first read ({change}): the file was replaced while it was "
                "being read, so bytes of two versions would mix. Restart once the upload is complete "
                "(and rebuild the byte index: `lerobot-inspect index build ROOT`)",
                file=path, code="file-changed", fix="restart the run after the dataset stopped changing")
        return pinned

    # ----------------------------------------------------------------------------------------------
    def _with_retries(
        self, path: str, span: tuple[int, int] | None, attempt: Callable[[], _T], *, what: str
    ) -> _T:
        began = time.perf_counter()
        last: BaseException | None = None
        attempts = 0
        for attempts in range(1, self.max_attempts + 1):
            if what == "read":
                self.stats.add(path, requests=1)
            else:
                self.stats.add(size_requests=1)
            try:
                result = attempt()
            except _Permanent as exc:
                last = exc
                break
            except _Transient as exc:
                last = exc
                if attempts < self.max_attempts:
                    time.sleep(min(self.max_backoff_s, self.backoff_s * 2 ** (attempts - 1)))
                continue
            if what == "read":
                self.stats.add(path, bytes=len(result), retries=attempts - 1,  # type: ignore[arg-type]
                               fetch_s=time.perf_counter() - began)
            return result
        if what == "read":
            self.stats.add(path, retries=attempts - 1, failures=1, fetch_s=time.perf_counter() - began)
        assert last is not None
        where = f"bytes [{span[0]}, {span[1]}) ({span[1] - span[0]} bytes) of {path}" if span else f"size of {path}"
        if isinstance(last, _Changed):
            raise FetchError(
                f"{where}: {last}. The file was replaced on the server while it was being read; bytes of two "
                "versions must not mix. Restart once the upload is complete (and rebuild the byte index: "
                "`lerobot-inspect index build ROOT`)", file=path, code="file-changed",
                fix="restart the run after the dataset stopped changing") from last
        cause = last.__cause__
        if isinstance(cause, ConnectionError) or type(cause).__name__.startswith("ClientConnector"):
            raise FetchError(
                f"{where}: cannot reach the server after {attempts} attempt(s) ({last}); check the URL and the "
                "network", file=path, code="unreachable", fix="check the URL and the network") from cause
        kind = "failed and retrying cannot help" if isinstance(last, _Permanent) else "still failed"
        raise FetchError(
            f"{where} {kind} after {attempts} attempt(s); last cause: {last}. {_ADVICE}", file=path,
            code="not-found" if "404" in str(last) or "not found" in str(last) else "fetch-failed",
            fix="check the URL and the server" if isinstance(last, _Permanent) else
            "check the server; raise max_attempts= or timeout_s= for a flaky link") from (last.__cause__ or last)

    # ---- HTTP: we talk to the server through the filesystem's own aiohttp session ----------------
    def _run_async(self, fs: AsyncFileSystem, coro_fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return sync(fs.loop, coro_fn, *args, timeout=self.timeout_s + 5.0)
        except (_Transient, _Permanent):
            raise
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise _Transient(f"{type(exc).__name__}: {exc}") from exc

    def _http_range(self, fs: Any, url: str, start: int, stop: int) -> bytes:
        with self._lock:
            pinned = self._pins.get(url)
        body, seen = self._run_async(fs, _http_get_range, fs, url, start, stop, self.timeout_s, pinned)
        if pinned is None and seen is not None:
            try:
                self._pin(url, seen)
            except FetchError as exc:
                raise _Changed(str(exc)) from None
        return body

    def _http_identity(self, fs: Any, url: str) -> FileIdentity:
        return self._run_async(fs, _http_head_identity, fs, url, self.timeout_s)

    # ---- everything else: fsspec's cat_file, translated ------------------------------------------
    def _generic_range(self, fs: fsspec.AbstractFileSystem, path: str, start: int, stop: int) -> bytes:
        try:
            if isinstance(fs, AsyncFileSystem):
                data = sync(fs.loop, fs._cat_file, path, start=start, end=stop, timeout=self.timeout_s)
            else:
                data = fs.cat_file(path, start=start, end=stop)
        except FileNotFoundError as exc:
            raise _Permanent(f"file not found: {exc}") from exc
        except (PermissionError, IsADirectoryError) as exc:
            raise _Permanent(f"{type(exc).__name__}: {exc}") from exc
        except (TimeoutError, OSError, aiohttp.ClientError) as exc:
            raise _Transient(f"{type(exc).__name__}: {exc}") from exc
        if len(data) != stop - start:
            message = f"got {len(data)} bytes instead of {stop - start}"
            # A local file cannot grow between attempts: a short read there means a stale range.
            if isinstance(fs, LocalFileSystem | MemoryFileSystem):
                raise _Permanent(f"{message}; the file is shorter than the range (stale byte index?)")
            raise _Transient(message)
        return bytes(data)

    def _generic_identity(self, fs: fsspec.AbstractFileSystem, path: str) -> FileIdentity:
        try:
            info = fs.info(path)
        except FileNotFoundError as exc:
            raise _Permanent(f"file not found: {exc}") from exc
        except (TimeoutError, OSError, aiohttp.ClientError) as exc:
            raise _Transient(f"{type(exc).__name__}: {exc}") from exc
        size = info.get("size")
        if size is None:
            raise _Permanent(f"{type(fs).__name__} reports no size for {path}")
        # Object stores' version tags. A local mtime is left out: the index built on a local copy is
        # then still good for the same files served over HTTP, whose tags have another form.
        etag = info.get("ETag") or info.get("etag")
        modified = info.get("LastModified") or info.get("last_modified")
        return FileIdentity(int(size), None if etag is None else str(etag),
                            None if modified is None else str(modified))


def _check_range(path: str, start: int, stop: int) -> tuple[int, int]:
    start, stop = int(start), int(stop)
    if start < 0 or stop < start:
        raise OptionError(f"byte range [{start}, {stop}) of {path}; pass 0 <= start <= stop")
    return start, stop


def _request_kwargs(fs: Any, timeout_s: float, extra_headers: dict[str, str]) -> dict[str, Any]:
    kwargs = dict(fs.kwargs)
    headers = dict(kwargs.pop("headers", None) or {})
    headers.update(extra_headers)
    # Compressed transfer would make Content-Length and Content-Range disagree with file offsets.
    headers["Accept-Encoding"] = "identity"
    kwargs["headers"] = headers
    kwargs["timeout"] = aiohttp.ClientTimeout(total=timeout_s)
    return kwargs


def _parse_content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """(first, last, total) of 'bytes first-last/total', or None when absent or malformed."""
    if not value or not value.startswith("bytes "):
        return None
    try:
        span, _, total = value[6:].partition("/")
        first, _, last = span.partition("-")
        return int(first), int(last), (None if total.strip() in ("", "*") else int(total))
    except ValueError:
        return None


def _classify_status(response: aiohttp.ClientResponse, url: str) -> None:
    status = response.status
    if status == 404:
        raise _Permanent(f"HTTP 404 Not Found for {url}")
    if status == 416:
        raise _Permanent(f"HTTP 416 Range Not Satisfiable for {url}: the range lies beyond the end of the file")
    if status >= 500 or status in _RETRYABLE_STATUS:
        raise _Transient(f"HTTP {status} {response.reason or ''}".rstrip())
    if status >= 400:
        raise _Permanent(f"HTTP {status} {response.reason or ''}".rstrip())


def _conditions(pinned: FileIdentity | None) -> dict[str, str]:
    """Headers that make the server refuse (412) a range of another version than the pinned one.
    If-Match needs a strong ETag; a weak one (W/...) is compared on the answer instead."""
    if pinned is None:
        return {}
    if pinned.etag and not pinned.etag.startswith("W/"):
        return {"If-Match": pinned.etag}
    if pinned.last_modified:
        return {"If-Unmodified-Since": pinned.last_modified}
    return {}


def _answer_identity(response: aiohttp.ClientResponse, size: int | None) -> FileIdentity | None:
    if size is None:
        return None
    return FileIdentity(size, response.headers.get("ETag"), response.headers.get("Last-Modified"))


async def _http_get_range(fs: Any, url: str, start: int, stop: int, timeout_s: float,
                          pinned: FileIdentity | None) -> tuple[bytes, FileIdentity | None]:
    session = await fs.set_session()
    asked = f"bytes={start}-{stop - 1}"
    kwargs = _request_kwargs(fs, timeout_s, {"Range": asked, **_conditions(pinned)})
    try:
        async with session.get(fs.encode_url(url), **kwargs) as response:
            if response.status == 412:
                response.close()
                raise _Changed(f"the server refused the range: the file no longer matches {pinned.version}"
                               if pinned else "the server answered 412 Precondition Failed")
            _classify_status(response, url)
            if response.status == 206:
                got = _parse_content_range(response.headers.get("Content-Range"))
                if got is None or got[:2] != (start, stop - 1):
                    response.close()
                    raise _Transient(
                        f"asked {asked} and the server answered Content-Range "
                        f"{response.headers.get('Content-Range')!r}"
                    )
                seen = _answer_identity(response, got[2])
            elif response.status == 200:
                # A whole-file answer is only right when the whole file is what we asked for.
                if not (start == 0 and response.content_length == stop):
                    # Close without reading: do not download a whole video to throw it away.
                    response.close()
                    raise _Transient(
                        f"asked {asked} and the server answered 200 with the whole file "
                        f"(Content-Length {response.content_length}), ignoring the Range header"
                    )
                seen = _answer_identity(response, response.content_length)
            else:
                response.close()
                raise _Transient(f"unexpected HTTP {response.status} to a Range request")
            if pinned is not None and seen is not None:
                change = pinned.differs(seen)
                if change is not None:
                    response.close()
                    raise _Changed(f"the answer is another version of the file ({change})")
            body = await _read_body(response, url, stop - start, timeout_s)
    except (_Transient, _Permanent):
        raise
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise _Transient(f"{type(exc).__name__}: {exc or 'timed out'}") from exc
    if len(body) != stop - start:
        raise _Transient(f"short body: {len(body)} of {stop - start} bytes")
    return body, seen


async def _read_body(response: aiohttp.ClientResponse, url: str, expected: int, timeout_s: float) -> bytes:
    """The body, or a _Transient that says how many bytes came before the deadline ran out."""
    chunks: list[bytes] = []
    received = 0
    try:
        async for chunk in response.content.iter_chunked(1 << 16):
            chunks.append(chunk)
            received += len(chunk)
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise _Transient(f"{type(exc).__name__} after {received} of {expected} bytes "
                         f"(deadline {timeout_s:g} s per request)") from exc
    return b"".join(chunks)


async def _http_head_identity(fs: Any, url: str, timeout_s: float) -> FileIdentity:
    session = await fs.set_session()
    try:
        kwargs = _request_kwargs(fs, timeout_s, {})
        async with session.head(fs.encode_url(url), allow_redirects=True, **kwargs) as response:
            _classify_status(response, url)
            if response.status == 200 and response.content_length is not None:
                return _answer_identity(response, int(response.content_length))
        # No usable HEAD: ask for one byte and read the total from Content-Range.
        kwargs = _request_kwargs(fs, timeout_s, {"Range": "bytes=0-0"})
        async with session.get(fs.encode_url(url), **kwargs) as response:
            _classify_status(response, url)
            got = _parse_content_range(response.headers.get("Content-Range"))
            response.close()
            if response.status == 206 and got is not None and got[2] is not None:
                return _answer_identity(response, got[2])
            raise _Permanent(
                f"{url} gives no size: HEAD had no Content-Length and a one-byte Range GET no "
                "Content-Range total"
            )
    except (_Transient, _Permanent):
        raise
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise _Transient(f"{type(exc).__name__}: {exc or 'timed out'}") from exc


_shared_lock = threading.Lock()
_SHARED_READER = "_lerobot_inspect_range_reader"


def reader_for(fs: fsspec.AbstractFileSystem) -> RangeReader:
    """The process's shared RangeReader of a filesystem, for reads that are not a loader's own
    accounting (metadata and data Parquet): one pin per file, whoever reads it."""
    fs = for_this_process(fs)
    with _shared_lock:
        # Kept on the instance: fsspec filesystems hash and compare equal by their options, so a
        # dict keyed by them would hand one open's pins to every other open of the same URL.
        reader = getattr(fs, _SHARED_READER, None)
        if reader is None:
            reader = RangeReader(fs)
            setattr(fs, _SHARED_READER, reader)
        return reader
