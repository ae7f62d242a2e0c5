"""The library's loopback HTTP server, misbehaving on a schedule: faults a CDN or object store
produces in practice, injected at the socket (a real TCP reset, a body cut short, a stall), which
an in-process fake cannot do.

Tests check with it that every fault is retried correctly and that a loader over a faulting server
still delivers every sample once. Counting, Range handling and serving come from
`lerobot_inspect.io.loopback`; this module only spoils answers.

    with serve_directory(tmp_path, faults=FaultPlan(kinds=("reset",), every=3)) as server:
        fs, root = open_root(server.url)
        ...
        assert server.stats()["faults"] == {"reset": ...}
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import struct
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from lerobot_inspect.errors import OptionError
from lerobot_inspect.io.loopback import LoopbackServer, RangeHandler

__all__ = ["FAULT_KINDS", "FaultKind", "FaultPlan", "FaultServer", "serve_directory"]

FaultKind = Literal["500", "503", "reset", "slow", "short", "wrong_range", "full_body", "drip"]
# Every kind but "drip", which is slow by nature (one byte per delay_s): tests ask for it by name.
FAULT_KINDS: tuple[str, ...] = tuple(kind for kind in get_args(FaultKind) if kind != "drip")


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
            if kind not in get_args(FaultKind):
                raise OptionError(f"fault kind {kind!r}; choose from {get_args(FaultKind)}")
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


class _FaultHandler(RangeHandler):
    """The loopback handler with the fault its request drew applied to one step of the answer."""

    fault: FaultKind | None = None

    def admit(self, url_path: str) -> None:
        self.fault = self.server.owner._admit(self.command, url_path)

    def intercept(self, url_path: str) -> bool:
        if self.fault == "slow":
            plan = self.server.owner.faults
            time.sleep(plan.delay_s if plan else 1.0)
        elif self.fault in ("500", "503"):
            self.send_empty(int(self.fault), url_path)
            return True
        return False

    def choose_span(self, status: int, start: int, stop: int, size: int) -> tuple[int, int, int]:
        if self.fault == "full_body":
            return 200, 0, size
        if status == 206 and self.fault == "wrong_range":
            # A consistent lie: the body and Content-Range describe a span one byte further on.
            shift = 1 if stop < size else -1
            return status, start + shift, stop + shift
        return status, start, stop

    def body_length(self, length: int) -> int:
        return length // 2 if self.fault in ("short", "reset") else length

    def _send_body(self, url_path: str, target: Any, start: int, to_send: int) -> None:
        if self.fault != "drip":
            super()._send_body(url_path, target, start, to_send)
            return
        # A link that never stalls outright: one byte every delay_s, until the client gives up.
        plan = self.server.owner.faults
        with open(target, "rb") as handle:
            handle.seek(start)
            for _ in range(to_send):
                try:
                    self.wfile.write(handle.read(1))
                    self.wfile.flush()
                except OSError:
                    self.close_connection = True
                    return
                self.server.owner._count(url_path, n_bytes=1)
                time.sleep(plan.delay_s if plan else 1.0)

    def finish_response(self) -> None:
        if self.fault == "reset":
            # SO_LINGER 0 turns close() into a TCP RST: the client sees "connection reset by peer".
            # Close every handle now, before socketserver's graceful shutdown(SHUT_WR) sends a FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.rfile.close()
            self.wfile.close()
            self.connection.close()
        elif self.fault == "short":
            self.close_connection = True


class FaultServer(LoopbackServer):
    """A loopback server with a fault plan: `stats()` adds the faults injected, per kind."""

    handler_class = _FaultHandler

    def __init__(self, directory: str | os.PathLike[str], *, faults: FaultPlan | None = None) -> None:
        self.faults = faults
        super().__init__(directory)

    def set_faults(self, faults: FaultPlan | None) -> None:
        """Swap the fault plan; the eligible-request numbering starts again from 1."""
        with self._lock:
            self.faults = faults
            self._eligible = 0
            self._faults_injected = 0

    def stats(self) -> dict[str, Any]:
        stats = super().stats()
        with self._lock:
            stats["faults"] = dict(self._faults)
        return stats

    def reset_stats(self) -> None:
        super().reset_stats()
        with self._lock:
            self._eligible = 0
            self._faults_injected = 0
            self._faults: dict[str, int] = {}

    def _admit(self, method: str, path: str) -> FaultKind | None:
        with self._lock:
            self._count_request(method, path)
            plan = self.faults
            if plan is None or not plan.applies_to(method, path):
                return None
            self._eligible += 1
            kind = plan.fault_for(self._eligible)
            if kind is None or (plan.limit is not None and self._faults_injected >= plan.limit):
                return None
            self._faults_injected += 1
            self._faults[kind] = self._faults.get(kind, 0) + 1
            return kind


@contextlib.contextmanager
def serve_directory(
    directory: str | os.PathLike[str], *, faults: FaultPlan | None = None
) -> Iterator[FaultServer]:
    """Serve `directory` on 127.0.0.1 (a free port) for the duration of the block, spoiling the
    requests `faults` picks (none when it is None; `set_faults` swaps the plan later)."""
    server = FaultServer(directory, faults=faults).start()
    try:
        yield server
    finally:
        server.stop()
