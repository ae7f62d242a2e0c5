"""StreamingDataset over a misbehaving HTTP server: nothing lost, nothing repeated, nothing wrong.

The dataset is served on 127.0.0.1 by `serve_directory` with a FaultPlan that spoils every third
video request in turn with each fault a CDN produces (500, 503, reset, slow, short body, wrong
Content-Range, a 200 that ignores the Range header). Two DataLoader workers stream it; every sample
must arrive exactly once, decode to the frame it claims to be (fixture frame codes), and equal the
fault-free run. The retries each worker made are read from its own reader stats: they live in the
worker process, so the test wraps the dataset to put a stats snapshot on a queue when a worker's
stream ends (`WorkerStats`, the documented way to surface them).

Beyond the retry budget a FetchError reaches the training loop, and `state_dict(samples_seen=...)`
of what was consumed resumes on a healthy server with exactly the rest of the epoch.
"""

from __future__ import annotations

import hashlib
import multiprocessing
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from torch.utils.data import DataLoader, IterableDataset

from data_fixtures import cached_dataset, decode_frame_code
from data_fixtures.fault_server import FAULT_KINDS, FaultPlan, serve_directory
from lerobot_inspect.errors import FetchError
from lerobot_inspect.format import DatasetMeta
from lerobot_inspect.io import RangeReader
from lerobot_inspect.loaders.streaming import StreamingDataset
from lerobot_inspect.video.remote import ByteIndexSource, ByteIndexVideoReader

BATCH = 16
WORKERS = 2
SLOW_S = 1.0  # how long a "slow" fault stalls: twice the reader's timeout


def _root(episodes: int) -> Path:
    return cached_dataset(episodes=episodes, length_range=(20, 30), width=32, height=32, cameras=2,
                          episodes_per_file=50)


class WorkerStats(IterableDataset):
    """Streams `dataset`; when a worker's share ends, puts that worker's video stats on `queue`."""

    def __init__(self, dataset: StreamingDataset, queue: Any) -> None:
        self.dataset, self.queue = dataset, queue

    def __iter__(self) -> Iterator[dict[str, Any]]:
        yield from self.dataset
        self.queue.put(self.dataset.video.stats())


def _dataset(url: str, *, max_attempts: int, pool_size: int = 16) -> StreamingDataset:
    """A byte-index StreamingDataset whose index is loaded now, before any fault is switched on."""
    meta = DatasetMeta.open(url)
    # A 0.5 s timeout turns the server's 1 s stalls (SLOW_S) into timeouts, retried like the rest.
    reader = RangeReader(meta.fs, max_attempts=max_attempts, backoff_s=0.005, max_backoff_s=0.05, timeout_s=0.5)
    video = ByteIndexVideoReader(meta, source=ByteIndexSource(meta, reader=reader), return_uint8=True)
    video.index  # noqa: B018
    return StreamingDataset(meta, video_reader=video, return_uint8=True, batch_size=BATCH, seed=1,
                            pool_size=pool_size)


def _digest(batch: dict[str, Any], cameras: list[str]) -> list[tuple[int, str, tuple]]:
    """(index, hash of the video tensors, frame codes) per sample of a batch."""
    out = []
    for row, index in enumerate(batch["index"].tolist()):
        frames = [batch[camera][row] for camera in cameras]
        digest = hashlib.sha1(b"".join(f.numpy().tobytes() for f in frames)).hexdigest()
        codes = tuple(decode_frame_code(f) for f in frames)
        out.append((int(index), digest, codes))
    return out


def _stream(url: str, *, before_iterating: Any = None) -> tuple[list[tuple[int, str, tuple]], list[dict[str, Any]]]:
    # Attempts land on the server's global request count, which concurrent workers and prefetch
    # threads interleave: a request is spoiled with odds ~1/3 per attempt. 8 attempts failed once in a
    # CI run of 10k samples (the sample still arrived, through a later read); 12 make it ~1e-6 a request.
    dataset = _dataset(url, max_attempts=12)
    if before_iterating is not None:
        before_iterating()
    queue = multiprocessing.get_context("fork").SimpleQueue()
    loader = DataLoader(WorkerStats(dataset, queue), batch_size=BATCH, num_workers=WORKERS,
                        multiprocessing_context="fork")
    delivered = [item for batch in loader for item in _digest(batch, dataset.meta.video_keys)]
    stats = [queue.get() for _ in range(WORKERS)]
    return delivered, stats


@pytest.mark.parametrize("episodes", [pytest.param(60, id="1.5k-samples"),
                                      pytest.param(400, id="10k-samples", marks=pytest.mark.slow)])
def test_every_fault_kind_retried_and_every_sample_delivered_once_and_right(episodes: int) -> None:
    root = _root(episodes)
    local = DatasetMeta.open(root)
    with serve_directory(root) as healthy:
        expected, _ = _stream(healthy.url)
    plan = FaultPlan(kinds=FAULT_KINDS, every=3, delay_s=SLOW_S, paths=(".mp4",))
    with serve_directory(root) as server:
        # Faults start once the index is loaded in the main process: every worker request is exposed.
        delivered, stats = _stream(server.url, before_iterating=lambda: server.set_faults(plan))
        served = server.stats()

    assert len(delivered) == local.total_frames and len(delivered) == len(expected)
    counts = Counter(index for index, _, _ in delivered)
    assert set(counts) == set(range(local.total_frames)) and max(counts.values()) == 1, "exactly once"
    assert delivered == expected, "same samples, same order, same decoded pixels as the fault-free run"
    for index, _, codes in delivered:
        episode = int(np.searchsorted(local.dataset_to_index, index, side="right"))
        frame = index - int(local.dataset_from_index[episode])
        assert [(c.camera, c.episode, c.frame) for c in codes] == [(0, episode, frame), (1, episode, frame)]

    assert set(served["faults"]) == set(FAULT_KINDS), served["faults"]
    injected = sum(served["faults"].values())
    retries = sum(s["reader"]["retries"] for s in stats)
    # Retries track the injected faults, but not to the unit: a healthy request can time out on a busy
    # machine (its 0.5 s timeout here; with 0.3 s seen 420 retries for 417 faults), and a fault on a prefetch
    # still in flight when a worker's stream ends is retried after its stats snapshot (seen 413 / 415).
    # What must hold exactly is above: every sample once, equal to the fault-free run.
    assert retries > 0 and abs(retries - injected) <= max(5, injected // 20), (retries, injected)
    assert all(s["reader"]["failures"] == 0 and s["reader"]["bytes"] > 0 for s in stats), \
        [{k: s["reader"][k] for k in ("failures", "retries", "requests", "bytes")} for s in stats]
    assert len({s["reader"]["pid"] for s in stats}) == WORKERS, "one snapshot per worker process"
    fetched = sum(s["cache"]["bytes_fetched"] for s in stats)
    assert fetched == sum(s["reader"]["bytes"] for s in stats) > 0
    mp4_sent = sum(e["bytes_sent"] for p, e in served["paths"].items() if p.endswith(".mp4"))
    assert fetched <= mp4_sent, "spoiled answers cost bytes the loader never kept"
    print(f"\nfault run: {len(delivered)} samples, {injected} faults {served['faults']}, {retries} retries, "
          f"{fetched} bytes kept of {mp4_sent} sent, {served['requests']} requests")


def test_faults_beyond_the_budget_raise_fetcherror_and_resume_gives_the_rest_exactly() -> None:
    root = _root(60)
    total = DatasetMeta.open(root).total_frames
    # pool_size 4 keeps prefetch a few episodes ahead, so most spans are fetched after the switch.
    with serve_directory(root) as server:
        # Every dataset is made before the first DataLoader: a main-process HTTP request to the same
        # server after a forked DataLoader ran was measured to hang until aiohttp's 300 s timeout.
        reference, dataset, resumed = (_dataset(server.url, max_attempts=3, pool_size=4) for _ in range(3))
        order = [i for b in DataLoader(reference, batch_size=BATCH, num_workers=WORKERS,
                                       multiprocessing_context="fork") for i in b["index"].tolist()]
        assert sorted(order) == list(range(total))

        camera = dataset.meta.video_keys[0]
        broken = dataset.video.source.entry(0, camera).path
        consumed: list[int] = []
        loader = DataLoader(dataset, batch_size=BATCH, num_workers=WORKERS, multiprocessing_context="fork")
        with pytest.raises(FetchError) as caught:
            for step, batch in enumerate(loader):
                consumed.extend(batch["index"].tolist())
                if step == 9:  # from now on every request for this file fails
                    server.set_faults(FaultPlan(kinds=("503",), paths=(f"/{broken}",)))
        del loader
        message = str(caught.value)
        assert broken in message and "after 3 attempt(s)" in message and "HTTP 503" in message
        assert 10 * BATCH <= len(consumed) < total and len(consumed) % BATCH == 0
        assert consumed == order[: len(consumed)]
        state = dataset.state_dict(samples_seen=len(consumed), num_workers=WORKERS)

        server.set_faults(None)  # the server heals; a dataset that never streamed resumes
        resumed.load_state_dict(state)
        rest = [i for b in DataLoader(resumed, batch_size=BATCH, num_workers=WORKERS,
                                      multiprocessing_context="fork") for i in b["index"].tolist()]
    assert rest == order[len(consumed):], "the rest of the epoch, in the order it would have come"
    assert sorted(consumed + rest) == list(range(total)), "nothing repeated, nothing lost"


def test_random_frame_order_inside_an_episode_decodes_the_right_frames_over_http() -> None:
    """FFmpeg re-reads a whole buffer from before the span after a backward seek; that must decode."""
    root = _root(60)
    with serve_directory(root) as server:
        meta = DatasetMeta.open(server.url)
        video = ByteIndexVideoReader(meta, return_uint8=True)
        for episode in (7, 9, 55):
            length = int(meta.lengths[episode])
            for frame in np.random.default_rng(episode).permutation(length).tolist():
                for position, camera in enumerate(meta.video_keys):
                    code = decode_frame_code(video.frames(episode, camera, [frame / meta.fps])[0])
                    assert (code.camera, code.episode, code.frame) == (position, episode, frame)
