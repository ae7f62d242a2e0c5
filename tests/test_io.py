"""I/O layer: roots, exact range reads over a real HTTP server, retries, sparse files for TorchCodec."""

from __future__ import annotations

import http.client
import multiprocessing
import os
import time
from pathlib import Path

import fsspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_fixtures.fault_server import FAULT_KINDS, FaultPlan, serve_directory
from lerobot_inspect.errors import FetchError, OptionError
from lerobot_inspect.io import RangeReader, SparseFile, for_this_process, join, open_root

MB = 1 << 20


@pytest.fixture(scope="module")
def blob_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("blobs")
    (directory / "videos").mkdir()
    (directory / "videos" / "big.bin").write_bytes(np.random.default_rng(0).bytes(10 * MB))
    (directory / "small.bin").write_bytes(bytes(range(256)) * 4)
    return directory


@pytest.fixture(scope="module")
def big_bytes(blob_dir: Path) -> bytes:
    return (blob_dir / "videos" / "big.bin").read_bytes()


@pytest.fixture()
def server(blob_dir: Path):
    with serve_directory(blob_dir) as running:
        yield running


def _fast_reader(fs: fsspec.AbstractFileSystem, **options: float) -> RangeReader:
    options.setdefault("backoff_s", 0.001)
    return RangeReader(fs, **options)  # type: ignore[arg-type]


# ---- roots ------------------------------------------------------------------------------------------
def test_open_root_local_path_becomes_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ds").mkdir()
    monkeypatch.chdir(tmp_path)
    fs, root = open_root("ds")
    assert fs.protocol[0] in ("file", "local")
    assert root == str(tmp_path / "ds")
    fs2, root2 = open_root(f"file://{tmp_path}/ds")
    assert root2 == root and type(fs2) is type(fs)


def test_open_root_memory_and_http() -> None:
    fs, root = open_root("memory://lerobot_inspect_test/ds")
    fs.pipe(join(root, "a/b.bin"), b"0123456789")
    assert RangeReader(fs).read(join(root, "a/b.bin"), 2, 5) == b"234"
    http_fs, http_root = open_root("http://127.0.0.1:9/ds/")
    assert http_root == "http://127.0.0.1:9/ds"
    assert http_fs.cache_type == "none", "HTTP roots must not read ahead with a block cache"


def test_open_root_refuses_bad_input() -> None:
    with pytest.raises(OptionError, match="root="):
        open_root("")
    with pytest.raises(OptionError, match="cannot open dataset root"):
        open_root("nosuchprotocol-xyz://bucket/ds")


def test_join() -> None:
    assert join("https://h/ds", "meta/info.json") == "https://h/ds/meta/info.json"
    assert join("/data/ds/", "/videos/x.mp4") == "/data/ds/videos/x.mp4"
    with pytest.raises(OptionError, match="leaves the dataset root"):
        join("/data/ds", "../secret")


# ---- local reads ------------------------------------------------------------------------------------
def test_local_read_is_exact_and_errors_are_fetch_errors(blob_dir: Path) -> None:
    fs, root = open_root(blob_dir)
    reader = RangeReader(fs)
    path = join(root, "small.bin")
    assert reader.size(path) == 1024
    assert reader.read(path, 250, 260) == bytes(range(250, 256)) + bytes(range(4))
    assert reader.read(path, 7, 7) == b""
    with pytest.raises(FetchError, match=r"bytes \[1000, 1100\).*small.bin.*1 attempt"):
        reader.read(path, 1000, 1100)  # beyond the end: permanent, no retries
    with pytest.raises(FetchError, match=r"missing\.bin"):
        reader.read(join(root, "missing.bin"), 0, 10)
    with pytest.raises(OptionError, match="0 <= start <= stop"):
        reader.read(path, 10, 5)
    snap = reader.snapshot()
    assert snap["failures"] == 2 and snap["retries"] == 0 and snap["bytes"] == 10


def test_reader_options_are_validated() -> None:
    fs = fsspec.filesystem("memory")
    with pytest.raises(OptionError, match="max_attempts"):
        RangeReader(fs, max_attempts=0)
    with pytest.raises(OptionError, match="timeout_s"):
        RangeReader(fs, timeout_s=0)


# ---- HTTP: the test server itself -------------------------------------------------------------------
def _raw(server_port: int, method: str, path: str, headers: dict[str, str] | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", server_port, timeout=5)
    connection.request(method, path, headers=headers or {})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response, body


def test_server_speaks_range_protocol(server, blob_dir: Path) -> None:
    small = (blob_dir / "small.bin").read_bytes()
    head, body = _raw(server.port, "HEAD", "/small.bin")
    assert head.status == 200 and body == b""
    assert head.getheader("Content-Length") == "1024" and head.getheader("Accept-Ranges") == "bytes"
    part, body = _raw(server.port, "GET", "/small.bin", {"Range": "bytes=10-19"})
    assert part.status == 206 and body == small[10:20]
    assert part.getheader("Content-Range") == "bytes 10-19/1024"
    suffix, body = _raw(server.port, "GET", "/small.bin", {"Range": "bytes=-4"})
    assert suffix.status == 206 and body == small[-4:]
    beyond, _ = _raw(server.port, "GET", "/small.bin", {"Range": "bytes=5000-6000"})
    assert beyond.status == 416 and beyond.getheader("Content-Range") == "bytes */1024"
    missing, _ = _raw(server.port, "GET", "/../etc/passwd")
    assert missing.status == 404
    stats = server.stats()
    assert stats["bytes_sent"] == 10 + 4
    assert stats["paths"]["/small.bin"]["head_requests"] == 1


def test_server_binds_loopback_only(server) -> None:
    assert server._httpd.server_address[0] == "127.0.0.1"


def test_fault_plan_is_a_pure_schedule() -> None:
    plan = FaultPlan(rates={"500": 0.2, "reset": 0.1}, seed=3)
    first = [plan.fault_for(n) for n in range(1, 2001)]
    assert first == [plan.fault_for(n) for n in range(1, 2001)]
    assert first != [FaultPlan(rates={"500": 0.2, "reset": 0.1}, seed=4).fault_for(n) for n in range(1, 2001)]
    assert 0.15 < first.count("500") / 2000 < 0.25 and 0.06 < first.count("reset") / 2000 < 0.14
    every = FaultPlan(kinds=("500", "short"), every=3)
    assert [every.fault_for(n) for n in range(1, 10)] == [None, None, "500", None, None, "short", None, None, "500"]
    with pytest.raises(OptionError, match="fault kind"):
        FaultPlan(kinds=("teapot",))  # type: ignore[arg-type]


# ---- HTTP: exact bytes and accounting at the server -------------------------------------------------
def test_http_range_reads_send_only_the_asked_bytes(server, big_bytes: bytes) -> None:
    fs, root = open_root(server.url)
    reader = RangeReader(fs)
    path = join(root, "videos/big.bin")
    spans = [(0, 4096), (3 * MB + 17, 3 * MB + 200_017), (10 * MB - 1000, 10 * MB)]
    assert reader.size(path) == len(big_bytes)
    for start, stop in spans:
        assert reader.read(path, start, stop) == big_bytes[start:stop]
    asked = sum(stop - start for start, stop in spans)
    stats = server.stats()
    assert stats["bytes_sent"] == asked, "the server sent bytes nobody asked for"
    per_path = stats["paths"]["/videos/big.bin"]
    assert (per_path["get_requests"], per_path["head_requests"]) == (len(spans), 1)
    snap = reader.snapshot()
    assert (snap["requests"], snap["bytes"], snap["size_requests"], snap["retries"]) == (3, asked, 1, 0)
    assert snap["paths"][path]["bytes"] == asked
    reader.reset()
    assert reader.snapshot()["requests"] == 0


def test_http_open_reads_exact_ranges_without_block_cache(server, big_bytes: bytes) -> None:
    fs, root = open_root(server.url)
    with fs.open(join(root, "videos/big.bin"), "rb") as handle:
        handle.seek(5 * MB)
        assert handle.read(1000) == big_bytes[5 * MB : 5 * MB + 1000]
    assert server.stats()["bytes_sent"] == 1000


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_each_fault_kind_is_retried_and_bytes_are_right(server, big_bytes: bytes, kind: str) -> None:
    # Only the stall needs a short timeout; elsewhere a loaded CI box must not cause extra retries.
    server.set_faults(FaultPlan(kinds=(kind,), limit=2, delay_s=1.5))
    fs, root = open_root(server.url)
    reader = _fast_reader(fs, timeout_s=0.75 if kind == "slow" else 30.0)
    start, stop = 2 * MB + 5, 2 * MB + 300_005
    assert reader.read(join(root, "videos/big.bin"), start, stop) == big_bytes[start:stop]
    assert server.stats()["faults"] == {kind: 2}
    snap = reader.snapshot()
    assert (snap["retries"], snap["requests"], snap["failures"]) == (2, 3, 0)


def test_retry_budget_then_fetch_error_names_url_range_and_cause(server) -> None:
    server.set_faults(FaultPlan(kinds=("503",)))
    fs, root = open_root(server.url)
    reader = _fast_reader(fs, max_attempts=3)
    url = join(root, "videos/big.bin")
    with pytest.raises(FetchError) as caught:
        reader.read(url, 100, 200)
    message = str(caught.value)
    for expected in (url, "bytes [100, 200)", "3 attempt", "503", "206 Partial Content", "max_attempts="):
        assert expected in message
    assert server.stats()["paths"]["/videos/big.bin"]["get_requests"] == 3
    assert reader.snapshot()["failures"] == 1


def test_backoff_grows_and_is_capped(server) -> None:
    server.set_faults(FaultPlan(kinds=("500",)))
    fs, root = open_root(server.url)
    reader = RangeReader(fs, max_attempts=4, backoff_s=0.05, max_backoff_s=0.1)
    began = time.perf_counter()
    with pytest.raises(FetchError):
        reader.read(join(root, "small.bin"), 0, 10)
    # sleeps 0.05 + 0.1 + 0.1 (capped), none after the last attempt; the upper bound only catches an
    # uncapped backoff (0.05 + 0.1 + 0.2 + ... grows past it), with room for a loaded machine
    assert 0.25 <= time.perf_counter() - began < 5.0


def test_http_missing_file_fails_at_once(server) -> None:
    fs, root = open_root(server.url)
    reader = _fast_reader(fs)
    with pytest.raises(FetchError, match=r"404.*cannot help|cannot help.*404"):
        reader.read(join(root, "nope.mp4"), 0, 10)
    assert reader.snapshot()["requests"] == 1


def test_random_fault_schedule_still_gives_correct_bytes(server, big_bytes: bytes) -> None:
    server.set_faults(FaultPlan(rates={"500": 0.15, "reset": 0.1, "short": 0.1, "wrong_range": 0.05}, seed=11))
    fs, root = open_root(server.url)
    reader = _fast_reader(fs, max_attempts=8)
    rng = np.random.default_rng(5)
    for _ in range(40):
        start = int(rng.integers(0, 10 * MB - 50_000))
        stop = start + int(rng.integers(1, 50_000))
        assert reader.read(join(root, "videos/big.bin"), start, stop) == big_bytes[start:stop]
    assert sum(server.stats()["faults"].values()) == reader.snapshot()["retries"] > 0


# ---- fork safety ------------------------------------------------------------------------------------
def _child_reads(queue, reader: RangeReader, fs, url: str) -> None:
    try:
        try:
            fs.cat_file(url, start=0, end=4)
            raw = "worked"
        except RuntimeError as exc:
            raw = str(exc)
        data = reader.read(url, 0, 100)
        fresh = for_this_process(fs)
        queue.put((raw, data, reader.snapshot()["requests"], fresh is not fs, fresh.cat_file(url, start=0, end=4)))
    except BaseException as exc:
        queue.put(repr(exc))


def test_reader_works_in_a_forked_child_with_its_own_stats(server, blob_dir: Path) -> None:
    fs, root = open_root(server.url)
    url = join(root, "small.bin")
    reader = RangeReader(fs)
    reader.read(url, 0, 10)  # parent's loop and session are live when the child is forked
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_reads, args=(queue, reader, fs, url))
    child.start()
    result = queue.get(timeout=30)
    child.join(timeout=10)
    small = (blob_dir / "small.bin").read_bytes()
    assert isinstance(result, tuple), result
    raw, data, child_requests, rebuilt, fresh_bytes = result
    assert "fork-safe" in raw, "fsspec refuses the parent's HTTP filesystem in a child"
    assert data == small[:100] and fresh_bytes == small[:4] and rebuilt
    assert child_requests == 1, "the child's counters must start from zero"
    assert reader.snapshot()["requests"] == 1


# ---- SparseFile -------------------------------------------------------------------------------------
def test_sparse_file_reads_held_spans_and_refuses_gaps() -> None:
    original = bytes(range(100))
    sparse = SparseFile(100, {0: original[:10], 50: original[50:60], 58: original[58:70]}, name="v.mp4")
    assert sparse.spans == [(0, 10), (50, 70)]
    assert sparse.read(4) == original[:4] and sparse.tell() == 4
    assert sparse.read(100) == original[4:10], "a read stops at the edge of a held span"
    assert sparse.seek(-45, os.SEEK_END) == 55 and sparse.read(5) == original[55:60]
    buffer = bytearray(5)
    assert sparse.readinto(buffer) == 5 and bytes(buffer) == original[60:65]
    assert sparse.seek(1000) == 1000 and sparse.read(10) == b""
    sparse.seek(20)
    with pytest.raises(FetchError, match=r"byte 20 of v.mp4 is outside the fetched spans.*index build"):
        sparse.read(4)
    with pytest.raises(OptionError, match=r"outside v\.mp4"):
        SparseFile(10, [(5, b"123456")], name="v.mp4")
    with SparseFile(3, [(0, b"abc")], name="x") as handle:
        assert handle.read() == b"abc" and handle.seekable() and handle.readable()
    with pytest.raises(ValueError, match="closed"):
        handle.read(1)


def test_sparse_file_on_miss_fetches_the_gap_once() -> None:
    original = bytes(range(200))
    calls: list[tuple[int, int]] = []

    def fetch(start: int, stop: int) -> bytes:
        calls.append((start, stop))
        return original[start:stop]

    sparse = SparseFile(200, {0: original[:10], 100: original[100:200]}, name="v.mp4", on_miss=fetch)
    sparse.seek(20)
    # Only the gap [20, 100) is fetched; it joins the held span after it, so the read runs on.
    assert sparse.read(500) == original[20:200]
    sparse.seek(30)
    assert sparse.read(10) == original[30:40]
    assert calls == [(20, 100)] and sparse.misses == [(20, 100)]
    assert sparse.spans == [(0, 10), (20, 200)]


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(1, 400),
    cuts=st.lists(st.tuples(st.integers(0, 399), st.integers(0, 60)), max_size=6),
    probes=st.lists(st.tuples(st.integers(0, 420), st.integers(0, 80)), min_size=1, max_size=10),
)
def test_sparse_file_matches_the_original_inside_and_refuses_outside(size, cuts, probes) -> None:
    original = np.random.default_rng(size).bytes(size)
    segments = [(a, original[a : min(size, a + n)]) for a, n in cuts if a < size]
    held = np.zeros(size, dtype=bool)
    for a, data in segments:
        held[a : a + len(data)] = True
    sparse = SparseFile(size, segments, name="f")
    assert sparse.held_bytes == int(held.sum())
    for position, length in probes:
        sparse.seek(position)
        if position >= size or length == 0:
            assert sparse.read(length) == b""
        elif held[position]:
            out = sparse.read(length)
            assert 1 <= len(out) <= length and out == original[position : position + len(out)]
        else:
            with pytest.raises(FetchError, match=f"byte {position} of f"):
                sparse.read(length)


def _make_mp4(path: Path, *, n_frames: int = 40, gop: int = 10) -> None:
    import av

    with av.open(str(path), "w", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"g": str(gop), "bf": "0", "crf": "20"}
        rng = np.random.default_rng(1)
        for _ in range(n_frames):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_torchcodec_decodes_through_a_sparse_file(tmp_path: Path) -> None:
    from torchcodec.decoders import VideoDecoder

    video = tmp_path / "clip.mp4"
    _make_mp4(video)
    data = video.read_bytes()
    wanted = [0, 7, 23, 39]
    expected = VideoDecoder(str(video), seek_mode="approximate").get_frames_at(wanted).data
    sparse = SparseFile(len(data), {0: data}, name="clip.mp4")
    got = VideoDecoder(sparse, seek_mode="approximate").get_frames_at(wanted).data
    assert got.shape == expected.shape and bool((got == expected).all())

    # Only the first 4 KB held: our error comes out of the decoder, not a crash or garbage frames.
    truncated = SparseFile(len(data), {0: data[:4096]}, name="clip.mp4")
    with pytest.raises(FetchError, match=r"of clip.mp4 is outside the fetched spans"):
        VideoDecoder(truncated, seek_mode="approximate").get_frames_at(wanted)


def test_torchcodec_fetches_missing_spans_over_http(tmp_path: Path) -> None:
    from torchcodec.decoders import VideoDecoder

    video = tmp_path / "clip.mp4"
    _make_mp4(video, n_frames=60)
    data = video.read_bytes()
    with serve_directory(tmp_path) as running:
        fs, root = open_root(running.url)
        reader = RangeReader(fs)
        url = join(root, "clip.mp4")
        sparse = SparseFile(reader.size(url), {0: reader.read(url, 0, 2048)}, name=url,
                            on_miss=lambda start, stop: reader.read(url, start, stop))
        frame = VideoDecoder(sparse, seek_mode="approximate").get_frames_at([45]).data
        expected = VideoDecoder(str(video), seek_mode="approximate").get_frames_at([45]).data
        assert bool((frame == expected).all())
        assert sparse.misses, "the decoder needed bytes beyond the first 2 KB"
        assert running.stats()["bytes_sent"] == 2048 + sum(b - a for a, b in sparse.misses)
        assert running.stats()["bytes_sent"] <= len(data)


# ---- optional: s3:// through s3fs against a local moto server --------------------------------------
def test_s3_range_read_through_moto(tmp_path: Path) -> None:
    s3fs = pytest.importorskip("s3fs", reason="s3fs not installed: pip install s3fs to test s3:// roots")
    moto_server = pytest.importorskip(
        "moto.server", reason="moto[server] not installed: pip install 'moto[server]' to test s3:// roots"
    )
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        options = {"key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": f"http://{host}:{port}",
                                                                             "region_name": "eu-west-1"}}
        fs = s3fs.S3FileSystem(**options, skip_instance_cache=True)
        fs.mkdir("lerobot-test-bucket")
        payload = np.random.default_rng(2).bytes(3 * MB)
        fs.pipe("lerobot-test-bucket/ds/videos/a.mp4", payload)
        root_fs, root = open_root(
            "s3://lerobot-test-bucket/ds", storage_options={**options, "skip_instance_cache": True}
        )
        reader = RangeReader(root_fs)
        url = join(root, "videos/a.mp4")
        assert reader.size(url) == len(payload)
        assert reader.read(url, MB + 3, MB + 70_003) == payload[MB + 3 : MB + 70_003]
        assert reader.snapshot()["bytes"] == 70_000
        with pytest.raises(FetchError, match=r"missing\.mp4"):
            reader.read(join(root, "missing.mp4"), 0, 10)
    finally:
        server.stop()


def test_small_range_reads_are_not_delayed_by_nagle(server) -> None:
    """Each small read used to wait ~200 ms for a delayed ACK: the benchmark would measure that."""
    fs, root = open_root(server.url)
    reader = RangeReader(fs)
    url = join(root, "small.bin")
    reader.read(url, 0, 1)
    began = time.perf_counter()
    for offset in range(20):
        reader.read(url, offset, offset + 100)
    assert time.perf_counter() - began < 2.0
