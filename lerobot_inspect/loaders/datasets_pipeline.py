"""`DatasetsPipeline`: LeRobot v3 streaming built from Hugging Face `datasets` stages, resume included.

This is the comparison pipeline: it streams the way LeRobot's streaming rework does, out of stock
`datasets` (5.2) operators, so the notebooks can show what that design gives and what it loses.

    load_dataset("parquet", data_files=<data files>, streaming=True)
      .reshard()                                one shard per Parquet row group = one episode
      split_dataset_by_node(strategy="shards")  whole episodes per rank (never split an episode)
      .batch(by_column="episode_index")         one example = one episode's rows
      .shuffle(seed, buffer_size=pool_size, max_buffer_input_shards=pool_size)
                                                shard order shuffled, pool_size episode streams
                                                interleaved into a buffer of pool_size episodes
      explode                                   every row of the episode -> a frame reference
      frame reservoir (frame_buffer_size)       mixes frames of the episodes in flight
      sample                                    windows/pads/task/video exactly as MapDataset

DataLoader workers need nothing from us: `datasets` gives each worker its own shards. Samples are
built with the same `windows`, `samples` and `VideoReader` code as `MapDataset`, so a frame yields the
same sample in both.

Resume follows the native `datasets` semantics, on purpose: `state_dict()` is the `datasets`
iterator state at the last episode this process pulled, plus a few integers. On
`load_state_dict` the stream continues after that episode with EMPTY buffers, so the episodes
waiting in the `datasets` shuffle buffer, the frames waiting in our frame reservoir and the
unyielded rest of the episode being exploded are lost. Samples can also come twice: with
shuffling, some checkpoints make `datasets` hand out again an episode already pulled (measured: 19
repeats out of 180 frames for one checkpoint on the 8-episode test fixture). The order after
resume differs too (the shuffle RNGs restart). Without shuffling, resume restarts at the next
episode boundary: exactly the rest of the current episode is lost. We do not patch any of this:
the resume notebook measures it (`probes.resume.resume_comparison`) against `pipeline="pool"`, which resumes exactly.
With DataLoader workers the main-process object never iterates, so its state is the initial one;
native resume with workers needs torchdata's StatefulDataLoader (not used here).

Cost to know about: `datasets` sleeps `datasets.config.SLEEP_TIME_ON_THREADS_SHUTDOWN` (5 s) at
the end of every interleaved Parquet pass (a pyarrow thread-teardown workaround), so each epoch,
each resumed pass and each early stop of this pipeline pays it. We leave that global alone.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import torch
from torch.utils.data import IterableDataset, get_worker_info

from lerobot_inspect.errors import DatasetFormatError, OptionError, ResumeError, check_int
from lerobot_inspect.loaders.rows import prepare_loader
from lerobot_inspect.loaders.samples import EpisodeRows
from lerobot_inspect.loaders.streaming import resolve_rank
from lerobot_inspect.video.remote import VideoAccess
from lerobot_inspect.video.source import FrameSource

__all__ = ["DEFAULT_FRAME_BUFFER_SIZE", "DatasetsPipeline", "FrameRef", "reservoir_shuffle"]

DEFAULT_FRAME_BUFFER_SIZE = 256
STATE_FORMAT = 1
T = TypeVar("T")


def reservoir_shuffle(items: Iterable[T], *, buffer_size: int, rng: np.random.Generator) -> Iterator[T]:
    """Reservoir shuffle as LeRobot's streaming dataset does it: fill `buffer_size` slots, then for each
    new item yield a random slot and put the item there; at the end yield the rest in random order.

    Memory is bounded by `buffer_size`, and an item can only leave after `buffer_size` later items
    arrived or the stream ended, so the mixing reaches about `buffer_size` items back and no further.
    Every item comes out exactly once."""
    check_int("buffer_size", buffer_size, minimum=1)
    buffer: list[T] = []
    for item in items:
        if len(buffer) < buffer_size:
            buffer.append(item)
            continue
        slot = int(rng.integers(buffer_size))
        yield buffer[slot]
        buffer[slot] = item
    for slot in rng.permutation(len(buffer)):
        yield buffer[int(slot)]


@dataclass(frozen=True)
class _Episode:
    """One episode's rows as pulled from `datasets`, converted once for all its frames."""

    episode_index: int
    rows: EpisodeRows


@dataclass(frozen=True)
class FrameRef:
    """A frame waiting in the reservoir: its episode's converted rows and its row inside them.

    The reservoir holds references, not decoded samples, so `frame_buffer_size` costs rows, not
    images; decoding happens when the frame leaves."""

    episode: _Episode
    row: int

    @property
    def episode_index(self) -> int:
        return self.episode.episode_index

    @property
    def index(self) -> int:
        return int(self.episode.rows.index[self.row])


class DatasetsPipeline(IterableDataset):
    """Stream LeRobot samples through Hugging Face `datasets` (reshard, split by node, batch by episode,
    buffered shuffle), with the native `datasets` resume semantics (buffers dropped; see the module doc).

    `episodes` restricts the stream to those episodes (order ignored, as LeRobot's filter does); their
    data files are the only ones opened, but unselected row groups of those files are still read and
    dropped, and they count as shards when ranks and workers are assigned. `shuffle=False` gives the
    sequential stream (episodes in file order, frames in order) with no buffer at all.

    `decode_video=False` leaves the camera keys (and their `_is_pad`) out of the samples, for
    probes that only need the order; `batch_size` is accepted for signature parity with
    `StreamingDataset` and unused (`datasets` has no batch-aware interleave).
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
        seed: int = 0,
        pool_size: int = 16,
        rank: int | None = None,
        world_size: int | None = None,
        image_transforms: Callable[[torch.Tensor], torch.Tensor] | None = None,
        frame_buffer_size: int = DEFAULT_FRAME_BUFFER_SIZE,
        batch_size: int | None = None,
        decode_video: bool = True,
        video_reader: FrameSource | None = None,
        video_access: VideoAccess = "auto",
    ) -> None:
        super().__init__()
        self.seed = check_int("seed", seed)
        self.pool_size = check_int("pool_size", pool_size, minimum=1)
        self.frame_buffer_size = check_int("frame_buffer_size", frame_buffer_size, minimum=1)
        self.rank, self.world_size = resolve_rank(rank, world_size)
        self.batch_size = None if batch_size is None else check_int("batch_size", batch_size, minimum=1)
        inputs = prepare_loader(root, episodes=episodes, delta_timestamps=delta_timestamps, tolerance_s=tolerance_s,
                                return_uint8=return_uint8, image_transforms=image_transforms,
                                video_reader=video_reader, video_access=video_access, decode_video=decode_video)
        self.meta, self.deltas, self.video, self.builder = inputs.meta, inputs.deltas, inputs.video, inputs.builder
        meta = self.meta
        self.root = meta.root
        self.selected_episodes = inputs.selected_episodes
        self._selected = set(self.selected_episodes.tolist())
        self.shuffle = bool(shuffle)
        self.decode_video = bool(decode_video)
        by_file = meta.episodes_in_data_file()
        self.data_files = [meta.url(rel) for rel, eps in by_file.items() if self._selected.intersection(eps.tolist())]
        self.num_row_groups = sum(len(eps) for rel, eps in by_file.items() if meta.url(rel) in self.data_files)
        if self.num_row_groups < self.world_size:
            raise OptionError(
                f"world_size={self.world_size} but {meta.root} has only {self.num_row_groups} episode row groups to "
                "split; each rank needs at least one whole episode. Use fewer ranks or StreamingDataset")
        self.epoch = 0
        self._hf: Any = None
        self._pending_state: dict[str, Any] | None = None
        self._samples_yielded = 0

    # ------------------------------------------------------------------ datasets stages
    def _build_hf(self) -> Any:
        """The `datasets` IterableDataset yielding one-row Arrow tables, one episode each."""
        import datasets
        from datasets.distributed import split_dataset_by_node

        try:
            stream = datasets.load_dataset("parquet", data_files=self.data_files, split="train", streaming=True)
        except Exception as exc:  # datasets raises a zoo of types (FileNotFoundError, DataFilesNotFoundError...)
            raise DatasetFormatError(
                f"{self.meta.url('data')}: `datasets` cannot open the data Parquet files ({exc}); "
                f"run `lerobot-inspect audit {self.meta.root}`") from exc
        stream = stream.reshard()
        if self.world_size > 1:
            stream = split_dataset_by_node(stream, rank=self.rank, world_size=self.world_size, strategy="shards")
        stream = stream.with_format("arrow").batch(by_column="episode_index")
        if self.shuffle:
            stream = stream.shuffle(seed=self.seed, buffer_size=self.pool_size,
                                    max_buffer_input_shards=self.pool_size)
        stream.set_epoch(self.epoch)
        return stream

    @property
    def num_frames(self) -> int:
        """Frames of the selected episodes over ALL ranks: which shards a rank gets is decided inside
        `datasets` at iteration time, so a per-rank count is only known after a pass."""
        return int(self.meta.lengths[self.selected_episodes].sum())

    def __len__(self) -> int:
        return self.num_frames

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle for another epoch (as `IterableDataset.set_epoch`): shard order and buffers change."""
        self.epoch = check_int("epoch", epoch)

    def _episodes(self, hf: Any) -> Iterator[_Episode]:
        for batch in hf:
            episode = self._convert(batch)
            if episode is not None:
                yield episode

    def _convert(self, batch: pa.Table) -> _Episode | None:
        columns = {name: batch.column(name).combine_chunks().flatten() for name in batch.column_names}
        table = pa.table(columns)
        episode_ids = table.column("episode_index").to_numpy()
        episode = int(episode_ids[0])
        if episode not in self._selected:
            return None
        meta = self.meta
        where = meta.url(meta.data_file(episode))
        length = int(meta.lengths[episode])
        ep_from = int(meta.dataset_from_index[episode])
        index = table.column("index").to_numpy().astype(np.int64)
        if len(index) != length or not np.array_equal(index, np.arange(ep_from, ep_from + length)):
            raise DatasetFormatError(
                f"{where}: episode {episode} arrived from `datasets` as {len(index)} rows (index "
                f"{index[:1].tolist()}..{index[-1:].tolist()}) but meta/episodes says {length} rows from {ep_from}; "
                "its rows span several row groups or are out of order, which this pipeline cannot window. "
                "Use StreamingDataset, or rewrite the file with one row group per episode")
        return _Episode(episode, EpisodeRows(table, meta, source=where))

    def _consumer(self) -> tuple[int, int]:
        info = get_worker_info()
        return (0, 1) if info is None else (info.id, info.num_workers)

    def _frames(self, episodes: Iterable[_Episode]) -> Iterator[FrameRef]:
        refs = (FrameRef(episode, row) for episode in episodes for row in range(len(episode.rows)))
        if not self.shuffle:
            return refs
        worker, _ = self._consumer()
        rng = np.random.default_rng([self.seed, self.epoch, self.rank, worker])
        return reservoir_shuffle(refs, buffer_size=self.frame_buffer_size, rng=rng)

    # ------------------------------------------------------------------ iteration
    def iter_frames(self) -> Iterator[FrameRef]:
        """The frame order alone (episode, index), through the same stages, without building samples:
        what the mixing probes measure, at the cost of Parquet reads only."""
        hf = self._build_hf()
        if self._pending_state is not None:
            if self._pending_state["datasets"] is not None:
                hf.load_state_dict(self._pending_state["datasets"])
            self._samples_yielded = int(self._pending_state["samples_yielded"])
            self._pending_state = None
        else:
            self._samples_yielded = 0
        self._hf = hf
        for ref in self._frames(self._episodes(hf)):
            self._samples_yielded += 1
            yield ref

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for ref in self.iter_frames():
            yield self.sample(ref)

    def sample(self, ref: FrameRef) -> dict[str, Any]:
        """The LeRobot sample of one frame, identical to `MapDataset` for the same frame."""
        return self.builder.sample(ref.episode.rows, ref.row)

    # ------------------------------------------------------------------ resume (native semantics)
    def state_dict(self, *, samples_seen: int | None = None) -> dict[str, Any]:
        """Native `datasets` state after the last sample THIS process yielded, with our identity fields.

        `samples_seen` (what training consumed, as `StreamingDataset.state_dict` takes it) is only
        recorded: the native state cannot be rebuilt from a count. Not exact: see the module docstring
        (buffers are dropped on resume). Before any iteration (and in the main process when DataLoader
        workers iterate) it is the state of a fresh epoch."""
        return {
            "format": STATE_FORMAT, "pipeline": "datasets", "seed": self.seed, "rank": self.rank,
            "world_size": self.world_size, "shuffle": self.shuffle, "pool_size": self.pool_size,
            "frame_buffer_size": self.frame_buffer_size, "num_frames": self.num_frames,
            "epoch": self.epoch, "samples_yielded": self._samples_yielded,
            "samples_seen": self._samples_yielded if samples_seen is None else int(samples_seen),
            "datasets": None if self._hf is None else copy.deepcopy(self._hf.state_dict()),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue the next iteration from `state` (once); refuse a state from another configuration."""
        if not isinstance(state, Mapping) or state.get("pipeline") != "datasets" or state.get("format") != STATE_FORMAT:
            raise ResumeError(f"this state dict is not from DatasetsPipeline format {STATE_FORMAT}: keys "
                              f"{sorted(state) if isinstance(state, Mapping) else type(state).__name__}")
        mine = {"seed": self.seed, "rank": self.rank, "world_size": self.world_size, "shuffle": self.shuffle,
                "pool_size": self.pool_size, "frame_buffer_size": self.frame_buffer_size,
                "num_frames": self.num_frames}
        different = {key: (state.get(key), value) for key, value in mine.items() if state.get(key) != value}
        if different:
            detail = ", ".join(f"{key}: saved {saved!r} vs now {now!r}" for key, (saved, now) in different.items())
            raise ResumeError(f"state dict from another configuration of {self.meta.root} ({detail}); "
                              "construct the pipeline with the saved values to resume")
        self.epoch = int(state["epoch"])
        self._pending_state = {"datasets": copy.deepcopy(state["datasets"]),
                               "samples_yielded": int(state["samples_yielded"])}

    def __repr__(self) -> str:
        return (f"DatasetsPipeline({self.root!r}, episodes={len(self.selected_episodes)}, shuffle={self.shuffle}, "
                f"pool_size={self.pool_size}, frame_buffer_size={self.frame_buffer_size}, "
                f"rank={self.rank}/{self.world_size})")
