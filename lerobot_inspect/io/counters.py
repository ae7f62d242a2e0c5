"""Thread-safe counters, the one type behind every "how many bytes / requests / hits" figure.

The range reader, the byte cache and the loopback server all count the same way: named totals,
optionally split by a key (a path), read as a plain dict. Reading them is how tests and the bench
check byte accounting, so a snapshot is taken under the lock and is JSON-able.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from typing import Any

__all__ = ["Counters"]


class Counters:
    """Named numeric totals (`add(bytes=..., requests=1)`), optionally also per key
    (`add(path, bytes=...)`; a name may be counted per key only), plus bounded lists of recent
    values (`note(name, value)`)."""

    def __init__(self, names: Iterable[str], *, per_key: Iterable[str] = (),
                 recent: dict[str, int] | None = None) -> None:
        self._names = tuple(names)
        self._per_key = tuple(per_key)
        self._recent_sizes = dict(recent or {})
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Zero everything."""
        with self._lock:
            self._totals: dict[str, float] = dict.fromkeys(self._names, 0)
            self._keys: dict[str, dict[str, float]] = {}
            self._recent = {name: deque(maxlen=size) for name, size in self._recent_sizes.items()}

    def add(self, key: str | None = None, /, **deltas: float) -> None:
        """Add to totals; with `key`, also to that key's entry (only the `per_key` names)."""
        with self._lock:
            for name, delta in deltas.items():
                if name in self._totals:
                    self._totals[name] += delta
                elif name not in self._per_key:
                    raise KeyError(f"no counter named {name!r}; these count: {self._names + self._per_key}")
            if key is not None:
                entry = self._keys.get(key)
                if entry is None:
                    entry = self._keys[key] = dict.fromkeys(self._per_key, 0)
                for name, delta in deltas.items():
                    if name in entry:
                        entry[name] += delta

    def note(self, name: str, value: float) -> None:
        """Remember `value` among the last few of `name` (e.g. the size of each recent miss)."""
        with self._lock:
            self._recent[name].append(value)

    def __getitem__(self, name: str) -> float:
        with self._lock:
            return self._totals[name]

    def key(self, key: str) -> dict[str, float]:
        """One key's entry (zeros when it was never counted)."""
        with self._lock:
            return dict(self._keys.get(key) or dict.fromkeys(self._per_key, 0))

    def snapshot(self, *, keys_as: str = "paths") -> dict[str, Any]:
        """Totals, recent lists and (when counted per key) the per-key entries, as a plain dict."""
        with self._lock:
            out: dict[str, Any] = dict(self._totals)
            out.update({name: list(values) for name, values in self._recent.items()})
            if self._per_key:
                out[keys_as] = {key: dict(entry) for key, entry in self._keys.items()}
            return out
