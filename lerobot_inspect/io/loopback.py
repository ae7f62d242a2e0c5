"""A real HTTP file server on 127.0.0.1 that answers Range requests and counts what it sends.

The fetches page and `bench` serve a local dataset through it to measure, at the server, the bytes
a loader really pulled: a client-side counter cannot see a 200 that sent a whole file. It is the
standard library's threading HTTP server speaking HTTP/1.1 with keep-alive, bound to 127.0.0.1
only, serving files below its directory only.

    with serve_directory(root) as server:
        meta = DatasetMeta.open(server.url)
        ...
        server.stats()["paths"]["/videos/.../file-000.mp4"]["bytes_sent"]

The handler answers in steps (admit, intercept, choose the span, send headers, send the body,
finish) so a test server can spoil one step without copying the rest: `data_fixtures.fault_server`
injects resets, stalls, short bodies and wrong ranges that way.
"""

from __future__ import annotations

import contextlib
import email.utils
import os
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, Literal

from lerobot_inspect.errors import OptionError
from lerobot_inspect.io.counters import Counters

__all__ = ["LoopbackServer", "RangeHandler", "serve_directory"]

_CHUNK = 1 << 16


_TOTALS = ("requests", "bytes_sent", "handler_errors")
_PER_PATH = ("requests", "get_requests", "head_requests", "bytes_sent")


class LoopbackServer:
    """Handle on a running server: its URL and its counters. Use `serve_directory` for a block."""

    handler_class: ClassVar[type[BaseHTTPRequestHandler]]  # set below, after RangeHandler

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory).resolve()
        if not self.directory.is_dir():
            raise OptionError(f"directory={str(directory)!r} is not a directory; pass the folder to serve")
        self._lock = threading.Lock()
        self.reset_stats()
        self._httpd = _Server(("127.0.0.1", 0), self.handler_class)
        self._httpd.owner = self
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL; a file `a/b.mp4` under the directory is at f'{url}/a/b.mp4'."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LoopbackServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
            name=f"loopback-{self.port}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def stats(self) -> dict[str, Any]:
        """What the server sent: totals, per status and per path (URL path).

        Bytes are counted as they are handed to the socket, before the client can see them, so a
        caller that has its bytes may read the counters at once. A write that fails because the
        client hung up still counts its chunk: that is the cost of a retried whole-file answer.
        """
        counts = self._counts.snapshot()
        statuses = self._statuses.snapshot(keys_as="codes")["codes"]
        return {**{name: counts[name] for name in _TOTALS}, "paths": counts["paths"],
                "status": {int(code): int(entry["answers"]) for code, entry in statuses.items()}}

    def reset_stats(self) -> None:
        self._counts = Counters(_TOTALS, per_key=_PER_PATH)
        self._statuses = Counters((), per_key=("answers",))

    # ---- used by the handler ---------------------------------------------------------------------
    def _count_request(self, method: str, path: str) -> None:
        self._counts.add(path, requests=1, get_requests=int(method == "GET"), head_requests=int(method != "GET"))

    def _admit(self, method: str, path: str) -> Any:
        """Count an arriving request; a subclass may return what the handler should do with it."""
        self._count_request(method, path)
        return None

    def _count(self, path: str, *, status: int | None = None, n_bytes: int = 0) -> None:
        if status is not None:
            self._statuses.add(str(status), answers=1)
        if n_bytes:
            self._counts.add(path, bytes_sent=n_bytes)

    def _handler_error(self) -> None:
        self._counts.add(handler_errors=1)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: LoopbackServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients drop connections on purpose (a 200 they did not want, a retry): not news.
        self.owner._handler_error()


def parse_range(header: str, size: int) -> tuple[int, int] | Literal["unsatisfiable"] | None:
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


class RangeHandler(BaseHTTPRequestHandler):
    """GET/HEAD of files below the server's directory, one byte range per request (206) or the whole
    file (200). Each step of an answer is a method, so a subclass can change one step."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, the body waits for the client's
    # delayed ACK (40-200 ms per request), which would make every small range read look slow.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet: callers read counters, not logs
        pass

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def do_GET(self) -> None:
        self._serve(send_body=True)

    # ---- steps a subclass may change -------------------------------------------------------------
    def admit(self, url_path: str) -> None:
        """Count the request before anything else happens to it."""
        self.server.owner._admit(self.command, url_path)

    def intercept(self, url_path: str) -> bool:
        """Answer the request some other way (True) instead of with the file; the base never does."""
        return False

    def choose_span(self, status: int, start: int, stop: int, size: int) -> tuple[int, int, int]:
        """(status, start, stop) to answer with, given what was asked; the base answers as asked."""
        return status, start, stop

    def body_length(self, length: int) -> int:
        """How many of the `length` promised bytes to send; the base sends them all."""
        return length

    def finish_response(self) -> None:
        """After the body (or the headers of a HEAD); the base keeps the connection open."""

    # ---- the answer ------------------------------------------------------------------------------
    def _resolve(self) -> tuple[str, Path | None]:
        url_path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        base = self.server.owner.directory
        target = (base / url_path.lstrip("/")).resolve()
        if base != target and base not in target.parents:
            return url_path, None
        return url_path, target if target.is_file() else None

    def _serve(self, *, send_body: bool) -> None:
        url_path, target = self._resolve()
        self.admit(url_path)
        if target is None:
            self.send_empty(404, url_path)
            return
        if self.intercept(url_path):
            return
        stat = target.stat()
        size = stat.st_size
        # A strong validator as object stores give one: a file replaced in place (same size or not)
        # gets another, so a client pinning it is refused (412) instead of served the new bytes.
        etag = f'"{stat.st_ino:x}-{stat.st_mtime_ns:x}-{size:x}"'
        self.validators = {"ETag": etag, "Last-Modified": email.utils.formatdate(stat.st_mtime, usegmt=True)}
        if_match = self.headers.get("If-Match")
        if if_match is not None and if_match.strip() != "*" and etag not in [t.strip() for t in if_match.split(",")]:
            self.send_empty(412, url_path)
            return
        requested = parse_range(self.headers.get("Range", ""), size) if "Range" in self.headers else None
        if requested == "unsatisfiable":
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.server.owner._count(url_path, status=416)
            self.end_headers()
            return
        status, (start, stop) = (200, (0, size)) if requested is None else (206, requested)
        status, start, stop = self.choose_span(status, start, stop, size)
        self._send_headers(url_path, status, start, stop, size)
        if send_body:
            self._send_body(url_path, target, start, self.body_length(stop - start))
        self.finish_response()

    def _send_headers(self, url_path: str, status: int, start: int, stop: int, size: int) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(stop - start))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{size}")
        for name, value in getattr(self, "validators", {}).items():
            self.send_header(name, value)
        # Count before sending: a client that has its bytes may read the counters at once.
        self.server.owner._count(url_path, status=status)
        self.end_headers()

    def _send_body(self, url_path: str, target: Path, start: int, to_send: int) -> None:
        sent = 0
        with target.open("rb") as handle:
            handle.seek(start)
            while sent < to_send:
                chunk = handle.read(min(_CHUNK, to_send - sent))
                if not chunk:
                    break
                self.server.owner._count(url_path, n_bytes=len(chunk))
                try:
                    self.wfile.write(chunk)
                except OSError:  # the client went away (e.g. it closed a 200 it did not want)
                    self.close_connection = True
                    break
                sent += len(chunk)

    def send_empty(self, status: int, url_path: str) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.server.owner._count(url_path, status=status)
        self.end_headers()


LoopbackServer.handler_class = RangeHandler


@contextlib.contextmanager
def serve_directory(directory: str | os.PathLike[str]) -> Iterator[LoopbackServer]:
    """Serve `directory` on 127.0.0.1 (a free port) for the duration of the block."""
    server = LoopbackServer(directory).start()
    try:
        yield server
    finally:
        server.stop()
