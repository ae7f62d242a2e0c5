"""ring_collate: the batches default_collate gives, through shared-memory slots DataLoader workers reuse.

Real DataLoader workers (fork) on a fixture dataset: every batch equals default_collate's, value for
value, including batches the training loop keeps while the workers go on (a slot is never reused
before the main process copied it out), and a worker's slot count stays small.
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

    def __init__(self, n: int, *, frame: tuple[int, ...] = (2, 3, 24, 32)) -> None:
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


def _batches(dataset: IterableDataset, collate_fn: Any, *, batch_size: int = 8) -> list[dict[str, Any]]:
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=WORKERS, collate_fn=collate_fn,
                        multiprocessing_context="fork")
    return list(loader)  # every batch kept while the workers produce the next ones


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


def test_held_batches_equal_default_collate_and_slots_are_reused() -> None:
    expected = _batches(Samples(800), None)
    got = _batches(Samples(800), ring_collate)
    assert len(got) == len(expected) == 100
    for a, b in zip(got, expected, strict=True):
        _same(a, b, skip=("slots",))
        assert not a["image"].is_shared(), "the main process owns a copy, not the worker's slot"
        _owns_its_memory(a)
    # Slots come back: 50 batches per worker went through a handful of them.
    assert 1 <= int(torch.cat([b["slots"] for b in got]).max()) <= 4


def test_streaming_dataset_batches_equal_default_collate() -> None:
    root = cached_dataset(episodes=12, length_range=(20, 30), width=32, height=32, cameras=2)
    windows = {"observation.images.front": [-0.1, 0.0], "action": [0.0, 0.1, 0.2]}

    def stream() -> StreamingDataset:
        return StreamingDataset(root, seed=3, batch_size=8, delta_timestamps=windows, return_uint8=True)

    expected, got = _batches(stream(), None), _batches(stream(), ring_collate)
    assert len(got) == len(expected) > 10
    for a, b in zip(got, expected, strict=True):
        _same(a, b)


def _owns_its_memory(batch: dict[str, Any]) -> None:
    """Each tensor has storage of its own size: keeping batch["index"] must not keep the frames alive."""
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            assert value.untyped_storage().nbytes() == value.numel() * value.element_size(), key


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
        _batches(Ragged(16), ring_collate)

