"""Hostile inputs: a dataset is input from strangers. Each class below is made from real files (a copy
of the tiny fixture, a real loopback HTTP server) and must end in a clear `LeRobotInspectError`
naming the file and the field, never in a path outside the root, a traceback, a crash, or memory
out of proportion to the bytes really present.

Memory cases run in a fresh interpreter and read its peak RSS (`resource.getrusage`), because the
high-water mark of this test process says nothing about one call.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_fixtures import corrupt
from lerobot_inspect.errors import DatasetFormatError, Mp4ParseError, OptionError
from lerobot_inspect.format import DatasetMeta, validate
from lerobot_inspect.format.meta import PathTemplate, _group_by_path
from lerobot_inspect.video.mp4 import parse_mp4

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "data_fixtures" / "tiny"
TINY_META = DatasetMeta.open(TINY)
FRONT = TINY_META.video_keys[0]
MP4 = TINY_META.video_file(0, FRONT)
EPISODES_FILE = TINY_META.episode_files[0]


@pytest.fixture()
def copy(tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    shutil.copytree(TINY, root)
    return root


def edit_info(root: Path, edit: Callable[[dict], None]) -> None:
    path = root / "meta/info.json"
    info = json.loads(path.read_text())
    edit(info)
    path.write_text(json.dumps(info))


# ---------------------------------------------------------------------- a loopback server
class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # the test reads `server.log`, not stderr
        pass

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, *, body: bool) -> None:
        server = self.server
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        with server.lock:
            server.log.append(self.path)
        file = (server.directory / path.lstrip("/")).resolve()
        data = file.read_bytes() if file.is_file() and server.directory in file.parents else None
        if data is None and server.missing is not None:
            data = server.missing(path)
        if data is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start, stop, status = 0, len(data), 200
        ranged = self.headers.get("Range", "")
        if ranged.startswith("bytes=") and server.ranges:
            first, _, last = ranged[6:].partition("-")
            start, stop, status = int(first), min(len(data), int(last) + 1 if last else len(data)), 206
        self.send_response(status)
        self.send_header("Content-Length", str(stop - start))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{len(data)}")
        self.end_headers()
        if body:
            self.wfile.write(data[start:stop])


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # a client hanging up is not news here
        pass


@contextmanager
def serve(directory: Path, *, missing: Callable[[str], bytes | None] | None = None,
          ranges: bool = True) -> Iterator[ThreadingHTTPServer]:
    """Serve `directory` on 127.0.0.1 with Range support; `missing(path)` answers paths with no file
    (None: 404). `server.log` lists every request path, `server.url` is the base URL."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.directory, server.missing, server.ranges = directory.resolve(), missing, ranges
    server.log, server.lock = [], threading.Lock()
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def peak_rss_mb(code: str) -> tuple[float, str]:
    """Run `code` in a fresh interpreter; (growth of its peak RSS in MB over the imports, its stdout)."""
    script = (
        "import resource, sys\n"
        "from lerobot_inspect.format.meta import DatasetMeta\n"
        "from lerobot_inspect.video.mp4 import read_mp4_header\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        f"{code}\n"
        "print('PEAK', (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    return float(lines[-1].split()[1]), "\n".join(lines[:-1])


CATCH = "\ntry:\n    {call}\n    print('LOADED')\nexcept Exception as exc:\n    print(type(exc).__name__, exc)"


# ---------------------------------------------------------------------- 1. paths stay inside the root
@pytest.mark.parametrize("template", [
    "../outside/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
    "data/../../outside/file-{file_index:03d}.parquet",
    "data\\..\\..\\outside\\file-{file_index:03d}.parquet",
    "%2e%2e/outside/file-{file_index:03d}.parquet",
    "/etc/file-{file_index:03d}.parquet",
    "file:///etc/file-{file_index:03d}.parquet",
])
def test_data_path_leaving_the_root_is_refused_at_open(copy, template):
    outside = copy.parent / "outside"
    shutil.copytree(copy / "data/chunk-000", outside)  # what the template would have loaded
    edit_info(copy, lambda info: info.update(data_path=template))
    with pytest.raises(DatasetFormatError, match=r"meta/info\.json: data_path .*(leaves the dataset root|absolute)"):
        DatasetMeta.open(copy)
    assert [f.code for f in validate(copy)] == ["unreadable-meta"]


def test_camera_named_to_leave_the_root_is_refused(copy):
    def rename(info: dict) -> None:
        info["features"] = {("../../x" if k == FRONT else k): v for k, v in info["features"].items()}

    edit_info(copy, rename)
    with pytest.raises(DatasetFormatError, match=r"video feature '\.\./\.\./x' would put its files outside"):
        DatasetMeta.open(copy)


def test_video_path_leaving_the_root_is_refused(copy):
    edit_info(copy, lambda info: info.update(video_path="videos/../../{video_key}/file-{file_index:03d}.mp4"))
    with pytest.raises(DatasetFormatError, match=r"video_path .*leaves the dataset root"):
        DatasetMeta.open(copy)


def test_every_metadata_path_goes_through_the_guarded_join(copy):
    """A path from anywhere in the metadata (the byte index's file column, say) is refused the same way."""
    meta = DatasetMeta.open(copy)
    assert meta.path("videos/a.mp4") == str(copy / "videos/a.mp4")
    for rel in ("../x.mp4", "videos/../../x.mp4", "videos/%2E%2E/%2e%2e/x.mp4", "videos/\x00.mp4",
                "s3://bucket/x.mp4"):
        with pytest.raises(DatasetFormatError, match="leaves the dataset root"):
            meta.path(rel)
        with pytest.raises(DatasetFormatError, match="leaves the dataset root"):
            meta.url(rel)


def test_over_http_a_template_cannot_fetch_outside_the_dataset_url(tmp_path):
    served = tmp_path / "site"
    shutil.copytree(TINY, served / "ds")
    shutil.copytree(TINY / "data", served / "secret")
    for template in ("../secret/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
                     "%2e%2e/secret/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"):
        edit_info(served / "ds", lambda info, t=template: info.update(data_path=t))
        with serve(served) as server:
            with pytest.raises(DatasetFormatError, match="data_path"):
                DatasetMeta.open(f"{server.url}/ds")
            assert server.log and all(p.startswith("/ds/") for p in server.log), server.log


@pytest.mark.parametrize("template,why", [
    ("data/{chunk_index.__class__}/file.parquet", "not one of its documented fields"),
    ("data/{chunk_index[0]}/file.parquet", "not one of its documented fields"),
    ("data/{chunk_index:>200000000}/file.parquet", "use an integer format"),
    ("data/{chunk_index:021d}/file.parquet", "width at most 20"),
    ("data/{chunk_index:{file_index}}/file.parquet", "use an integer format"),
    ("data/{nope}/file.parquet", r"\{nope\}, which is not one of its documented fields"),
    ("data/{video_key}/file.parquet", "not one of its documented fields"),
    ("data/{chunk_index!r}/file.parquet", "conversions are not allowed"),
    ("data/{}/file.parquet", "not one of its documented fields"),
    ("data/{chunk_index/file.parquet", "not a valid template"),
    ("data/chunk_index}/file.parquet", "not a valid template"),
    (7, "not a non-empty string"),
])
def test_templates_accept_only_their_documented_fields(copy, template, why):
    edit_info(copy, lambda info: info.update(data_path=template))
    with pytest.raises(DatasetFormatError, match=rf"meta/info\.json: data_path .*{why}"):
        DatasetMeta.open(copy)


def test_a_huge_template_width_does_not_abort_the_process(copy):
    """`str.format` with a width of 200,000,000 asks for that many bytes per path; in a subprocess so
    that a regression kills the child, not the test run."""
    edit_info(copy, lambda info: info.update(data_path="data/{chunk_index:>200000000}/f.parquet"))
    peak, out = peak_rss_mb(CATCH.format(call=f"DatasetMeta.open({str(copy)!r})"))
    assert out.startswith("DatasetFormatError") and "data_path" in out, out
    assert peak < 64, f"{peak:.0f} MB"


def test_compiled_templates_group_ten_thousand_episodes_right():
    """The template is parsed once and then only formats integers (its speed is the bench's business:
    `_group_by_path` over 10,000 episodes measured ~10 ms here)."""
    template = PathTemplate.compile("data_path", "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
                                    ("chunk_index", "file_index"), shown="info.json")
    assert template(chunk_index=1, file_index=22) == "data/chunk-001/file-022.parquet"
    n = 10_000
    chunks = np.arange(n) // 1000
    files = np.arange(n) % 1000
    groups = _group_by_path(template, chunks, files)
    assert len(groups) == n and groups["data/chunk-009/file-999.parquet"].tolist() == [n - 1]
    assert all(template(chunk_index=k // 1000, file_index=k % 1000) in groups for k in range(0, n, 97))


def test_data_and_video_files_resolve_as_before(tiny_root):
    meta = DatasetMeta.open(tiny_root)
    info = json.loads((tiny_root / "meta/info.json").read_text())
    for episode in range(meta.num_episodes):
        chunk = int(meta.episodes.column("data/chunk_index")[episode].as_py())
        file = int(meta.episodes.column("data/file_index")[episode].as_py())
        assert meta.data_file(episode) == info["data_path"].format(chunk_index=chunk, file_index=file)
        for camera in meta.video_keys:
            chunk = int(meta.episodes.column(f"videos/{camera}/chunk_index")[episode].as_py())
            file = int(meta.episodes.column(f"videos/{camera}/file_index")[episode].as_py())
            assert meta.video_file(episode, camera) == info["video_path"].format(
                video_key=camera, chunk_index=chunk, file_index=file)


# ---------------------------------------------------------------------- 2. memory and time bounded by the bytes
def test_mp4_claiming_a_sample_per_byte_is_refused_without_allocating(copy):
    """A 16 MiB file whose (mutually consistent) tables claim 16.8 M one-byte samples: the run-length
    tables used to expand to ~57 bytes per claimed sample (+899 MB)."""
    claimed = corrupt.inflate_sample_count(copy, MP4)
    assert claimed > 16_000_000
    with pytest.raises(Mp4ParseError, match=rf"stsz claims {claimed} samples"):
        parse_mp4((copy / MP4).read_bytes(), name=MP4)
    peak, out = peak_rss_mb(
        "import os\n"
        f"path = {str(copy / MP4)!r}\n"
        "handle = open(path, 'rb')\n"
        "def read(a, b):\n    handle.seek(a)\n    return handle.read(b - a)\n"
        + CATCH.format(call="read_mp4_header(read, os.path.getsize(path), name=path, probe_bytes=64 << 10)"))
    assert out.startswith("Mp4ParseError"), out
    assert peak < 32, f"{peak:.0f} MB for a refused header"
    assert [f.code for f in validate(copy)] == ["unreadable-video-header"]


def test_entry_counts_beyond_their_box_are_refused(copy):
    """An stsz whose entry count runs past its payload is refused with the box and the numbers."""
    data = bytearray((copy / MP4).read_bytes())
    start, _ = corrupt._find_box(bytes(data), "moov/trak/mdia/minf/stbl/stsz")
    data[start + 16 : start + 20] = (1 << 30).to_bytes(4, "big")
    with pytest.raises(Mp4ParseError, match=r"box 'stsz' claims 1073741824 entries of 4 bytes but its payload holds"):
        parse_mp4(bytes(data), name=MP4)


@pytest.mark.parametrize("count,refused", [(3000, True), (1000, False)])
def test_thousands_of_empty_top_level_boxes(copy, count, refused):
    """3,000 top-level `free` boxes of 256 KiB (a sparse file): the walk used to keep every probe read
    it made for a box header (+752 MB). Over 1024 boxes is refused; below, memory stays in budget."""
    corrupt.append_empty_boxes(copy, MP4, count=count)
    path = copy / MP4
    peak, out = peak_rss_mb(
        "import os\n"
        f"path = {str(path)!r}\n"
        "handle = open(path, 'rb')\n"
        "def read(a, b):\n    handle.seek(a)\n    return handle.read(b - a)\n"
        + CATCH.format(call="read_mp4_header(read, os.path.getsize(path), name=path, probe_bytes=256 << 10)"))
    if refused:
        assert out.startswith("Mp4ParseError") and "more than 1024 top-level boxes" in out, out
    else:
        assert out == "LOADED", out
    assert peak < 48, f"{peak:.0f} MB to walk {count} boxes"


def test_oversized_info_json_is_refused_before_it_is_read(copy):
    corrupt.huge_json(copy / "meta/info.json", size=64 << 20)
    peak, out = peak_rss_mb(CATCH.format(call=f"DatasetMeta.open({str(copy)!r})"))
    assert out.startswith("DatasetFormatError") and "info.json: larger than 16 MiB" in out, out
    assert peak < 40, f"{peak:.0f} MB for a refused info.json"


@pytest.mark.parametrize("edit,message", [
    (lambda i: i.update(fps="thirty"), r"fps must be a positive integer, got 'thirty'"),
    (lambda i: i.update(fps=True), r"fps must be a positive integer"),
    (lambda i: i.update(fps=30.5), r"fps must be a positive integer"),
    (lambda i: i.update(total_frames="many"), r"total_frames must be an integer >= 0, got 'many'"),
    (lambda i: i.update(total_episodes=-1), r"total_episodes must be an integer >= 0"),
    (lambda i: i.update(chunks_size=0), r"chunks_size must be an integer >= 1"),
    (lambda i: i.update(total_tasks=[1]), r"total_tasks must be an integer"),
    (lambda i: i.update(codebase_version=3), r"codebase_version must be a string"),
    (lambda i: i.update(video_path=5), r"video_path must be a string or null"),
    (lambda i: i.update(robot_type={"a": 1}), r"robot_type must be a string or null"),
    (lambda i: i["features"]["action"].update(shape="abc"), r"feature 'action': shape must be a list"),
    (lambda i: i["features"]["action"].update(shape=[6.0]), r"feature 'action': shape must be a list"),
    (lambda i: i["features"]["action"].update(shape=[1] * 9), r"feature 'action': shape must be a list"),
    (lambda i: i["features"]["action"].update(dtype=5), r"feature 'action': dtype must be a string"),
    (lambda i: i["features"]["action"].update(dtype=["float32"]), r"feature 'action': dtype must be a string"),
    (lambda i: i["features"]["action"].update(names="joints"), r"feature 'action': names must be a list"),
    (lambda i: i["features"]["action"].update(info=[1]), r"feature 'action': info must be an object"),
    (lambda i: i.update(features=[]), r"features must be a non-empty object"),
    (lambda i: i.update(extra=_nested(40)), r"nested more than 32 levels"),
])
def test_info_json_fields_are_type_checked(copy, edit, message):
    edit_info(copy, edit)
    with pytest.raises(DatasetFormatError, match=rf"meta/info\.json: .*{message}"):
        DatasetMeta.open(copy)
    findings = validate(copy)
    assert [f.code for f in findings] == ["unreadable-meta"] and findings[0].file.endswith("meta/info.json")


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def test_info_json_nested_past_the_json_parser_is_a_format_error(copy):
    (copy / "meta/info.json").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(DatasetFormatError, match=r"info\.json: JSON nested too deeply"):
        DatasetMeta.open(copy)


def test_tasks_table_with_100k_empty_row_groups(copy):
    """13 MB of footer describing 100,000 empty row groups cost +193 MB to open (more with more columns)."""
    path = copy / "meta/tasks.parquet"
    corrupt.parquet_with_empty_row_groups(path, pq.read_table(path), count=100_000)
    peak, out = peak_rss_mb(CATCH.format(call=f"DatasetMeta.open({str(copy)!r})"))
    assert out.startswith("DatasetFormatError") and "tasks.parquet: the footer lists more than" in out, out
    assert peak < 40, f"{peak:.0f} MB"


def test_episodes_table_with_empty_row_groups(copy):
    path = copy / EPISODES_FILE
    corrupt.parquet_with_empty_row_groups(path, pq.read_table(path), count=500)
    with pytest.raises(DatasetFormatError, match=r"501 row groups for 5 rows"):
        DatasetMeta.open(copy)


def test_meta_table_compression_bomb(copy):
    """A tasks table with an undeclared column that inflates from KBs to 300 MB is refused from its
    footer, before a byte of it is decompressed."""
    path = copy / "meta/tasks.parquet"
    tasks = pq.read_table(path)
    block = "x" * (1 << 20)
    schema = tasks.schema.append(pa.field("padding", pa.string()))
    with pq.ParquetWriter(path, schema, compression="zstd", use_dictionary=False) as writer:
        for row in range(300):
            k = row % tasks.num_rows
            writer.write_table(pa.Table.from_pylist(
                [{**tasks.slice(k, 1).to_pylist()[0], "padding": block}], schema=schema))
    assert path.stat().st_size < 2 << 20
    peak, out = peak_rss_mb(CATCH.format(call=f"DatasetMeta.open({str(copy)!r})"))
    assert out.startswith("DatasetFormatError") and "compression bomb" in out, out
    assert peak < 40, f"{peak:.0f} MB"


def test_server_answering_200_for_missing_files_is_probed_a_bounded_number_of_times(tmp_path):
    """Plain HTTP cannot list meta/episodes/, so its files are found by probing chunk/file names. A
    server that answers every missing path with an HTML page made that walk endless (254,340 requests
    in 90 s); now a file counts only with Parquet's magic bytes."""
    shutil.copytree(TINY, tmp_path / "ds")
    page = b"<!doctype html><html><body>Not here, but 200 anyway</body></html>"
    with serve(tmp_path, missing=lambda path: page) as server:
        started = time.perf_counter()
        meta = DatasetMeta.open(f"{server.url}/ds")
        assert time.perf_counter() - started < 30
        probes = [p for p in server.log if "/meta/episodes/" in p]
    assert meta.num_episodes == TINY_META.num_episodes
    assert meta.episodes.equals(TINY_META.episodes)
    names = sorted(set(probes))
    assert names == ["/ds/meta/episodes/chunk-000/file-000.parquet", "/ds/meta/episodes/chunk-000/file-001.parquet"]
    assert len(probes) <= 30, probes  # the probes plus reading file-000's footer and rows


def test_server_answering_parquet_for_every_path_is_bounded_by_total_episodes(tmp_path):
    shutil.copytree(TINY, tmp_path / "ds")
    episodes = (TINY / EPISODES_FILE).read_bytes()

    def missing(path: str) -> bytes | None:
        return episodes if "/meta/episodes/" in path else None

    with serve(tmp_path, missing=missing) as server:
        with pytest.raises(DatasetFormatError, match=r"found more than 5 episode files by probing.*total_episodes=5"):
            DatasetMeta.open(f"{server.url}/ds")
        gets = [p for p in server.log if "/meta/episodes/" in p]
    assert len(gets) <= 3 * (TINY_META.total_episodes + 1), len(gets)


def test_an_http_root_opens_as_before(tmp_path):
    shutil.copytree(TINY, tmp_path / "ds")
    with serve(tmp_path) as server:
        meta = DatasetMeta.open(f"{server.url}/ds/")
        assert meta.path("meta/info.json") == f"{server.url}/ds/meta/info.json"
    assert meta.episodes.equals(TINY_META.episodes) and meta.tasks == TINY_META.tasks


# ---------------------------------------------------------------------- 3. index build resumes from a private place
def test_resume_dir_is_private_and_refuses_a_planted_one(tiny_copy, tmp_path, monkeypatch):
    from lerobot_inspect.video.byte_index import private_dir
    from lerobot_inspect.video.index_io import resume_dir_for

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    meta = DatasetMeta.open(tiny_copy)
    directory = resume_dir_for(meta)
    base = directory.parent
    assert stat.S_IMODE(base.stat().st_mode) == 0o700 and base.stat().st_uid == os.getuid()
    assert resume_dir_for(meta) == directory, "a rerun finds the same place"

    shutil.rmtree(base)
    base.mkdir(mode=0o777)
    os.chmod(base, 0o777)  # made by someone else first, open to everyone
    with pytest.warns(UserWarning, match="not a private directory"):
        elsewhere = resume_dir_for(meta)
    assert base not in elsewhere.parents
    with pytest.raises(OptionError, match="not a private directory"):
        private_dir(base)


def test_a_planted_partial_never_reaches_the_index(tiny_copy, tmp_path, monkeypatch):
    """Partial results from an interrupted build, forged: one in the old predictable place, and one in
    the private place whose episode spans do not follow from its sample table. Neither is used: the
    saved index equals a fresh build."""
    import hashlib

    from lerobot_inspect.io import RangeReader
    from lerobot_inspect.video import byte_index as bi
    from lerobot_inspect.video.index_io import build_dataset_index, resume_dir_for, video_file_refs

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    meta = DatasetMeta.open(tiny_copy)
    fresh = build_dataset_index(meta, RangeReader(meta.fs), threads=1)
    refs = video_file_refs(meta)

    old_place = tmp_path / "tmp" / "lerobot_inspect_index_resume" / hashlib.sha1(
        str(meta.root).rstrip("/").encode()).hexdigest()[:16]
    old_place.mkdir(parents=True)
    resume = resume_dir_for(meta)
    bi.private_dir(resume)
    for place in (old_place, resume):
        for ref in refs:
            real = bi._index_one_file(ref, lambda p, a, b: (tiny_copy / p).read_bytes()[a:b],
                                      lambda p: (tiny_copy / p).stat().st_size, 64 << 10)
            forged = [{**row, "span_start": row["span_start"] + 1} for row in real.episode_rows]
            identity = {"size": (tiny_copy / ref.path).stat().st_size, "version": None}
            bi._save_partial(bi._partial_path(place, ref), bi._FileResult(real.file_row, forged, real.frames,
                                                                           real.moov_sha256), identity)
    rebuilt = build_dataset_index(meta, RangeReader(meta.fs), threads=1, resume_dir=resume)
    assert rebuilt.episodes.equals(fresh.episodes) and rebuilt.frames.equals(fresh.frames)
    assert not resume.exists()
