"""`ring_collate`: DataLoader workers hand batches over through shared memory they reuse.

With `default_collate`, a worker stacks every batch into fresh shared memory, one segment per
tensor, and the main process receives one file descriptor per tensor (a socket connection and an
authentication handshake each). A LeRobot sample has ~15 tensors; at 320x240 with two cameras a
batch of 32 is ~30 MB. Measured with two workers streaming that (AV1), the fresh pages (zeroed by
the kernel on first touch) and the handovers cost the workers 18% of their CPU (11.2 s against
9.2 s for 3,000 samples), and two workers streamed no faster than one process with decode threads.

`ring_collate` writes a batch into one slot a worker keeps: a shared-memory block whose pages are
touched once. In the main process the large tensors of a batch (the frames: `SHARE_MIN_BYTES` and
up) are views of the slot, and the slot goes back to its worker when the last of them, or of any
view taken from them, is gone; the small ones (index, state, action, masks) are copied out, so
keeping those beyond the step never holds a slot. Copying the frames out too cost the main process
a fifth of a core at 800 samples/s (fresh pages for each batch, then the copy). A worker reuses
free slots, makes a new one when none is free, and past `MAX_SLOTS` busy ones (a training loop
that keeps frames of many batches) sends the batch in a block it does not reuse, freed with the
last tensor the main process holds, as `default_collate` does. Outside a worker (num_workers=0)
it is `default_collate`.

Use: `DataLoader(dataset, batch_size=32, num_workers=2, collate_fn=ring_collate)`. Batches are
the dicts of tensors (and lists of strings) that `default_collate` gives, value for value; a
batch's tensors are never overwritten while anything in the main process refers to them.
"""

from __future__ import annotations

import collections
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import default_collate, get_worker_info

__all__ = ["MAX_SLOTS", "SHARE_MIN_BYTES", "ring_collate"]

MAX_SLOTS = 16  # reused slots per worker; DataLoader keeps prefetch_factor (default 2) batches in flight per worker
SHARE_MIN_BYTES = 1 << 20  # a batch's tensors of this size and up are handed out as views of the slot
_HEADER = 64  # bytes before a slot's data: its state (FREE/FULL) in the first byte
_ALIGN = 64
_FREE, _FULL = 0, 1


@dataclass(frozen=True)
class _Field:
    key: str
    dtype: torch.dtype
    shape: tuple[int, ...]
    offset: int


class _Slot:
    """One shared-memory block of a worker; its first byte says whether the main process still owes a copy."""

    def __init__(self, nbytes: int) -> None:
        self.storage = torch.UntypedStorage._new_shared(_HEADER + nbytes)
        self.capacity = nbytes
        self.state = _bytes_of(self.storage)[:1]

    @property
    def free(self) -> bool:
        return int(self.state[0]) == _FREE


class _Slots:
    """A worker's slots (process-local: made in the worker after the fork)."""

    def __init__(self) -> None:
        self.slots: list[_Slot] = []

    def take(self, nbytes: int) -> tuple[_Slot, bool]:
        """A slot of at least `nbytes`, marked FULL, and whether this worker will reuse it."""
        # Too small free slots are dropped (batch shapes grew); the main process keeps its own
        # reference while it holds views of one.
        self.slots = [s for s in self.slots if not (s.free and s.capacity < nbytes)]
        slot = next((s for s in self.slots if s.free), None)
        reused = True
        if slot is None:
            slot = _Slot(nbytes)
            if len(self.slots) < MAX_SLOTS:
                self.slots.append(slot)
            else:  # the main process holds frames of many batches: a block of their own, not reused
                reused = False
        slot.state[0] = _FULL
        return slot, reused


_worker_slots = threading.local()


def ring_collate(samples: Sequence[Mapping[str, Any]]) -> Any:
    """Collate like `default_collate`; inside a DataLoader worker, through a reused shared-memory slot.

    Outside a worker it is `default_collate` (torch's stack releases the GIL, which the decode
    threads of a 0-worker loader need; numpy's copy was measured to hold it: 532 vs 548-590 samples/s)."""
    if get_worker_info() is None or not samples or type(samples[0]) is not dict:
        return default_collate(samples)
    fields, others, size = _layout(samples)
    slots = getattr(_worker_slots, "slots", None)
    if slots is None:
        slots = _worker_slots.slots = _Slots()
    slot, reused = slots.take(size)
    for field in fields:
        try:
            # numpy's stack: one thread, no torch dispatch per sample.
            np.stack([sample[field.key].numpy() for sample in samples],
                     out=_view(slot.storage, field, _HEADER).numpy(), casting="no")
        except (ValueError, TypeError):
            slot.state[0] = _FREE
            return default_collate(samples)  # shapes or dtypes differ between samples: torch's rules apply
    return _RingBatch(slot.storage, fields, others, tuple(samples[0]), reused)


def _layout(samples: Sequence[Mapping[str, Any]]) -> tuple[tuple[_Field, ...], dict[str, Any], int]:
    """Where each tensor key goes in one block (64-byte aligned), the other keys collated by torch,
    and the block's size."""
    fields: list[_Field] = []
    others: dict[str, Any] = {}
    offset = 0
    for key, value in samples[0].items():
        if (isinstance(value, torch.Tensor) and value.layout == torch.strided and value.device.type == "cpu"
                and not value.requires_grad and value.dtype in _NUMPY_DTYPES):
            fields.append(_Field(key, value.dtype, (len(samples), *value.shape), offset))
            offset += -(-_nbytes(fields[-1]) // _ALIGN) * _ALIGN
        else:
            others[key] = default_collate([sample[key] for sample in samples])
    return tuple(fields), others, offset


_NUMPY_DTYPES = frozenset({torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.bool,
                           torch.float16, torch.float32, torch.float64})


class _RingBatch:
    """What a worker sends: its slot (a file descriptor the first time, then found in torch's cache)
    and the layout. Unpickling in the main process builds the batch over the slot (`_unpack`)."""

    def __init__(self, storage: torch.UntypedStorage, fields: tuple[_Field, ...], others: dict[str, Any],
                 order: tuple[str, ...], reused: bool) -> None:
        self.storage, self.fields, self.others, self.order, self.reused = storage, fields, others, order, reused

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return _unpack, (self.storage, self.fields, self.others, self.order, self.reused)


# The main process keeps the slots it saw in the last KEEP_S seconds mapped: torch then finds a slot
# that comes back in its storage cache (no new mapping, no page faults) instead of mapping it again.
# Slots of workers that ended are let go at the first batch after that.
KEEP_S = 10.0
_recent: collections.OrderedDict[int, tuple[float, torch.UntypedStorage]] = collections.OrderedDict()


def _unpack(storage: torch.UntypedStorage, fields: tuple[_Field, ...], others: dict[str, Any],
            order: tuple[str, ...], reused: bool) -> dict[str, Any]:
    """The batch: large fields as views of the slot, freed for the worker by a finalizer on `holder`,
    small fields copied (then the slot is freed at once if nothing is shared)."""
    now = time.monotonic()
    if reused:
        _recent[storage.data_ptr()] = (now, storage)
        _recent.move_to_end(storage.data_ptr())
    while _recent and next(iter(_recent.values()))[0] < now - KEEP_S:
        _recent.popitem(last=False)
    out: dict[str, Any] = {}
    holder: np.ndarray | None = None
    for field in fields:
        nbytes = _nbytes(field)
        if nbytes >= SHARE_MIN_BYTES:
            if holder is None:
                # Every array sliced from `holder` keeps it as its base (numpy points views at the
                # array that wraps foreign memory), and torch.from_numpy keeps the array alive for as
                # long as any tensor or view over that memory exists: `holder` dies with the last one.
                holder = _bytes_of(storage)
                weakref.finalize(holder, _release, _bytes_of(storage)[:1])
            start = _HEADER + field.offset
            out[field.key] = torch.from_numpy(holder[start:start + nbytes].view(_numpy_dtype(field.dtype))
                                              .reshape(field.shape))
        else:
            copy = torch.empty(field.shape, dtype=field.dtype)  # its own tensor per key, as default_collate gives
            np.copyto(copy.numpy(), _view(storage, field, _HEADER).numpy())
            out[field.key] = copy
    if holder is None:
        _release(_bytes_of(storage)[:1])
    out.update(others)
    return {key: out[key] for key in order}


def _release(state: np.ndarray) -> None:
    state[0] = _FREE


def _numpy_dtype(dtype: torch.dtype) -> np.dtype:
    return torch.empty(0, dtype=dtype).numpy().dtype


def _bytes_of(storage: torch.UntypedStorage) -> np.ndarray:
    return torch.empty(0, dtype=torch.uint8).set_(storage).numpy()


def _nbytes(field: _Field) -> int:
    return torch.empty(0, dtype=field.dtype).element_size() * int(np.prod(field.shape, dtype=np.int64))


def _view(storage: torch.UntypedStorage, field: _Field, base: int) -> torch.Tensor:
    """The field's tensor over `storage` from byte `base + field.offset` (offsets are 64-byte aligned)."""
    if not _nbytes(field):
        return torch.empty(field.shape, dtype=field.dtype)
    element = torch.empty(0, dtype=field.dtype).element_size()
    return torch.empty(0, dtype=field.dtype).set_(storage, (base + field.offset) // element, field.shape,
                                                  _contiguous_strides(field.shape))


def _contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))
