"""An LRU of byte slices (episode spans, MP4 headers) bounded in bytes, with a small prefetch pool.

A training loader asks for the same episode span many times (one per frame of a window, one per
camera) and knows the next episodes in advance. Keeping the slices in RAM turns the repeats into
hits, and prefetching the next ones overlaps network time with decode time. `stats` records both
sides (fetch seconds here, decode seconds reported by the caller) so a notebook can show which
one bounds throughput.

Each process has its own cache: in a forked DataLoader worker the inherited entries, in-flight
futures and threads are dropped right after the fork (a thread pool does not survive one, and
waiting on a parent's future would hang forever), and the counters start from zero.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from lerobot_inspect.errors import OptionError
from lerobot_inspect.io._forks import ProcessLocal
from lerobot_inspect.io.counters import Counters
from lerobot_inspect.io.ranges import RangeReader

__all__ = ["CACHE_COUNTERS", "ByteCache", "LargeFetchWarning"]

Key = tuple[str, int, int]
_RECENT_MISSES = 4096


class LargeFetchWarning(UserWarning):
    """One cache miss fetched more bytes than `warn_miss_bytes`: probably a whole file, not a span."""


CACHE_COUNTERS = ("hits", "misses", "prefetches", "prefetch_hits", "prefetch_unused_evicted", "evictions",
                  "bytes_fetched", "miss_bytes", "fetch_s", "decode_s")


class ByteCache(ProcessLocal):
    """Byte slices keyed by (path, start, stop), least recently used evicted past `capacity_bytes`.

    `get` returns a hit, waits for an in-flight fetch of the same key (prefetched or asked by
    another thread), or fetches through the RangeReader. A slice larger than the capacity is
    returned but not kept, so one huge read cannot flush everything else.
    """

    def __init__(
        self,
        reader: RangeReader,
        *,
        capacity_bytes: int = 512 << 20,
        prefetch_threads: int = 2,
        warn_miss_bytes: int = 64 << 20,
    ) -> None:
        if capacity_bytes < 0:
            raise OptionError(f"capacity_bytes={capacity_bytes!r}; pass a byte count >= 0 (0 keeps nothing)")
        if prefetch_threads < 0:
            raise OptionError(f"prefetch_threads={prefetch_threads!r}; pass >= 0 (0 disables prefetch)")
        if warn_miss_bytes <= 0:
            raise OptionError(f"warn_miss_bytes={warn_miss_bytes!r}; pass a byte count > 0")
        self.reader = reader
        self.capacity_bytes = int(capacity_bytes)
        self.prefetch_threads = int(prefetch_threads)
        self.warn_miss_bytes = int(warn_miss_bytes)
        self._start_process_state()

    _PROCESS_FIELDS = ("_lock", "_entries", "_nbytes", "_inflight", "_prefetched", "_pool", "stats")

    def _init_process_state(self) -> None:
        # A forked child has none of the parent's pool threads, so their futures would never complete.
        self._lock = threading.Lock()
        self._entries: OrderedDict[Key, bytes] = OrderedDict()
        self._nbytes = 0
        self._inflight: dict[Key, Future[bytes]] = {}
        self._prefetched: set[Key] = set()  # kept or in flight because of prefetch(), not yet used
        self._pool: ThreadPoolExecutor | None = None
        self.stats = Counters(CACHE_COUNTERS, recent={"recent_miss_bytes": _RECENT_MISSES})

    def __repr__(self) -> str:
        return (
            f"ByteCache({len(self._entries)} slices, {self._nbytes} of {self.capacity_bytes} bytes, "
            f"prefetch_threads={self.prefetch_threads})"
        )

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._entries

    @property
    def nbytes(self) -> int:
        """Bytes currently held."""
        return self._nbytes

    def snapshot(self) -> dict[str, Any]:
        """Cache counters, derived rates and the bytes held, as a plain dict."""
        out = self.stats.snapshot()
        lookups = out["hits"] + out["misses"]
        out.update(pid=os.getpid(), hit_rate=out["hits"] / lookups if lookups else 0.0,
                   bytes_per_miss=out["miss_bytes"] / out["misses"] if out["misses"] else 0.0,
                   held_bytes=self._nbytes, slices=len(self._entries), capacity_bytes=self.capacity_bytes)
        return out

    def reset(self) -> None:
        """Zero the counters (the cached slices stay)."""
        self.stats.reset()

    def record_decode_seconds(self, seconds: float) -> None:
        """Add decode time measured by the caller, to compare with the fetch time recorded here."""
        self.stats.add(decode_s=float(seconds))

    # ---- lookups --------------------------------------------------------------------------------
    def get(self, path: str, start: int, stop: int) -> bytes:
        """Bytes [start, stop) of `path` from the cache, an in-flight fetch, or a new fetch."""
        key: Key = (path, int(start), int(stop))
        with self._lock:
            data = self._entries.get(key)
            if data is not None:
                self._entries.move_to_end(key)
                prefetched = key in self._prefetched
                self._prefetched.discard(key)
            else:
                future = self._inflight.get(key)
                prefetched = key in self._prefetched
                self._prefetched.discard(key)
                owner = future is None
                if owner:
                    future = Future()
                    self._inflight[key] = future
        if data is not None:
            self.stats.add(hits=1, prefetch_hits=int(prefetched))
            return data
        assert future is not None
        if not owner:
            # Someone (usually the prefetch pool) is already fetching it: wait, do not fetch twice.
            data = future.result()
            self.stats.add(hits=1, prefetch_hits=int(prefetched))
            return data
        self.stats.add(misses=1)
        data = self._fill(key, future)
        self.stats.add(miss_bytes=len(data))
        self.stats.note("recent_miss_bytes", len(data))
        if len(data) > self.warn_miss_bytes:
            warnings.warn(
                f"one cache miss fetched {len(data)} bytes (bytes [{key[1]}, {key[2]}) of {path}), more "
                f"than warn_miss_bytes={self.warn_miss_bytes}. A span this large usually means a whole "
                "file instead of one episode: check the byte index, or raise warn_miss_bytes= of "
                "ByteCache if spans really are this big.",
                LargeFetchWarning,
                stacklevel=2,
            )
        return data

    def prefetch(self, keys: Iterable[tuple[str, int, int]]) -> None:
        """Start fetching `keys` in the background; a later `get` of one of them waits for it."""
        if self.prefetch_threads == 0:
            return
        for path, start, stop in keys:
            key: Key = (path, int(start), int(stop))
            with self._lock:
                if key in self._entries or key in self._inflight:
                    continue
                future: Future[bytes] = Future()
                self._inflight[key] = future
                self._prefetched.add(key)
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(
                        max_workers=self.prefetch_threads, thread_name_prefix=f"byte-cache-{os.getpid()}"
                    )
                pool = self._pool
            self.stats.add(prefetches=1)
            pool.submit(self._fill_quietly, key, future)

    def clear(self) -> None:
        """Drop every cached slice (in-flight fetches finish and are then kept)."""
        with self._lock:
            self._entries.clear()
            self._prefetched.clear()
            self._nbytes = 0

    def close(self) -> None:
        """Stop the prefetch threads; pending prefetches are cancelled."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ByteCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- internals ------------------------------------------------------------------------------
    def _fill(self, key: Key, future: Future[bytes]) -> bytes:
        began = time.perf_counter()
        try:
            data = self.reader.read(*key)
        except BaseException as exc:
            with self._lock:
                self._inflight.pop(key, None)
                self._prefetched.discard(key)
            future.set_exception(exc)
            raise
        self.stats.add(bytes_fetched=len(data), fetch_s=time.perf_counter() - began)
        with self._lock:
            self._inflight.pop(key, None)
            self._store(key, data)
        future.set_result(data)
        return data

    def _fill_quietly(self, key: Key, future: Future[bytes]) -> None:
        # The error travels through the future to whoever asks for the key; nobody else cares.
        with contextlib.suppress(Exception):
            self._fill(key, future)

    def _store(self, key: Key, data: bytes) -> None:
        """Insert under the lock and evict least recently used slices past the capacity."""
        if len(data) > self.capacity_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._nbytes -= len(old)
        self._entries[key] = data
        self._nbytes += len(data)
        while self._nbytes > self.capacity_bytes:
            evicted_key, evicted = self._entries.popitem(last=False)
            self._nbytes -= len(evicted)
            self.stats.add(evictions=1)
            if evicted_key in self._prefetched:
                self._prefetched.discard(evicted_key)
                self.stats.add(prefetch_unused_evicted=1)
