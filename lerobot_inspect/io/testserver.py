"""A real HTTP file server on 127.0.0.1 that counts what it sends and misbehaves on a schedule.

Tests and `bench` serve dataset directories through it to measure, at the server, the bytes a
loader really pulled (a client-side counter cannot see a 200 that sent a whole file), and to
check that every fault a CDN or object store produces in practice is retried correctly.

It is the standard library's threading HTTP server speaking HTTP/1.1 with keep-alive: faults are
injected at the socket (a real TCP reset, a body cut short, a stall), which an in-process fake
cannot do. It binds 127.0.0.1 only and serves files below its directory only.

    with serve_directory(tmp_path, faults=FaultPlan(kinds=("reset",), every=3)) as server:
        fs, root = open_root(server.url)
        ...
        assert server.stats()["bytes_sent"] == ...
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import struct
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal, get_args

from lerobot_inspect.errors import OptionError

__all__ = ["FaultKind", "FaultPlan", "TestServer", "serve_directory"]

FaultKind = Literal["500", "503", "reset", "slow", "short", "wrong_range", "full_body"]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
_CHUNK = 1 << 16


@dataclass(frozen=True)
class FaultPlan:
    """Which requests the server spoils, as a pure function of the request's number.

    Two schedules: with `rates` (kind -> probability) each eligible request draws from a
    generator seeded with (seed, request number), so a run is reproducible whatever the thread
    interleaving; otherwise every `every`-th eligible request gets the next kind of `kinds` in
    turn. `limit` caps the faults injected in total (e.g. "fail the first two, then behave").
    Only requests whose method is in `methods` count; HEAD is spared by default so that size
    lookups do not take part in a test about range reads. `paths`, when given, narrows the
    eligible requests to URL paths ending with one of its suffixes (e.g. ".mp4": fault the video
    reads and leave the Parquet reads alone, or one file's path: fail that file only).
    """

    kinds: tuple[FaultKind, ...] = ()
    every: int = 1
    rates: Mapping[FaultKind, float] = field(default_factory=dict)
    seed: int = 0
    limit: int | None = None
    delay_s: float = 1.0
    methods: tuple[str, ...] = ("GET",)
    paths: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for kind in (*self.kinds, *self.rates):
            if kind not in FAULT_KINDS:
                raise OptionError(f"fault kind {kind!r}; choose from {FAULT_KINDS}")
        if self.every < 1:
            raise OptionError(f"every={self.every!r}; pass an integer >= 1")
        if sum(self.rates.values()) > 1.0 or any(r < 0 for r in self.rates.values()):
            raise OptionError(f"rates={dict(self.rates)!r}; each >= 0 and summing to at most 1")
        if self.delay_s < 0:
            raise OptionError(f"delay_s={self.delay_s!r}; pass seconds >= 0")
        if isinstance(self.paths, str):
            raise OptionError(f"paths={self.paths!r}; pass a tuple of URL path suffixes, e.g. ('.mp4',)")

    def applies_to(self, method: str, url_path: str) -> bool:
        """Whether a request takes part in the schedule (is counted and may be spoiled)."""
        return method in self.methods and (not self.paths or url_path.endswith(tuple(self.paths)))

    def fault_for(self, request_number: int) -> FaultKind | None:
        """The fault for the `request_number`-th eligible request (1-based), ignoring `limit`."""
        if self.rates:
            draw = random.Random(f"{self.seed}:{request_number}").random()
            cumulative = 0.0
            for kind in sorted(self.rates):
                cumulative += self.rates[kind]
                if draw < cumulative:
                    return kind
            return None
        if self.kinds and request_number % self.every == 0:
            return self.kinds[(request_number // self.every - 1) % len(self.kinds)]
        return None


class _Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.bytes_sent = 0
        self.eligible = 0
        self.faults_injected = 0
        self.handler_errors = 0
        self.faults: dict[str, int] = {}
        self.status: dict[int, int] = {}
        self.paths: dict[str, dict[str, int]] = {}

    def path(self, path: str) -> dict[str, int]:
        entry = self.paths.get(path)
        if entry is None:
            entry = {"requests": 0, "get_requests": 0, "head_requests": 0, "bytes_sent": 0}
            self.paths[path] = entry
        return entry


class TestServer:
    """Handle on a running server: its URL, its counters and its fault plan."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: str | os.PathLike[str], *, faults: FaultPlan | None = None) -> None:
        self.directory = Path(directory).resolve()
        if not self.directory.is_dir():
            raise OptionError(f"directory={str(directory)!r} is not a directory; pass the folder to serve")
        self.faults = faults
        self._counters = _Counters()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL; a file `a/b.mp4` under the directory is at f'{url}/a/b.mp4'."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> TestServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
            name=f"testserver-{self.port}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def set_faults(self, faults: FaultPlan | None) -> None:
        """Swap the fault plan; the eligible-request numbering starts again from 1."""
        with self._counters.lock:
            self.faults = faults
            self._counters.eligible = 0
            self._counters.faults_injected = 0

    def stats(self) -> dict[str, Any]:
        """What the server sent: totals, per status, per fault kind and per path (URL path).

        Bytes are counted as they are handed to the socket, before the client can see them, so a
        test that has its bytes may read the counters at once. A write that fails because the
        client hung up still counts its chunk: that is the cost of a retried whole-file answer.
        """
        c = self._counters
        with c.lock:
            return {
                "requests": c.requests,
                "bytes_sent": c.bytes_sent,
                "faults": dict(c.faults),
                "handler_errors": c.handler_errors,
                "status": dict(c.status),
                "paths": {p: dict(e) for p, e in c.paths.items()},
            }

    def reset_stats(self) -> None:
        with self._counters.lock:
            self._counters.reset()

    # ---- used by the handler ---------------------------------------------------------------------
    def _admit(self, method: str, path: str) -> FaultKind | None:
        c = self._counters
        with c.lock:
            c.requests += 1
            entry = c.path(path)
            entry["requests"] += 1
            entry["get_requests" if method == "GET" else "head_requests"] += 1
            plan = self.faults
            if plan is None or not plan.applies_to(method, path):
                return None
            c.eligible += 1
            kind = plan.fault_for(c.eligible)
            if kind is None or (plan.limit is not None and c.faults_injected >= plan.limit):
                return None
            c.faults_injected += 1
            c.faults[kind] = c.faults.get(kind, 0) + 1
            return kind

    def _count(self, path: str, *, status: int | None = None, n_bytes: int = 0) -> None:
        c = self._counters
        with c.lock:
            if status is not None:
                c.status[status] = c.status.get(status, 0) + 1
            c.bytes_sent += n_bytes
            c.path(path)["bytes_sent"] += n_bytes


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: TestServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients drop connections on purpose (a retried 200, a reset we injected): not news.
        with self.owner._counters.lock:
            self.owner._counters.handler_errors += 1


def _parse_range(header: str, size: int) -> tuple[int, int] | Literal["unsatisfiable"] | None:
    """[start, stop) for one 'bytes=a-b', 'bytes=a-' or 'bytes=-n'; None when not a single range."""
    if not header.startswith("bytes=") or "," in header:
        return None
    first, sep, last = header[6:].strip().partition("-")
    if not sep:
        return None
    try:
        if first == "":
            length = int(last)
            if length <= 0:
                return "unsatisfiable"
            return max(0, size - length), size
        start = int(first)
        stop = size if last == "" else min(int(last) + 1, size)
    except ValueError:
        return None
    if start >= size or stop <= start:
        return "unsatisfiable"
    return start, stop


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, the body waits for the client's
    # delayed ACK (40-200 ms per request), which would make every small range read look slow.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read counters, not logs
        pass

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def _resolve(self) -> tuple[str, Path | None]:
        url_path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        base = self.server.owner.directory
        target = (base / url_path.lstrip("/")).resolve()
        if base != target and base not in target.parents:
            return url_path, None
        return url_path, target if target.is_file() else None

    def _serve(self, *, send_body: bool) -> None:
        owner = self.server.owner
        url_path, target = self._resolve()
        fault = owner._admit(self.command, url_path)
        if target is None:
            self._send_empty(404, url_path)
            return
        size = target.stat().st_size
        if fault == "slow":
            time.sleep(owner.faults.delay_s if owner.faults else 1.0)
        elif fault in ("500", "503"):
            self._send_empty(int(fault), url_path)
            return

        requested = _parse_range(self.headers.get("Range", ""), size) if "Range" in self.headers else None
        if requested == "unsatisfiable":
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            owner._count(url_path, status=416)
            self.end_headers()
            return
        if requested is None or fault == "full_body":
            status, (start, stop) = 200, (0, size)
        else:
            status, (start, stop) = 206, requested
        claimed = (start, stop)
        if status == 206 and fault == "wrong_range":
            # A consistent lie: the body and Content-Range describe a span one byte further on.
            shift = 1 if stop < size else -1
            start, stop = start + shift, stop + shift
            claimed = (start, stop)
        length = stop - start

        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(length))
        if status == 206:
            self.send_header("Content-Range", f"bytes {claimed[0]}-{claimed[1] - 1}/{size}")
        # Count before sending: a client that has its bytes may read the counters at once.
        owner._count(url_path, status=status)
        self.end_headers()
        if not send_body:
            return

        to_send = length
        if fault in ("short", "reset"):
            to_send = length // 2
        sent = 0
        with target.open("rb") as handle:
            handle.seek(start)
            while sent < to_send:
                chunk = handle.read(min(_CHUNK, to_send - sent))
                if not chunk:
                    break
                owner._count(url_path, n_bytes=len(chunk))
                try:
                    self.wfile.write(chunk)
                except OSError:  # the client went away (e.g. it closed a 200 it did not want)
                    self.close_connection = True
                    break
                sent += len(chunk)
        if fault == "reset":
            # SO_LINGER 0 turns close() into a TCP RST: the client sees "connection reset by peer".
            # Close every handle now, before socketserver's graceful shutdown(SHUT_WR) sends a FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.rfile.close()
            self.wfile.close()
            self.connection.close()
        elif fault == "short":
            self.close_connection = True

    def _send_empty(self, status: int, url_path: str) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.server.owner._count(url_path, status=status)
        self.end_headers()


@contextlib.contextmanager
def serve_directory(
    directory: str | os.PathLike[str], *, faults: FaultPlan | None = None
) -> Iterator[TestServer]:
    """Serve `directory` on 127.0.0.1 (a free port) for the duration of the block."""
    server = TestServer(directory, faults=faults).start()
    try:
        yield server
    finally:
        server.stop()
