"""StreamingDataset: a torch IterableDataset that reads a LeRobot v3 dataset through an episode pool.

Each consumer (one DataLoader worker of one rank) owns a disjoint set of episodes for the epoch and
keeps `pool_size` of them admitted; every sample is drawn from the pool (with `shuffle=True`,
stratified: each admitted episode gives one sample per `pool_size` samples), so a batch mixes many
episodes while a consumer only ever holds the rows of a few. The schedule is integers computed by
`lerobot_inspect.loaders.pool` from (seed, epoch, rank, worker); this module is the I/O shell around it.

Samples are built by the map-style dataset's `SampleBuilder` over each episode's own rows (read
from its row group alone), so a streamed sample equals `MapDataset(root)[i]` for the same frame:
keys, order, dtypes, windows, pads, task and (same decoder path) video, bit for bit.
An episode's rows are read when its first sample is due; video is decoded only for the frame
being emitted and its window, each distinct frame once per sample.

Consumers and uneven counts. rank/world_size come from the arguments, else torch.distributed when
initialized, else the RANK/WORLD_SIZE environment variables, else (0, 1); the worker comes from
`torch.utils.data.get_worker_info()`. Consumer `rank * num_workers + worker` serves the episodes
`pool.split_episodes` gives it: every frame of the selected episodes exactly once per epoch over
all consumers, nothing padded, nothing dropped. Episodes are not split, so consumers (and ranks)
can differ by up to one longest episode of frames; a rank's DataLoader then yields fewer batches
than another's. A lock-step training loop should stop the epoch after the smallest rank's batch
count (`rank_batch_counts`) or use DDP's `Join`; `samples_seen` stays valid either way.

Exact resume. `state_dict(step=N)` takes what a training loop has: N = batches each rank's
DataLoader has delivered in this epoch (the global step, the same on every rank); short batches
at the tail of an epoch are accounted for when the resumed loader starts, where its worker count
is known. `state_dict(samples_seen=N)` takes N = samples consumed over all ranks since the epoch
began instead (MosaicML Streaming's approach: the main-process dataset cannot see what workers
yielded). On resume each consumer recomputes its schedule and skips its first k entries without
reading or decoding them. Turning N into per-consumer k needs the consumption model in
`pool.resume_point`: every rank has a DataLoader over this dataset with the same `batch_size`
given here (DataLoader `batch_size=None` means 1), drop_last=False, in-order delivery (torch
asks workers round robin), and N ends on a whole batch. With more than one DataLoader worker the
batch size decides which worker served which sample, so resuming mid-epoch without `batch_size`
is refused. The DataLoader's num_workers is not visible to the main-process dataset: pass it to
`state_dict(num_workers=...)` to have a mismatch refused; left out, the resumed loader's own
count is trusted (it must equal the checkpoint's).

Epochs: `set_epoch(e)` before each epoch (as with DistributedSampler). The dataset does not
advance by itself, because with DataLoader workers the main-process copy never sees an epoch end.
For the same reason `persistent_workers=True` is refused: persistent workers keep the copy they
were given and never see a later `set_epoch` or `load_state_dict`, so their second epoch would
repeat the first. A worker that is asked to iterate its copy a second time raises instead.

The `datasets` pipeline is another class (`DatasetsPipeline`); `open_stream(root, pipeline=...)`
builds either from one set of options.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal, get_args

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from lerobot_inspect.errors import OptionError, ResumeError, check_int, check_option
from lerobot_inspect.io._forks import freeze_inherited
from lerobot_inspect.io.fs import for_this_process
from lerobot_inspect.loaders import pool
from lerobot_inspect.loaders.rows import compact_footer, load_episode_rows, prepare_loader
from lerobot_inspect.loaders.samples import EpisodeRows, SampleBuilder, SamplePlan
from lerobot_inspect.video.ahead import DEFAULT_DECODE_AHEAD, DecodeAhead
from lerobot_inspect.video.reader import VideoReader, declared_frame_size, workers_fill_cores
from lerobot_inspect.video.remote import VideoAccess
from lerobot_inspect.video.source import FrameSource

__all__ = ["Pipeline", "StreamingDataset", "open_stream", "resolve_rank"]

Pipeline = Literal["pool", "datasets"]

DEFAULT_POOL_SIZE = 32  # about one sample per pool episode in a batch of 32 (pool.consumer_plan)

# state["num_workers"] when the saving run did not say how many DataLoader workers it used.
UNKNOWN_NUM_WORKERS = -1


def resolve_rank(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """(rank, world_size): the arguments, else torch.distributed, else RANK/WORLD_SIZE, else (0, 1).

    Resolved once, in the process that builds the dataset: DataLoader workers inherit the answer
    instead of asking a process group they are not part of."""
    if (rank is None) != (world_size is None):
        raise OptionError(f"rank={rank!r}, world_size={world_size!r}; pass both or neither")
    if rank is None:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world_size = torch.distributed.get_rank(), torch.distributed.get_world_size()
        elif "RANK" in os.environ and "WORLD_SIZE" in os.environ:
            try:
                rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
            except ValueError:
                raise OptionError(
                    f"RANK={os.environ['RANK']!r}, WORLD_SIZE={os.environ['WORLD_SIZE']!r} are not integers; "
                    "fix the environment or pass rank= and world_size=") from None
        else:
            rank, world_size = 0, 1
    world_size = check_int("world_size", world_size, minimum=1)
    rank = check_int("rank", rank, minimum=0)
    if rank >= world_size:
        raise OptionError(f"rank={rank} but world_size={world_size}; rank must be in 0..{world_size - 1}")
    return rank, world_size


class StreamingDataset(IterableDataset):
    """Episode-pool streaming over a LeRobot v3 root (local path or any fsspec URL).

    `pool_size` episodes per consumer are admitted at a time: larger mixes batches better and
    holds more rows (and, with a byte cache, more video) in memory. `shuffle=False` streams the
    consumer's episodes in dataset order, frame by frame. `frames_in_order=True` keeps the random
    draws between pool episodes but emits each episode's frames in order (LeRobot's "next frame"
    mode): fewer seeks, so faster decoding, for a little less randomness within episodes.
    `batch_size` is the DataLoader's batch size (needed for exact resume with several workers,
    see the module docstring). `decode_video=False` leaves the video keys (and their `_is_pad`)
    out of the samples, for probes and tests that only need the order; the schedule is the same.
    """

    def __init__(
        self,
        root: str | Any,
        *,
        episodes: Sequence[int] | None = None,
        delta_timestamps: Mapping[str, Sequence[float]] | None = None,
        tolerance_s: float = 1e-4,
        return_uint8: bool = False,
        shuffle: bool = True,
        frames_in_order: bool = True,
        seed: int = 0,
        pool_size: int = DEFAULT_POOL_SIZE,
        rank: int | None = None,
        world_size: int | None = None,
        batch_size: int | None = None,
        image_transforms: Callable[[torch.Tensor], torch.Tensor] | None = None,
        video_reader: FrameSource | None = None,
        decode_video: bool = True,
        video_access: VideoAccess = "auto",
        decode_ahead: int = DEFAULT_DECODE_AHEAD,
    ) -> None:
        self.seed = check_int("seed", seed)
        self.decode_ahead = check_int("decode_ahead", decode_ahead)
        self.pool_size = check_int("pool_size", pool_size, minimum=1)
        self.batch_size = None if batch_size is None else check_int("batch_size", batch_size, minimum=1)
        self.shuffle = bool(shuffle)
        self.frames_in_order = bool(frames_in_order)
        self.rank, self.world_size = resolve_rank(rank, world_size)
        self.epoch = 0
        self._resume: tuple[int, dict[str, int]] | None = None  # (epoch, state)
        self._iterations_here = 0  # iterations of this copy inside a DataLoader worker
        inputs = prepare_loader(root, episodes=episodes, delta_timestamps=delta_timestamps, tolerance_s=tolerance_s,
                                return_uint8=return_uint8, image_transforms=image_transforms,
                                video_reader=video_reader, video_access=video_access, decode_video=decode_video)
        self.meta, self.deltas, self.video, self.builder = inputs.meta, inputs.deltas, inputs.video, inputs.builder
        # The builder reads frames through the decode-ahead buffer; `self.video` stays the reader.
        self.ahead: DecodeAhead | None = None
        if self.decode_ahead and isinstance(self.video, VideoReader):
            self.ahead = DecodeAhead(self.video, depth=ahead_depth(self.meta, self.decode_ahead, self.pool_size))
            # Room for a decoder of its own per pool episode and camera (long-GOP files), plus the shared ones.
            cache = self.video.decoders
            cache.capacity = max(cache.capacity, 2 * self.pool_size * max(1, len(self.meta.video_keys)))
            self.builder = SampleBuilder(self.meta, deltas=self.deltas, frames=self.ahead,
                                         image_transforms=image_transforms)
        self.root = self.meta.root
        self.decode_video = bool(decode_video)
        # Episode positions of the schedule index this array, i.e. the selection in dataset order.
        self.selected_episodes = inputs.selected_episodes
        self.episode_lengths = self.meta.lengths[self.selected_episodes]
        self._scan_footers()

    def _scan_footers(self) -> None:
        """Index each selected data file's footer here, once: DataLoader workers forked later inherit
        the compact index instead of each walking a 10,000-row-group footer (seconds) before its
        first batch. Best effort: a file that cannot be read is left to the read that names its
        episode."""
        selected = np.zeros(self.meta.num_episodes, dtype=bool)
        selected[self.selected_episodes] = True
        for rel, positions in self.meta.episodes_in_data_file().items():
            if selected[positions].any():
                with contextlib.suppress(Exception):  # reported, naming the episode, when its rows are read
                    compact_footer(self.meta, rel)

    # ------------------------------------------------------------------ sizes
    @property
    def num_frames(self) -> int:
        """Frames per epoch over all consumers."""
        return int(self.episode_lengths.sum())

    @property
    def num_episodes(self) -> int:
        return len(self.selected_episodes)

    def _schedule_options(self, epoch: int) -> dict[str, Any]:
        return {"seed": self.seed, "epoch": epoch, "shuffle": self.shuffle}

    def _consumer_counts(self, epoch: int, num_workers: int) -> np.ndarray:
        return pool.consumer_frame_counts(self.episode_lengths, n_consumers=self.world_size * max(num_workers, 1),
                                          **self._schedule_options(epoch))

    def rank_frame_counts(self, epoch: int | None = None) -> np.ndarray:
        """Frames each rank serves in `epoch` (default: the current one), shape (world_size,).

        Independent of the DataLoader's num_workers: a rank's workers split the rank's share."""
        return self._consumer_counts(self.epoch if epoch is None else epoch, 0)

    def rank_batch_counts(self, *, num_workers: int, epoch: int | None = None) -> np.ndarray:
        """Batches each rank's DataLoader yields in `epoch`: stop lock-step training at the minimum."""
        workers = check_int("num_workers", num_workers)
        counts = self._consumer_counts(self.epoch if epoch is None else epoch, workers)
        return pool.rank_batch_counts(counts, world_size=self.world_size, num_workers=workers,
                                      batch_size=self.batch_size or 1)

    def __len__(self) -> int:
        """Samples this rank yields in the current epoch (the full epoch, also when resuming)."""
        return int(self.rank_frame_counts()[self.rank])

    # ------------------------------------------------------------------ epochs and resume
    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch the next iteration streams; a loaded resume point of another epoch is dropped."""
        epoch = check_int("epoch", epoch)
        self.epoch = epoch
        if self._resume is not None and self._resume[0] != epoch:
            self._resume = None

    def _state_options(self) -> dict[str, Any]:
        return {"seed": self.seed, "episode_lengths": self.episode_lengths, "episode_ids": self.selected_episodes,
                "world_size": self.world_size, "batch_size": self.batch_size or 1, "pool_size": self.pool_size,
                "shuffle": self.shuffle, "frames_in_order": self.frames_in_order}

    def state_dict(self, *, step: int | None = None, samples_seen: int | None = None,
                   num_workers: int | None = None) -> dict[str, int]:
        """A few integers that let `load_state_dict` continue this epoch exactly.

        Give one position: `step`, the batches each rank's DataLoader has delivered since the
        current epoch began (a training loop's step within the epoch, the same on every rank), or
        `samples_seen`, the samples consumed over all ranks since the epoch began. `num_workers`
        is the DataLoader's; give it so a resume with another count is refused."""
        if (step is None) == (samples_seen is None):
            raise OptionError(f"step={step!r}, samples_seen={samples_seen!r}; pass exactly one of them "
                              "(step: batches each rank's DataLoader delivered this epoch)")
        known = None if num_workers is None else check_int("num_workers", num_workers)
        state = pool.make_state(epoch=self.epoch, samples_seen=0 if samples_seen is None else samples_seen,
                                step=step, num_workers=known or 0, **self._state_options())
        if known is None:
            state["num_workers"] = UNKNOWN_NUM_WORKERS
        else:  # refuse a position that does not exist now rather than at resume
            at = pool.check_state(state, num_workers=known, **self._state_options())
            self._resume_point(at, known)
        return state

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        """Continue from `state` at the next `iter()`: the stream resumes with the exact next sample.

        Refuses (ResumeError) a state from another dataset, episode selection, seed, pool size,
        shuffle setting or, mid-epoch, another world size / batch size / worker count."""
        if not isinstance(state, Mapping):
            raise ResumeError(
                f"state is a {type(state).__name__}; pass the dict StreamingDataset.state_dict() returned")
        state = dict(state)
        at = self._check_state(state, num_workers=max(state.get("num_workers", 0), 0))
        self.epoch = at.epoch
        self._resume = None if at.at_start else (at.epoch, state)

    def _check_state(self, state: dict[str, int], *, num_workers: int) -> pool.ResumeAt:
        if state.get("num_workers") == UNKNOWN_NUM_WORKERS:
            state = {**state, "num_workers": num_workers}
        mid_epoch = 0 < state.get("samples_seen", 0) < self.num_frames or state.get("step", -1) > 0
        if mid_epoch and self.batch_size is None and state.get("batch_size", 1) != 1:
            raise ResumeError(
                f"the checkpoint was taken mid-epoch with batch_size={state['batch_size']}; construct "
                f"StreamingDataset(..., batch_size={state['batch_size']}) and use that DataLoader batch size")
        return pool.check_state(state, num_workers=num_workers, **self._state_options())

    def _resume_point(self, at: pool.ResumeAt, num_workers: int) -> tuple[int, pool.ResumePoint]:
        """(epoch, per-consumer skips) for a checked position and this loader's worker count."""
        workers = max(num_workers, 1)
        if not at.at_start and workers > 1 and self.batch_size is None:
            raise ResumeError(
                f"resuming mid-epoch with num_workers={num_workers}: which worker served which sample depends "
                "on the DataLoader batch size; pass StreamingDataset(..., batch_size=<the DataLoader's "
                "batch_size>, or 1 for batch_size=None)")
        layout = {"world_size": self.world_size, "num_workers": num_workers, "batch_size": self.batch_size or 1}
        epoch = at.epoch
        counts = self._consumer_counts(epoch, num_workers)
        if at.step >= 0:
            if at.step == pool.epoch_steps(counts, **layout):  # the whole epoch was delivered
                epoch += 1
                return epoch, pool.resume_point(0, per_consumer_counts=self._consumer_counts(epoch, num_workers),
                                                **layout)
            return epoch, pool.resume_point_at_step(at.step, per_consumer_counts=counts, **layout)
        return epoch, pool.resume_point(at.samples_seen, per_consumer_counts=counts, **layout)

    # ------------------------------------------------------------------ iteration
    def __iter__(self) -> Iterator[dict[str, Any]]:
        # A generator, so a ResumeError surfaces at the first next(): inside a DataLoader worker that
        # is the path torch reports cleanly (an error in iter() leaves the worker hanging at shutdown).
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 0)
        if info is not None:
            freeze_inherited()  # before the worker's set-up, whose collections would walk the parent's heap
            self._iterations_here += 1
            if self._iterations_here > 1:
                raise OptionError(
                    "this DataLoader worker is iterating its copy of the StreamingDataset a second time: "
                    "DataLoader(persistent_workers=True) keeps the copy it started with, so set_epoch and "
                    "load_state_dict never reach it and the epoch would repeat. Use persistent_workers=False "
                    "(the default)")
        # Rows are read here, in the worker: an HTTP/s3 filesystem made before a fork refuses to run
        # in the child ("not fork-safe"), so the worker's copy of the metadata gets its own.
        self.meta.fs = for_this_process(self.meta.fs)
        if self.ahead is not None and workers_fill_cores():
            # Workers already fill the cores: a worker decoding its cameras on threads of its own only
            # adds switches between them (torch gives each worker one intra-op thread for the same reason).
            self.ahead.camera_threads = 1
        at = pool.ResumeAt(self.epoch, 0)
        if self._resume is not None and self._resume[0] == self.epoch:
            at = self._check_state(self._resume[1], num_workers=num_workers)
        epoch, point = self._resume_point(at, num_workers)
        consumer = point.consumer_for(self.rank, worker, num_workers)
        yield from self._stream(epoch, consumer, max(num_workers, 1), int(point.skip_counts[consumer]))

    def consumer_plan(self, *, consumer: int, n_consumers: int, epoch: int | None = None) -> pool.ConsumerPlan:
        """The integer schedule of one consumer (episode positions index `selected_episodes`)."""
        return pool.consumer_plan(self.episode_lengths, n_consumers=n_consumers, consumer=consumer,
                                  pool_size=self.pool_size, frames_in_order=self.frames_in_order,
                                  **self._schedule_options(self.epoch if epoch is None else epoch))

    def _stream(self, epoch: int, consumer: int, num_workers: int, skip: int) -> Iterator[dict[str, Any]]:
        plan = self.consumer_plan(consumer=consumer, n_consumers=self.world_size * num_workers, epoch=epoch)
        exhausted_at = dict(zip(plan.episodes.tolist(), plan.exhausted_at.tolist(), strict=True))
        prefetched = 0  # plan.episodes[:prefetched] were handed to the prefetch hint
        # Per admitted episode: its rows, the plan of its remaining samples (in emission order) and
        # the index in that plan of its next sample.
        live: dict[int, tuple[EpisodeRows, SamplePlan, Iterator[int]]] = {}
        samples = plan.samples
        ahead = self.ahead
        upcoming_frames = _frames_by_episode(samples[skip:])
        for position in range(skip, len(samples)):
            # Everything admitted by now plus the next pool_size admissions.
            wanted = int(np.searchsorted(plan.admitted_at, position, side="right")) + self.pool_size
            if wanted > prefetched and prefetched < len(plan.episodes):
                # On resume, episodes the skipped samples already finished are not fetched.
                unfinished = plan.exhausted_at[prefetched:wanted] > position
                upcoming = plan.episodes[prefetched:wanted][unfinished]
                if upcoming.size:
                    self.video.prefetch([int(e) for e in self.selected_episodes[upcoming]])
                prefetched = min(wanted, len(plan.episodes))
            episode_position = int(samples[position, 0])
            entry = live.get(episode_position)
            if entry is None:
                episode = self.selected_episodes[episode_position : episode_position + 1]
                episode_rows = load_episode_rows(self.meta, episode)
                # Every remaining sample of the episode, in emission order (its rows are its frames).
                episode_plan = self.builder.plan(episode_rows, upcoming_frames.pop(episode_position))
                if ahead is not None:
                    ahead.expect(int(episode[0]), [episode_plan.requests_at(i) for i in range(len(episode_plan))])
                entry = live[episode_position] = (episode_rows, episode_plan, itertools.count())
            episode_rows, episode_plan, next_use = entry
            yield self.builder.planned_sample(episode_rows, episode_plan, next(next_use))
            if exhausted_at[episode_position] == position + 1:
                del live[episode_position]

    def __repr__(self) -> str:
        return (f"StreamingDataset({self.root!r}, episodes={self.num_episodes}, frames={self.num_frames}, "
                f"pool_size={self.pool_size}, shuffle={self.shuffle}, seed={self.seed}, epoch={self.epoch}, "
                f"rank={self.rank}/{self.world_size})")


# Decoded frames the decode-ahead buffers of one consumer may hold, in bytes (uint8 frames). At 320x240
# AV1, pool 32, 2 workers with ring_collate, depth 4 (what this gives) ran 816 samples/s against 697 at
# depth 9 (128 MB; medians of 3 alternating `benchmarks/loader_cpu.py --decode-ahead` runs) and holds
# less: a smaller working set per worker, and decode calls of 4 frames cost little more than of 9.
DECODE_AHEAD_BYTES = 64 << 20
MIN_DECODE_AHEAD = 4  # below this the per-call cost (a seek, a keyframe) is paid every other sample


def ahead_depth(meta: Any, decode_ahead: int, pool_size: int) -> int:
    """`decode_ahead`, lowered so pool_size x cameras x depth frames fit in DECODE_AHEAD_BYTES, but not
    below MIN_DECODE_AHEAD (nor above what was asked).

    Memory grows with pool size times depth; a bigger pool mixes better, a deeper buffer amortises
    decode calls. With two cameras, pool 32: depth 4 at 320x240 and 640x480; pool 16: 9 at 320x240."""
    frame_bytes = 0
    for camera in meta.video_keys:
        size = declared_frame_size(meta, camera)
        frame_bytes += 3 * (size[0] * size[1] if size else 640 * 480)
    if not frame_bytes:
        return decode_ahead
    return min(decode_ahead, max(MIN_DECODE_AHEAD, DECODE_AHEAD_BYTES // (frame_bytes * pool_size)))


def _frames_by_episode(samples: np.ndarray) -> dict[int, np.ndarray]:
    """Episode position -> its frames among `samples` (rows of (episode position, frame)), in order."""
    if not len(samples):
        return {}
    order = np.argsort(samples[:, 0], kind="stable")
    episodes, frames = samples[order, 0], samples[order, 1]
    cuts = np.flatnonzero(np.diff(episodes)) + 1
    return dict(zip(episodes[np.r_[0, cuts]].tolist(), np.split(frames, cuts), strict=True))


def open_stream(root: str | Any, *, pipeline: Pipeline = "pool", **options: Any) -> IterableDataset:
    """`StreamingDataset` (pipeline="pool") or `DatasetsPipeline` (pipeline="datasets") with the same
    options: one entry point for notebooks and benchmarks that compare the two."""
    check_option("pipeline", pipeline, get_args(Pipeline))
    if pipeline == "pool":
        return StreamingDataset(root, **options)
    from lerobot_inspect.loaders.datasets_pipeline import DatasetsPipeline  # imports `datasets`: only when asked

    if "decode_ahead" in options:
        raise OptionError("decode_ahead is a pool option; the datasets pipeline decodes sample by sample")
    if options.pop("frames_in_order", False):
        raise OptionError("frames_in_order=True is a pool option; the datasets pipeline orders frames with "
                          "its frame buffer")
    return DatasetsPipeline(root, **options)
