"""ring_collate: the batches default_collate gives, through shared-memory slots DataLoader workers reuse.

Real DataLoader workers (fork) on a fixture dataset: every batch equals default_collate's, value for
value, including batches (or views of their frames) the training loop keeps while the workers go on:
a slot is never reused while the main process refers to it, past MAX_SLOTS a worker sends blocks it
does not reuse, and a loop that drops its batches keeps each worker at a handful of slots.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, IterableDataset, default_collate, get_worker_info

from data_fixtures import cached_dataset
from lerobot_inspect.loaders import collate
from lerobot_inspect.loaders.collate import ring_collate
from lerobot_inspect.loaders.streaming import StreamingDataset

WORKERS = 2


class Samples(IterableDataset):
    """Sample dicts shaped like LeRobot's (frames, vectors, scalars, masks, strings), split by worker;
    the last sample of each worker carries that worker's slot count."""

    def __init__(self, n: int, *, frame: tuple[int, ...] = (2, 3, 128, 160)) -> None:
        self.n, self.frame = n, frame

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        for i in range(worker, self.n, workers):
            g = torch.Generator().manual_seed(i)
            yield {
                "image": torch.randint(0, 256, self.frame, generator=g, dtype=torch.uint8),
                "state": torch.randn(2, 7, generator=g),
                "index": torch.tensor(i),
                "done": torch.tensor(i % 5 == 0),
                "is_pad": torch.rand(16, generator=g) < 0.2,
                "task": f"task {i % 3}",
                "slots": torch.tensor(len(getattr(collate._worker_slots, "slots", collate._Slots()).slots)),
            }


BATCH = 16  # 16 samples of (2, 3, 128, 160) uint8: 1.9 MiB of frames, handed out as views of the slot


def _loader(dataset: IterableDataset, collate_fn: Any, *, batch_size: int = BATCH) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, num_workers=WORKERS, collate_fn=collate_fn,
                      multiprocessing_context="fork")


def _batches(dataset: IterableDataset, collate_fn: Any, *, batch_size: int = BATCH) -> list[dict[str, Any]]:
    return list(_loader(dataset, collate_fn, batch_size=batch_size))  # every batch kept while the workers go on


def _same(a: dict[str, Any], b: dict[str, Any], *, skip: tuple[str, ...] = ()) -> None:
    assert list(a) == list(b)
    for key in a:
        if key in skip:
            continue
        if isinstance(a[key], torch.Tensor):
            assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
            assert torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


def test_held_batches_equal_default_collate_past_the_reused_slots() -> None:
    assert collate.SHARE_MIN_BYTES <= BATCH * 2 * 3 * 128 * 160 < 64 * 2**20
    expected = _batches(Samples(800), None)
    got = _batches(Samples(800), ring_collate)  # 25 held batches per worker: more than MAX_SLOTS
    assert len(got) == len(expected) == 50 > WORKERS * collate.MAX_SLOTS
    for a, b in zip(got, expected, strict=True):
        _same(a, b, skip=("slots",))
        _owns_its_memory(a)
    assert int(torch.cat([b["slots"] for b in got]).max()) == collate.MAX_SLOTS


def test_a_view_of_the_frames_keeps_its_batch_and_dropped_batches_free_their_slots() -> None:
    expected = _batches(Samples(800), None)
    kept, indices, slots = [], [], []
    for batch in _loader(Samples(800), ring_collate):
        kept.append(batch["image"][3, 1, :, 40:80])  # a view of a view: all that is left of the batch
        indices.append(batch["index"])  # small fields are copies: keeping them holds no slot
        slots.append(batch["slots"])
        del batch
    for view, index, batch in zip(kept, indices, expected, strict=True):
        assert torch.equal(index, batch["index"])
        assert torch.equal(view, batch["image"][3, 1, :, 40:80]), "a held view was overwritten"
    assert len(kept) == 50
    assert int(torch.cat(slots).max()) == collate.MAX_SLOTS  # the views hold their slots
    kept.clear()
    slots = [batch["slots"] for batch in _loader(Samples(800), ring_collate)]  # each batch dropped at once
    assert 1 <= int(torch.cat(slots).max()) <= 5


def test_streaming_dataset_batches_equal_default_collate() -> None:
    root = cached_dataset(episodes=12, length_range=(20, 30), width=32, height=32, cameras=2)
    windows = {"observation.images.front": [-0.1, 0.0], "action": [0.0, 0.1, 0.2]}

    def stream() -> StreamingDataset:
        return StreamingDataset(root, seed=3, batch_size=8, delta_timestamps=windows, return_uint8=True)

    expected, got = _batches(stream(), None, batch_size=8), _batches(stream(), ring_collate, batch_size=8)
    assert len(got) == len(expected) > 10
    for a, b in zip(got, expected, strict=True):
        _same(a, b)


def _owns_its_memory(batch: dict[str, Any]) -> None:
    """Each tensor has storage of its own size: keeping batch["index"] must not keep the frames alive."""
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            assert value.untyped_storage().nbytes() == value.numel() * value.element_size(), key
            if value.numel() * value.element_size() < collate.SHARE_MIN_BYTES:
                assert value.untyped_storage().data_ptr() != batch["image"].untyped_storage().data_ptr()


def test_without_workers_it_is_default_collate() -> None:
    samples = list(Samples(5))
    _same(ring_collate(samples), default_collate(samples))


def test_samples_of_different_shapes_get_torchs_error() -> None:
    class Ragged(Samples):
        def __iter__(self) -> Iterator[dict[str, Any]]:
            for i, sample in enumerate(super().__iter__()):
                if i == 3:
                    sample["state"] = torch.zeros(3, 7)
                yield sample

    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
        _batches(Ragged(16), ring_collate, batch_size=8)

