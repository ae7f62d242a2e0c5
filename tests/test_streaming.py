"""StreamingDataset: map-style parity, exactly-once coverage over ranks x workers, exact resume."""

from __future__ import annotations

import gc
import itertools
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from data_fixtures import cached_dataset, decode_frame_code
from lerobot_inspect import MapDataset, OptionError, ResumeError
from lerobot_inspect.format import DatasetMeta
from lerobot_inspect.loaders.datasets_pipeline import DatasetsPipeline
from lerobot_inspect.loaders.streaming import StreamingDataset, open_stream, resolve_rank
from lerobot_inspect.video.reader import VideoReader

FPS = 30


def loader_indices(dataset, *, num_workers=0, batch_size=None):
    """Frame indices in the order a DataLoader delivers them, batch by batch."""
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers)
    if batch_size is None:
        return [[int(sample["index"])] for sample in loader]
    return [batch["index"].tolist() for batch in loader]


def flat(batches):
    return [i for batch in batches for i in batch]


def assert_same_sample(got, expected, where):
    assert list(got) == list(expected), where
    for key, value in expected.items():
        if isinstance(value, torch.Tensor):
            assert got[key].dtype == value.dtype and got[key].shape == value.shape, (where, key)
            assert torch.equal(got[key], value), (where, key)
        else:
            assert got[key] == value, (where, key)


def windows_for(meta):
    front, back = meta.video_keys[0], meta.video_keys[-1]
    return {front: [-2 / FPS, 0.0, 1 / FPS], back: [-4 / FPS, 4 / FPS], "observation.state": [-0.1, 0.0],
            "action": [0.0, 1 / FPS, 2 / FPS, 5 / FPS]}


# ---------------------------------------------------------------------- parity with MapDataset
@pytest.mark.parametrize("fixture", ["tiny_root", "av1_multifile_root", "h264_root"])
def test_every_streamed_sample_equals_the_map_style_sample(fixture, request):
    root = request.getfixturevalue(fixture)
    meta = DatasetMeta.open(root)
    delta_timestamps = windows_for(meta)
    mapped = MapDataset(root, delta_timestamps=delta_timestamps)
    row_of = {int(index): row for row, index in enumerate(mapped.index)}
    stream = StreamingDataset(root, delta_timestamps=delta_timestamps, seed=11, pool_size=3)
    seen = []
    for sample in stream:
        index = int(sample["index"])
        seen.append(index)
        assert_same_sample(sample, mapped[row_of[index]], f"{fixture} frame {index}")
        episode, frame = int(sample["episode_index"]), int(sample["frame_index"])
        camera = meta.video_keys[0]
        code = decode_frame_code(sample[camera][1])  # delta 0.0 of the first camera
        assert (code.camera, code.episode, code.frame) == (0, episode, frame)
    assert sorted(seen) == list(range(meta.total_frames))
    assert seen != sorted(seen), "shuffle=True streamed frames in dataset order"


def test_parity_holds_through_dataloader_workers_and_episode_selection(av1_multifile_root):
    episodes = [6, 1, 4]
    mapped = MapDataset(av1_multifile_root, episodes=episodes)
    row_of = {int(index): row for row, index in enumerate(mapped.index)}
    stream = StreamingDataset(av1_multifile_root, episodes=episodes, seed=2, pool_size=2)
    got = list(DataLoader(stream, batch_size=None, num_workers=2))
    assert sorted(int(s["index"]) for s in got) == sorted(row_of)
    for sample in got:
        assert_same_sample(sample, mapped[row_of[int(sample["index"])]], f"frame {int(sample['index'])}")


def test_unshuffled_stream_is_dataset_order(tiny_root):
    meta = DatasetMeta.open(tiny_root)
    got = flat(loader_indices(StreamingDataset(tiny_root, shuffle=False, decode_video=False)))
    assert got == list(range(meta.total_frames))


def test_options_pass_through_like_map_style(tiny_root):
    meta = DatasetMeta.open(tiny_root)
    stream = StreamingDataset(tiny_root, return_uint8=True, image_transforms=lambda f: f[..., :4, :4],
                              episodes=[2], shuffle=False)
    mapped = MapDataset(tiny_root, return_uint8=True, image_transforms=lambda f: f[..., :4, :4], episodes=[2])
    first = next(iter(stream))
    assert_same_sample(first, mapped[0], "first frame of episode 2")
    assert first[meta.video_keys[0]].dtype == torch.uint8 and first[meta.video_keys[0]].shape[-2:] == (4, 4)
    no_video = next(iter(StreamingDataset(tiny_root, episodes=[2], shuffle=False, decode_video=False,
                                          delta_timestamps={meta.video_keys[0]: [0.0], "action": [0.0]})))
    assert not set(meta.video_keys) & set(no_video) and f"{meta.video_keys[0]}_is_pad" not in no_video
    assert "action_is_pad" in no_video and int(no_video["index"]) == int(meta.dataset_from_index[2])


# ---------------------------------------------------------------------- consumers
@pytest.mark.parametrize("num_workers", [0, 1, 2])
@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_each_frame_once_over_ranks_and_workers(tiny_root, world_size, num_workers):
    meta = DatasetMeta.open(tiny_root)
    per_rank = []
    for rank in range(world_size):
        dataset = StreamingDataset(tiny_root, rank=rank, world_size=world_size, seed=4, pool_size=2,
                                   decode_video=False)
        indices = flat(loader_indices(dataset, num_workers=num_workers))
        assert len(indices) == len(dataset), "len() disagrees with what the rank yields"
        per_rank.append(indices)
    counts = Counter(itertools.chain.from_iterable(per_rank))
    assert sorted(counts) == list(range(meta.total_frames)) and set(counts.values()) == {1}
    episode_of = np.repeat(np.arange(meta.num_episodes), meta.lengths)
    ranks_of_episode = [{r for r, got in enumerate(per_rank) if any(episode_of[i] == e for i in got)}
                        for e in range(meta.num_episodes)]
    assert all(len(ranks) == 1 for ranks in ranks_of_episode), "an episode was split across ranks"


def test_workers_split_the_rank_without_overlap(tiny_root):
    dataset = StreamingDataset(tiny_root, seed=4, pool_size=2, decode_video=False)
    plans = [dataset.consumer_plan(consumer=c, n_consumers=3) for c in range(3)]
    owned = [set(plan.episodes.tolist()) for plan in plans]
    assert set.union(*owned) == set(range(dataset.num_episodes))
    assert sum(map(len, owned)) == dataset.num_episodes
    for plan, episodes in zip(plans, owned, strict=True):
        assert set(plan.samples[:, 0].tolist()) == episodes


def test_runs_repeat_and_epochs_and_seeds_differ(tiny_root):
    def run(seed=0, epoch=0, num_workers=0):
        dataset = StreamingDataset(tiny_root, seed=seed, pool_size=3, decode_video=False)
        dataset.set_epoch(epoch)
        return flat(loader_indices(dataset, num_workers=num_workers))

    first = run()
    assert run() == first
    assert run(num_workers=2) == run(num_workers=2) != first
    assert sorted(run(epoch=1)) == sorted(first) and run(epoch=1) != first
    assert run(seed=1) != first


def test_pool_mixes_episodes_within_a_batch(tiny_root):
    meta = DatasetMeta.open(tiny_root)
    episode_of = np.repeat(np.arange(meta.num_episodes), meta.lengths)

    def distinct_per_batch(pool_size):
        batches = loader_indices(StreamingDataset(tiny_root, pool_size=pool_size, decode_video=False), batch_size=8)
        return np.mean([len(set(episode_of[batch])) for batch in batches])

    assert distinct_per_batch(1) < 1.5 < 3 < distinct_per_batch(5)


def test_rank_comes_from_arguments_then_environment(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert resolve_rank() == (0, 1)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert resolve_rank() == (1, 3)
    assert resolve_rank(0, 2) == (0, 2)
    with pytest.raises(OptionError, match="rank=2"):
        resolve_rank(2, 2)
    with pytest.raises(OptionError, match="both or neither"):
        resolve_rank(1)
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(OptionError, match="RANK"):
        resolve_rank()


def test_bad_options_are_refused(tiny_root):
    with pytest.raises(OptionError, match="pipeline='arrow'"):
        open_stream(tiny_root, pipeline="arrow")
    with pytest.raises(OptionError, match="epoch"):
        StreamingDataset(tiny_root).set_epoch(10**30)
    with pytest.raises(OptionError, match="pool_size"):
        StreamingDataset(tiny_root, pool_size=0)
    with pytest.raises(OptionError, match="outside"):
        StreamingDataset(tiny_root, episodes=[0, 9])
    with pytest.raises(OptionError, match="not_a_key"):
        StreamingDataset(tiny_root, delta_timestamps={"not_a_key": [0.0]})


def test_open_stream_builds_either_pipeline_from_the_same_options(tiny_root):
    pool = open_stream(tiny_root, pipeline="pool", shuffle=False, decode_video=False, episodes=[1])
    hf = open_stream(tiny_root, pipeline="datasets", shuffle=False, decode_video=False, episodes=[1])
    assert isinstance(pool, StreamingDataset) and isinstance(hf, DatasetsPipeline)
    meta = DatasetMeta.open(tiny_root)
    expected = list(range(int(meta.dataset_from_index[1]), int(meta.dataset_to_index[1])))
    assert [int(s["index"]) for s in pool] == expected
    assert [int(s["index"]) for s in hf] == expected
    with pytest.raises(OptionError, match="frames_in_order"):
        open_stream(tiny_root, pipeline="datasets", frames_in_order=True)


# ---------------------------------------------------------------------- decoding and I/O
class CountingDecoder:
    """A real TorchCodec decoder that records the frame indices it is asked to decode."""

    def __init__(self, decoder, log):
        self.decoder, self.log = decoder, log

    def __len__(self):
        return len(self.decoder)

    @property
    def metadata(self):
        return self.decoder.metadata

    def get_frames_at(self, indices):
        self.log.append(list(indices))
        return self.decoder.get_frames_at(indices=indices)

    def get_frames_in_range(self, start, stop):
        self.log.append(list(range(start, stop)))
        return self.decoder.get_frames_in_range(start=start, stop=stop)


class PrefetchRecordingReader(VideoReader):
    """A real reader with the byte-cache reader's prefetch hook, recording what it was asked for."""

    def __init__(self, meta, events):
        super().__init__(meta)
        self.events = events

    def prefetch(self, episodes):
        self.events.append(("prefetch", list(episodes)))


def counting_reader(meta, log, *, prefetched=None):
    reader = VideoReader(meta) if prefetched is None else PrefetchRecordingReader(meta, prefetched)
    source = reader.episode_source

    def counted(episode, camera):
        key, open_decoder, pts = source(episode, camera)
        return key, lambda: CountingDecoder(open_decoder(), log), pts

    reader.episode_source = counted
    return reader


@pytest.fixture(scope="session")
def long_root() -> Path:
    """Two 180-200 frame episodes, one camera: room for a 150-frame window away from the edges."""
    return cached_dataset(episodes=2, length_range=(180, 200), cameras=1, episodes_per_file=2, seed=4)


def test_long_window_decodes_each_needed_frame_once(long_root):
    meta = DatasetMeta.open(long_root)
    camera = meta.video_keys[0]
    offsets = np.arange(-100, 50)  # 150 deltas
    delta_timestamps = {camera: (offsets / FPS).tolist()}
    log = []
    stream = StreamingDataset(long_root, delta_timestamps=delta_timestamps, seed=5, frames_in_order=False,
                              decode_ahead=0, video_reader=counting_reader(meta, log))
    mapped = MapDataset(long_root, delta_timestamps=delta_timestamps)
    unpadded = 0
    for sample in itertools.islice(stream, 12):
        episode, frame = int(sample["episode_index"]), int(sample["frame_index"])
        length = int(meta.lengths[episode])
        wanted = frame + offsets
        expected_pad = (wanted < 0) | (wanted >= length)
        assert sample[f"{camera}_is_pad"].tolist() == expected_pad.tolist()
        unpadded += not expected_pad.any()
        assert_same_sample(sample, mapped[int(sample["index"])], f"frame {int(sample['index'])}")
        codes = [decode_frame_code(f) for f in sample[camera]]
        assert [(c.episode, c.frame) for c in codes] == [(episode, int(w)) for w in np.clip(wanted, 0, length - 1)]
        requests = log[-1]
        assert len(log) == 1, "one decoder call per camera per sample"
        assert len(requests) == len(set(requests)) == len(np.unique(np.clip(wanted, 0, length - 1)))
        log.clear()
    assert unpadded >= 2, "no sample had its whole window inside the episode; pick another seed"


def test_prefetch_hook_sees_each_episode_before_its_first_sample(av1_multifile_root):
    meta = DatasetMeta.open(av1_multifile_root)
    events = []
    stream = StreamingDataset(av1_multifile_root, seed=3, pool_size=2, episodes=[0, 2, 3, 5, 7],
                              video_reader=PrefetchRecordingReader(meta, events))
    for sample in stream:
        events.append(("sample", int(sample["episode_index"])))
    prefetched = [e for kind, eps in events if kind == "prefetch" for e in eps]
    assert sorted(prefetched) == [0, 2, 3, 5, 7], "each episode is prefetched exactly once"
    for position, (kind, episode) in enumerate(events):
        if kind == "sample":
            assert any(k == "prefetch" and episode in eps for k, eps in events[:position])
    assert events[0][0] == "prefetch" and len(events[0][1]) == 4  # the pool plus the next pool_size admissions


def test_resume_skips_episodes_without_reading_or_decoding_them(av1_multifile_root, tmp_path):
    """Episodes consumed before the checkpoint are never opened: deleting their files changes nothing."""
    root = tmp_path / "copy"
    shutil.copytree(av1_multifile_root, root)
    meta = DatasetMeta.open(root)
    full = StreamingDataset(root, shuffle=False)
    expected = [int(s["index"]) for s in full]
    first_two = int(meta.lengths[:2].sum())
    (root / meta.data_file(0)).unlink()  # holds episodes 0 and 1 only
    log, prefetched = [], []
    resumed = StreamingDataset(root, shuffle=False, pool_size=2,
                               video_reader=counting_reader(meta, log, prefetched=prefetched))
    resumed.load_state_dict(resumed.state_dict(samples_seen=first_two))
    got = [int(s["index"]) for s in resumed]
    assert got == expected[first_two:]
    assert sum(len(call) for call in log) == 2 * len(got), "decoded frames beyond the two cameras of each sample"
    assert sorted(e for _, eps in prefetched for e in eps) == list(range(2, meta.num_episodes))


# ---------------------------------------------------------------------- exact resume
@pytest.mark.parametrize("num_workers", [0, 2])
def test_resume_after_every_sample(tiny_root, num_workers):
    meta = DatasetMeta.open(tiny_root)
    # Three episodes (88 frames) keep the O(n^2) check fast; the slow variant runs all five.
    episodes = [0, 3, 4]

    def make():
        return StreamingDataset(meta, seed=7, pool_size=2, batch_size=1, decode_video=False, episodes=episodes)

    full = flat(loader_indices(make(), num_workers=num_workers))
    positions = range(len(full)) if num_workers == 0 else range(0, len(full), 3)
    for k in positions:
        dataset = make()
        dataset.load_state_dict(make().state_dict(samples_seen=k))
        assert flat(loader_indices(dataset, num_workers=num_workers)) == full[k:], (
            f"resume after {k} samples repeated or lost frames")


def test_frames_in_order_streams_each_episode_forward_and_resumes_exactly(tiny_root):
    meta = DatasetMeta.open(tiny_root)

    def make():
        return StreamingDataset(meta, seed=3, pool_size=3, batch_size=1, frames_in_order=True)

    samples = list(make())
    frames_by_episode = {}
    for sample in samples:
        frames_by_episode.setdefault(int(sample["episode_index"]), []).append(int(sample["frame_index"]))
    assert all(frames == list(range(len(frames))) for frames in frames_by_episode.values())
    assert sorted(frames_by_episode) == list(range(meta.num_episodes))
    episodes = [int(s["episode_index"]) for s in samples]
    assert episodes != sorted(episodes), "episodes must still interleave"
    full = [int(s["index"]) for s in samples]
    for k in (1, 17, 60, len(full) - 1):
        resumed = make()
        resumed.load_state_dict(make().state_dict(samples_seen=k))
        assert [int(s["index"]) for s in resumed] == full[k:]
    shuffled_frames = StreamingDataset(meta, seed=3, pool_size=3, batch_size=1, frames_in_order=False)
    with pytest.raises(ResumeError, match="frames_in_order"):
        shuffled_frames.load_state_dict(make().state_dict(samples_seen=5))
        next(iter(shuffled_frames))


def resume_every_step(root, *, world_size, num_workers, batch_size, stride=1, **options):
    """Save after every `stride`-th step of lock-step ranks, reload on fresh datasets, compare tails."""
    meta = DatasetMeta.open(root)

    def make(rank):
        return StreamingDataset(meta, rank=rank, world_size=world_size, batch_size=batch_size, **options)

    full = [loader_indices(make(rank), num_workers=num_workers, batch_size=batch_size) for rank in range(world_size)]
    steps = max(map(len, full))
    samples_seen = 0
    for step in range(steps):
        if step % stride == 0:
            by_samples = make(0).state_dict(samples_seen=samples_seen, num_workers=num_workers)
            by_step = make(0).state_dict(step=step)  # what a training loop has; worker count unknown
            for rank in range(world_size):
                for state in (by_samples, by_step):
                    dataset = make(rank)
                    dataset.load_state_dict(state)
                    got = loader_indices(dataset, num_workers=num_workers, batch_size=batch_size)
                    assert got == full[rank][step:], (
                        f"rank {rank} resumed after step {step} (samples_seen={samples_seen}, state={state}) "
                        "repeated or lost batches")
        samples_seen += sum(len(batches[step]) for batches in full if step < len(batches))
    return full


@pytest.mark.parametrize(("world_size", "num_workers", "batch_size"), [(2, 0, 3), (1, 2, 4), (2, 2, 2)])
def test_resume_after_every_step_of_lockstep_ranks(tiny_root, world_size, num_workers, batch_size):
    stride = 1 if num_workers == 0 else 5
    resume_every_step(tiny_root, world_size=world_size, num_workers=num_workers, batch_size=batch_size,
                      stride=stride, seed=3, pool_size=2, decode_video=False)


@pytest.mark.slow
@pytest.mark.parametrize(("world_size", "num_workers", "batch_size"),
                         [(1, 0, 1), (1, 2, 1), (2, 2, 1), (2, 1, 3), (2, 2, 3), (1, 2, 5)])
def test_resume_after_every_step_exhaustive(tiny_root, world_size, num_workers, batch_size):
    resume_every_step(tiny_root, world_size=world_size, num_workers=num_workers, batch_size=batch_size,
                      seed=9, pool_size=2, decode_video=False)


@pytest.mark.slow
def test_resume_with_video_on_uneven_episodes(av1_multifile_root):
    resume_every_step(av1_multifile_root, world_size=2, num_workers=2, batch_size=4, stride=3, seed=1, pool_size=2)


def test_resume_at_the_end_of_an_epoch_starts_the_next(tiny_root):
    dataset = StreamingDataset(tiny_root, seed=7, decode_video=False)
    next_epoch = StreamingDataset(tiny_root, seed=7, decode_video=False)
    next_epoch.set_epoch(1)
    dataset.load_state_dict(dataset.state_dict(samples_seen=dataset.num_frames))
    assert dataset.epoch == 1
    assert flat(loader_indices(dataset)) == flat(loader_indices(next_epoch))


def test_set_epoch_drops_a_resume_point_of_another_epoch(tiny_root):
    dataset = StreamingDataset(tiny_root, seed=7, decode_video=False)
    full = flat(loader_indices(dataset))
    dataset.load_state_dict(dataset.state_dict(samples_seen=10))
    dataset.set_epoch(0)
    assert flat(loader_indices(dataset)) == full[10:]
    dataset.set_epoch(1)
    assert len(flat(loader_indices(dataset))) == len(full)


def worker_errors(dataset, *, num_workers):
    """The ResumeErrors every DataLoader worker raised (at least one expected).

    The loader is drained to its end: abandoning a multi-worker iterator right after a worker error
    leaves torch waiting 5 s per worker when it is collected."""
    errors = []
    iterator = iter(DataLoader(dataset, batch_size=4, num_workers=num_workers))
    while True:
        try:
            next(iterator)
        except StopIteration:
            break
        except ResumeError as exc:
            errors.append(exc)
    assert len(errors) == num_workers, "each worker should refuse the state"
    return errors


def test_foreign_or_ambiguous_states_are_refused(tiny_root):
    dataset = StreamingDataset(tiny_root, seed=7, batch_size=4)
    state = dataset.state_dict(samples_seen=8)
    with pytest.raises(ResumeError, match="seed"):
        StreamingDataset(tiny_root, seed=8, batch_size=4).load_state_dict(state)
    with pytest.raises(ResumeError, match="another dataset or episode selection"):
        StreamingDataset(tiny_root, seed=7, batch_size=4, episodes=[0, 1]).load_state_dict(state)
    with pytest.raises(ResumeError, match="world_size"):
        StreamingDataset(tiny_root, seed=7, batch_size=4, rank=0, world_size=2).load_state_dict(state)
    with pytest.raises(ResumeError, match="batch_size=4"):
        StreamingDataset(tiny_root, seed=7).load_state_dict(state)
    with pytest.raises(ResumeError, match="inside a batch"):
        dataset.state_dict(samples_seen=6, num_workers=2)
    recorded = dataset.state_dict(samples_seen=8, num_workers=1)
    resumed = StreamingDataset(tiny_root, seed=7, batch_size=4, decode_video=False)
    resumed.load_state_dict(recorded)
    assert all("num_workers=2 but the checkpoint" in str(e) for e in worker_errors(resumed, num_workers=2))
    unsized = StreamingDataset(tiny_root, seed=7, decode_video=False)
    unsized.load_state_dict(unsized.state_dict(samples_seen=8))
    assert all("DataLoader batch size" in str(e) for e in worker_errors(unsized, num_workers=2))
    with pytest.raises(ResumeError, match="format"):
        dataset.load_state_dict({"format": 99})
    # An epoch boundary may change the layout: the next epoch is recomputed for it.
    boundary = StreamingDataset(tiny_root, seed=7, batch_size=4).state_dict(samples_seen=0)
    StreamingDataset(tiny_root, seed=7, batch_size=2, rank=1, world_size=2).load_state_dict(boundary)


def test_resume_by_step_at_the_end_of_an_epoch_starts_the_next(tiny_root):
    """A training loop checkpoints after its last step (short tail batches included): the resumed
    loader starts the next epoch, whatever the worker count."""
    for num_workers in (0, 2):
        dataset = StreamingDataset(tiny_root, seed=7, batch_size=4, decode_video=False)
        steps = int(dataset.rank_batch_counts(num_workers=num_workers).max())
        resumed = StreamingDataset(tiny_root, seed=7, batch_size=4, decode_video=False)
        resumed.load_state_dict(dataset.state_dict(step=steps))
        next_epoch = StreamingDataset(tiny_root, seed=7, batch_size=4, decode_video=False)
        next_epoch.set_epoch(1)
        assert (loader_indices(resumed, num_workers=num_workers, batch_size=4)
                == loader_indices(next_epoch, num_workers=num_workers, batch_size=4))
    with pytest.raises(ResumeError, match="past this epoch"):
        resumed = StreamingDataset(tiny_root, seed=7, batch_size=4, decode_video=False)
        resumed.load_state_dict(dataset.state_dict(step=steps + 1))
        next(iter(resumed))
    with pytest.raises(OptionError, match="exactly one"):
        dataset.state_dict(step=1, samples_seen=4)


def test_a_state_from_another_selection_of_the_same_lengths_is_refused():
    root = cached_dataset(episodes=4, length_range=(6, 6), cameras=0, seed=5)
    meta = DatasetMeta.open(root)
    assert len(set(meta.lengths.tolist())) == 1, "the selections must have the same lengths"
    saved = StreamingDataset(meta, episodes=[0, 1], seed=1, decode_video=False).state_dict(samples_seen=2)
    other = StreamingDataset(meta, episodes=[2, 3], seed=1, decode_video=False)
    with pytest.raises(ResumeError, match="episode selection"):
        other.load_state_dict(saved)
    StreamingDataset(meta, episodes=[0, 1], seed=1, decode_video=False).load_state_dict(saved)


def test_persistent_workers_are_refused_instead_of_repeating_an_epoch(tiny_root):
    dataset = StreamingDataset(tiny_root, seed=7, decode_video=False)
    loader = DataLoader(dataset, batch_size=4, num_workers=1, persistent_workers=True)
    first_epoch = [int(i) for batch in loader for i in batch["index"]]
    assert sorted(first_epoch) == list(range(dataset.num_frames))
    dataset.set_epoch(1)
    with pytest.raises(OptionError, match="persistent_workers"):
        list(loader)


def test_absurd_values_in_a_state_are_refused(tiny_root):
    dataset = StreamingDataset(tiny_root, seed=7, decode_video=False)
    state = dataset.state_dict(samples_seen=4)
    for key, value in (("epoch", 2**70), ("samples_seen", 1.5), ("seed", True), ("step", "3")):
        with pytest.raises(ResumeError, match=key):
            StreamingDataset(tiny_root, seed=7, decode_video=False).load_state_dict({**state, key: value})


class _FreezeCounts(torch.utils.data.Dataset):
    """Each item is the GC's frozen-object count in the process that built a sample of `inner`."""

    def __init__(self, inner):
        self.inner = inner

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, i):
        self.inner[i]
        return gc.get_freeze_count()


class _StreamFreezeCounts(torch.utils.data.IterableDataset):
    def __init__(self, inner):
        self.inner = inner

    def __iter__(self):
        for _ in self.inner:
            yield gc.get_freeze_count()


def test_dataloader_workers_freeze_what_they_inherit_and_the_main_process_does_not(tiny_root):
    """A worker's GC must not walk (and copy-on-write) the parent's heap on every full collection:
    the first sample a forked worker builds freezes what it inherited; the main process is left alone."""
    assert gc.get_freeze_count() == 0
    for dataset in (_FreezeCounts(MapDataset(tiny_root)), _StreamFreezeCounts(StreamingDataset(tiny_root))):
        loader = DataLoader(dataset, batch_size=None, num_workers=2, multiprocessing_context="fork")
        counts = [int(c) for c in itertools.islice(loader, 20)]
        assert min(counts) > 10_000, counts  # torch, numpy, pyarrow and our objects, frozen in each worker
        assert gc.get_freeze_count() == 0
    for _ in itertools.islice(StreamingDataset(tiny_root), 5):
        pass
    assert gc.get_freeze_count() == 0
