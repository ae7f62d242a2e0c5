"""ByteCache: LRU by bytes, prefetch without double fetches, stats, warnings, fork and DataLoader workers."""

from __future__ import annotations

import multiprocessing
import os
import threading
import warnings
from pathlib import Path

import fsspec
import numpy as np
import pytest
from torch.utils.data import DataLoader, Dataset

from data_fixtures.fault_server import FaultPlan, serve_directory
from lerobot_inspect.errors import FetchError, OptionError
from lerobot_inspect.io import ByteCache, LargeFetchWarning, RangeReader, join, open_root

MB = 1 << 20


@pytest.fixture(scope="module")
def blob_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("cache_blobs")
    (directory / "a.bin").write_bytes(np.random.default_rng(0).bytes(2 * MB))
    return directory


@pytest.fixture(scope="module")
def blob(blob_dir: Path) -> bytes:
    return (blob_dir / "a.bin").read_bytes()


@pytest.fixture()
def server(blob_dir: Path):
    with serve_directory(blob_dir) as running:
        yield running


@pytest.fixture()
def memory_file() -> tuple[fsspec.AbstractFileSystem, str, bytes]:
    fs = fsspec.filesystem("memory")
    data = bytes(range(256)) * 16
    fs.pipe("/byte_cache_test/f.bin", data)
    return fs, "/byte_cache_test/f.bin", data


def _gets(server, path: str = "/a.bin") -> int:
    return server.stats()["paths"].get(path, {}).get("get_requests", 0)


# ---- LRU and bounds ---------------------------------------------------------------------------------
def test_lru_evicts_least_recently_used_within_the_byte_bound(memory_file) -> None:
    fs, path, data = memory_file
    cache = ByteCache(RangeReader(fs), capacity_bytes=300, prefetch_threads=0)
    a, b, c, d = (path, 0, 100), (path, 100, 200), (path, 200, 300), (path, 300, 400)
    for key in (a, b, c):
        assert cache.get(*key) == data[key[1] : key[2]]
    assert cache.nbytes == 300 and len(cache) == 3
    cache.get(*a)  # a becomes most recent; b is now the oldest
    cache.get(*d)
    assert b not in cache and a in cache and c in cache and d in cache
    assert cache.nbytes == 300
    snap = cache.snapshot()
    assert (snap["hits"], snap["misses"], snap["evictions"]) == (1, 4, 1)
    assert snap["bytes_fetched"] == 400 and snap["bytes_per_miss"] == 100.0
    assert snap["recent_miss_bytes"] == [100, 100, 100, 100]
    assert cache.reader.snapshot()["requests"] == 4


def test_slice_larger_than_capacity_is_served_not_kept(memory_file) -> None:
    fs, path, data = memory_file
    cache = ByteCache(RangeReader(fs), capacity_bytes=300, prefetch_threads=0)
    cache.get(path, 0, 100)
    assert cache.get(path, 0, 1000) == data[:1000]
    assert (path, 0, 1000) not in cache and (path, 0, 100) in cache, "one huge slice must not flush the rest"
    cache.get(path, 0, 1000)
    assert cache.snapshot()["misses"] == 3


def test_options_are_validated(memory_file) -> None:
    fs, _, _ = memory_file
    with pytest.raises(OptionError, match="capacity_bytes"):
        ByteCache(RangeReader(fs), capacity_bytes=-1)
    with pytest.raises(OptionError, match="prefetch_threads"):
        ByteCache(RangeReader(fs), prefetch_threads=-2)


# ---- prefetch ---------------------------------------------------------------------------------------
def test_get_waits_for_an_inflight_prefetch_instead_of_fetching_twice(server, blob: bytes) -> None:
    server.set_faults(FaultPlan(kinds=("slow",), delay_s=0.3))  # every GET stalls, so prefetches are in flight
    fs, root = open_root(server.url)
    cache = ByteCache(RangeReader(fs), prefetch_threads=2)
    url = join(root, "a.bin")
    keys = [(url, 0, 1000), (url, 5000, 9000), (url, MB, MB + 50_000)]
    cache.prefetch(keys)
    cache.prefetch(keys)  # asking again while in flight is free
    for _, start, stop in keys:
        assert cache.get(url, start, stop) == blob[start:stop]
    assert _gets(server) == len(keys), "each key must be fetched once"
    assert server.stats()["bytes_sent"] == 1000 + 4000 + 50_000
    snap = cache.snapshot()
    assert (snap["prefetches"], snap["prefetch_hits"], snap["hits"], snap["misses"]) == (3, 3, 3, 0)
    cache.get(url, 0, 1000)
    assert cache.snapshot()["prefetch_hits"] == 3, "a second use of a prefetched slice is an ordinary hit"
    cache.close()


def test_concurrent_gets_of_one_key_fetch_once(server, blob: bytes) -> None:
    server.set_faults(FaultPlan(kinds=("slow",), delay_s=0.2))
    fs, root = open_root(server.url)
    cache = ByteCache(RangeReader(fs), prefetch_threads=0)
    url = join(root, "a.bin")
    results: list[bytes] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get(url, 100, 200_100))) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert results == [blob[100:200_100]] * 6
    assert _gets(server) == 1
    snap = cache.snapshot()
    assert (snap["misses"], snap["hits"]) == (1, 5)


def test_failed_prefetch_surfaces_at_get_and_does_not_poison(server, blob: bytes) -> None:
    server.set_faults(FaultPlan(kinds=("503",), limit=2))
    fs, root = open_root(server.url)
    cache = ByteCache(RangeReader(fs, max_attempts=2, backoff_s=0.001), prefetch_threads=1)
    url = join(root, "a.bin")
    cache.prefetch([(url, 0, 10)])
    with pytest.raises(FetchError, match=r"bytes \[0, 10\)"):
        cache.get(url, 0, 10)
    assert cache.get(url, 0, 10) == blob[:10], "after the fault clears, the key is fetched again"
    cache.close()


def test_unused_prefetch_evicted_is_counted(memory_file) -> None:
    fs, path, _ = memory_file
    cache = ByteCache(RangeReader(fs), capacity_bytes=200, prefetch_threads=1)
    cache.prefetch([(path, 0, 150)])
    cache.close()  # waits for the prefetch to land
    cache.get(path, 150, 300)
    snap = cache.snapshot()
    assert (snap["prefetch_unused_evicted"], snap["evictions"]) == (1, 1)


# ---- stats and warnings -----------------------------------------------------------------------------
def test_large_miss_warns_with_path_range_and_knob(memory_file) -> None:
    fs, path, _ = memory_file
    cache = ByteCache(RangeReader(fs), warn_miss_bytes=1000, prefetch_threads=0)
    with pytest.warns(LargeFetchWarning, match=r"2000 bytes \(bytes \[0, 2000\) of /byte_cache_test/f\.bin\)"):
        cache.get(path, 0, 2000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cache.get(path, 0, 2000)  # a hit costs nothing: no warning
        cache.get(path, 0, 1000)  # at the threshold: no warning
    with pytest.warns(LargeFetchWarning, match="warn_miss_bytes="):
        cache.get(path, 1, 1002)


def test_decode_seconds_and_reset(memory_file) -> None:
    fs, path, _ = memory_file
    cache = ByteCache(RangeReader(fs), prefetch_threads=0)
    cache.get(path, 0, 10)
    cache.record_decode_seconds(0.25)
    cache.record_decode_seconds(0.5)
    snap = cache.snapshot()
    assert snap["decode_s"] == pytest.approx(0.75) and snap["fetch_s"] > 0 and snap["pid"] == os.getpid()
    cache.reset()
    assert cache.snapshot()["misses"] == 0 and (path, 0, 10) in cache, "reset zeroes counters, keeps slices"


# ---- processes --------------------------------------------------------------------------------------
def _child_uses_cache(queue, cache: ByteCache, url: str) -> None:
    try:
        inherited = len(cache)
        data = cache.get(url, 10, 1000)
        cache.prefetch([(url, 2000, 3000)])  # the pool must be this process's, not the parent's dead one
        second = cache.get(url, 2000, 3000)
        queue.put((inherited, data, second, cache.snapshot(), cache.reader.snapshot()["requests"]))
    except BaseException as exc:
        queue.put(repr(exc))


def test_forked_child_gets_its_own_empty_cache_and_pool(server, blob: bytes) -> None:
    fs, root = open_root(server.url)
    url = join(root, "a.bin")
    cache = ByteCache(RangeReader(fs), prefetch_threads=2)
    cache.get(url, 10, 1000)
    cache.prefetch([(url, 0, 5), (url, 5, 9)])  # parent pool threads alive at fork time
    cache.get(url, 0, 5)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_uses_cache, args=(queue, cache, url))
    child.start()
    result = queue.get(timeout=30)
    child.join(timeout=10)
    assert isinstance(result, tuple), result
    inherited, data, second, snap, child_requests = result
    assert inherited == 0, "the child must not reuse the parent's slices and in-flight state"
    assert data == blob[10:1000] and second == blob[2000:3000]
    assert (snap["misses"], snap["prefetches"], snap["prefetch_hits"]) == (1, 1, 1)
    assert snap["pid"] != os.getpid() and child_requests == 2
    assert len(cache) >= 2 and cache.snapshot()["misses"] == 1, "the parent's cache is untouched"
    cache.close()


class RangeDataset(Dataset):
    """Each item is one byte range read through one ByteCache shared (by fork) with every worker."""

    def __init__(self, cache: ByteCache, url: str, spans: list[tuple[int, int]]) -> None:
        self.cache, self.url, self.spans = cache, url, spans

    def __len__(self) -> int:
        return len(self.spans)

    def __getitem__(self, index: int) -> dict[str, object]:
        start, stop = self.spans[index]
        data = self.cache.get(self.url, start, stop)
        snap = self.cache.snapshot()
        return {
            "index": index,
            "pid": os.getpid(),
            "checksum": int(np.frombuffer(data, dtype=np.uint8).sum(dtype=np.int64)),
            "length": len(data),
            "misses": snap["misses"],
            "reader_bytes": self.cache.reader.snapshot()["bytes"],
        }


def test_dataloader_workers_read_through_one_cache_with_per_process_stats(server, blob: bytes) -> None:
    fs, root = open_root(server.url)
    url = join(root, "a.bin")
    cache = ByteCache(RangeReader(fs), prefetch_threads=1)
    cache.get(url, 0, 64)  # the parent has used the session before the workers fork
    rng = np.random.default_rng(3)
    starts = rng.integers(0, 2 * MB - 20_000, size=24)
    spans = [(int(s), int(s) + int(n)) for s, n in zip(starts, rng.integers(1, 20_000, size=24), strict=True)]
    server.reset_stats()
    loader = DataLoader(RangeDataset(cache, url, spans), batch_size=None, num_workers=2,
                        multiprocessing_context="fork", shuffle=False)
    items = list(loader)
    assert sorted(int(item["index"]) for item in items) == list(range(len(spans)))
    for item in items:
        start, stop = spans[int(item["index"])]
        assert int(item["length"]) == stop - start
        assert int(item["checksum"]) == int(np.frombuffer(blob[start:stop], dtype=np.uint8).sum(dtype=np.int64))
    pids = {int(item["pid"]) for item in items}
    assert len(pids) == 2 and os.getpid() not in pids, "both workers must do work"
    for pid in pids:
        mine = [item for item in items if int(item["pid"]) == pid]
        # Distinct spans: every item is a miss in its own worker, counted from zero in that worker.
        assert max(int(item["misses"]) for item in mine) == len(mine)
        assert max(int(item["reader_bytes"]) for item in mine) == sum(int(item["length"]) for item in mine)
    assert server.stats()["bytes_sent"] == sum(stop - start for start, stop in spans)
    assert cache.snapshot()["misses"] == 1, "workers' traffic does not leak into the parent's counters"
    cache.close()
