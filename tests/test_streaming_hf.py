"""DatasetsPipeline (pipeline='datasets'): coverage, rank split, MapDataset parity, native resume, determinism."""

from __future__ import annotations

from itertools import islice

import datasets.config
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from data_fixtures import cached_dataset, decode_frame_code
from lerobot_inspect import MapDataset
from lerobot_inspect.errors import OptionError, ResumeError
from lerobot_inspect.format import DatasetMeta
from lerobot_inspect.loaders.datasets_pipeline import DatasetsPipeline
from lerobot_inspect.loaders.pool import randomness_fraction
from lerobot_inspect.probes.mixing import batch_episode_ids, reservoir_shuffle_order
from lerobot_inspect.probes.resume import resume_comparison

FPS = 30


@pytest.fixture(autouse=True)
def no_datasets_shutdown_sleep(monkeypatch):
    """`datasets` sleeps 5 s after every interleaved Parquet pass (SLEEP_TIME_ON_THREADS_SHUTDOWN, a
    pyarrow thread-teardown workaround). It is real cost for users but only slows these tests down;
    DataLoader workers are forked and inherit the patched value."""
    monkeypatch.setattr(datasets.config, "SLEEP_TIME_ON_THREADS_SHUTDOWN", 0)


def indices(pipeline: DatasetsPipeline) -> list[int]:
    return [ref.index for ref in pipeline.iter_frames()]


@pytest.mark.parametrize("fixture", ["tiny_root", "av1_multifile_root"])
@pytest.mark.parametrize("shuffle", [True, False])
def test_one_pass_yields_every_frame_once(fixture, shuffle, request):
    root = request.getfixturevalue(fixture)
    meta = DatasetMeta.open(root)
    order = indices(DatasetsPipeline(root, shuffle=shuffle, seed=5, pool_size=3, frame_buffer_size=8))
    assert sorted(order) == list(range(meta.total_frames))
    if not shuffle:
        assert order == list(range(meta.total_frames))
    else:
        assert order != list(range(meta.total_frames))


@pytest.mark.parametrize("num_workers", [0, 2])
def test_dataloader_yields_every_decoded_frame_once(tiny_root, num_workers):
    """In-process and with two workers (datasets gives each worker its own shards)."""
    meta = DatasetMeta.open(tiny_root)
    pipeline = DatasetsPipeline(tiny_root, seed=1, pool_size=2, frame_buffer_size=4)
    samples = list(DataLoader(pipeline, batch_size=None, num_workers=num_workers))
    assert sorted(int(s["index"]) for s in samples) == list(range(meta.total_frames))
    for sample in samples[:10]:
        code = decode_frame_code(sample[meta.video_keys[0]])
        assert (code.episode, code.frame) == (int(sample["episode_index"]), int(sample["frame_index"]))


@pytest.mark.parametrize("shuffle", [True, False])
def test_two_ranks_are_disjoint_whole_episodes_and_cover(av1_multifile_root, shuffle):
    meta = DatasetMeta.open(av1_multifile_root)
    per_rank = [indices(DatasetsPipeline(av1_multifile_root, shuffle=shuffle, seed=2, pool_size=3, rank=rank,
                                         world_size=2)) for rank in (0, 1)]
    assert set(per_rank[0]).isdisjoint(per_rank[1])
    assert sorted(per_rank[0] + per_rank[1]) == list(range(meta.total_frames))
    episode_of = np.repeat(np.arange(meta.num_episodes), meta.lengths)
    episodes = [set(episode_of[r].tolist()) for r in per_rank]
    assert episodes[0] and episodes[1] and episodes[0].isdisjoint(episodes[1])


def test_refuses_more_ranks_than_episodes(tiny_root):
    with pytest.raises(OptionError, match="world_size=9"):
        DatasetsPipeline(tiny_root, rank=0, world_size=9)
    with pytest.raises(OptionError, match="rank=2"):
        DatasetsPipeline(tiny_root, rank=2, world_size=2)


@pytest.mark.parametrize("return_uint8", [False, True])
def test_samples_equal_map_dataset_samples(av1_multifile_root, return_uint8):
    meta = DatasetMeta.open(av1_multifile_root)
    front, wrist = meta.video_keys[:2]
    delta_timestamps = {front: [-2 / FPS, 0.0, 1 / FPS], wrist: [1 / FPS], "action": [-1 / FPS, 0.0, 3 / FPS],
                        "index": [-1 / FPS, 0.0]}
    options = {"delta_timestamps": delta_timestamps, "return_uint8": return_uint8}
    reference = MapDataset(av1_multifile_root, **options)
    pipeline = DatasetsPipeline(av1_multifile_root, seed=4, pool_size=3, frame_buffer_size=8, **options)
    count = 0
    for sample in pipeline:
        absolute = int(sample["frame_index"]) + int(meta.dataset_from_index[int(sample["episode_index"])])
        expected = reference[absolute]
        assert list(sample) == list(expected)
        for key, value in expected.items():
            if isinstance(value, torch.Tensor):
                assert value.dtype == sample[key].dtype and torch.equal(value, sample[key]), (absolute, key)
            else:
                assert value == sample[key], (absolute, key)
        frames = sample[front]
        codes = [decode_frame_code(f) for f in frames]
        episode, frame = int(sample["episode_index"]), int(sample["frame_index"])
        length = int(meta.lengths[episode])
        wanted = np.clip(frame + np.array([-2, 0, 1]), 0, length - 1)
        assert [(c.episode, c.frame) for c in codes] == [(episode, int(w)) for w in wanted]
        assert sample[f"{front}_is_pad"].tolist() == [frame - 2 < 0, False, frame + 1 >= length]
        assert sample[wrist].ndim == 3  # LeRobot's squeeze(0) for a single delta
        count += 1
    assert count == meta.total_frames


def test_episode_selection_streams_only_those_episodes(av1_multifile_root):
    meta = DatasetMeta.open(av1_multifile_root)
    pipeline = DatasetsPipeline(av1_multifile_root, episodes=[6, 1, 2], seed=0, pool_size=2, decode_video=False)
    samples = list(pipeline)
    assert sorted(int(s["index"]) for s in samples) == sorted(
        np.concatenate([np.arange(meta.dataset_from_index[e], meta.dataset_to_index[e]) for e in (1, 2, 6)]).tolist())
    assert not any(key in samples[0] for key in meta.video_keys)
    assert pipeline.num_frames == len(samples)


def test_same_seed_same_order_other_seed_or_epoch_other_order(av1_multifile_root):
    def run(seed, epoch=0):
        pipeline = DatasetsPipeline(av1_multifile_root, seed=seed, pool_size=3, frame_buffer_size=8)
        pipeline.set_epoch(epoch)
        return indices(pipeline)

    first = run(11)
    assert run(11) == first
    assert run(12) != first
    assert run(11, epoch=1) != first and sorted(run(11, epoch=1)) == sorted(first)


def _resume_case(root, k, **options):
    full = indices(DatasetsPipeline(root, **options))
    interrupted = DatasetsPipeline(root, **options)
    prefix = [ref.index for ref in islice(interrupted.iter_frames(), k)]
    state = interrupted.state_dict()
    resumed = DatasetsPipeline(root, **options)
    resumed.load_state_dict(state)
    rest = indices(resumed)
    return full, prefix, rest, state


@pytest.mark.parametrize("k", [0, 1, 13, 40, 90, 150, 179, 180])
@pytest.mark.parametrize("shuffle", [True, False])
def test_native_resume_losses_and_repeats_are_what_resume_comparison_reports(av1_multifile_root, k, shuffle):
    """Native `datasets` resume drops buffers: measure, do not hide. The counts must equal a recount."""
    meta = DatasetMeta.open(av1_multifile_root)
    full, prefix, rest, state = _resume_case(av1_multifile_root, k, shuffle=shuffle, seed=3, pool_size=4,
                                             frame_buffer_size=16)
    assert state["samples_yielded"] == k
    result = resume_comparison(full, prefix, rest)
    combined = prefix + rest
    assert result.prefix_matches and result.unexpected == 0
    assert len(rest) == len(set(rest)), "one resumed pass yields a frame at most once"
    assert result.lost == meta.total_frames - len(set(combined))
    assert result.repeated == len(combined) - len(set(combined))
    if k in (0, meta.total_frames):
        assert result.exact  # a fresh state and an exhausted state resume exactly
    if not shuffle and 0 < k < meta.total_frames:
        # sequential: the checkpoint sits after the episode being read, so exactly its unread rest is lost
        episode = int(np.searchsorted(meta.dataset_to_index, full[k - 1], side="right"))
        assert (result.lost, result.repeated, result.reordered) == (int(meta.dataset_to_index[episode]) - k, 0, 0)
    print(f"shuffle={shuffle} k={k}: {result.as_dict()}")


def test_resume_refuses_a_foreign_state(tiny_root):
    state = DatasetsPipeline(tiny_root, seed=1).state_dict()
    with pytest.raises(ResumeError, match="seed: saved 1 vs now 2"):
        DatasetsPipeline(tiny_root, seed=2).load_state_dict(state)
    with pytest.raises(ResumeError, match="not from DatasetsPipeline"):
        DatasetsPipeline(tiny_root).load_state_dict({"epoch": 0})


@pytest.mark.slow
def test_mixing_on_200_episodes_against_lerobot_reservoir():
    """Shuffle randomness (distinct episodes per batch of 32 / 32) on 200 episodes of 8-16 frames."""
    root = cached_dataset(episodes=200, length_range=(8, 16), width=64, height=48)
    meta = DatasetMeta.open(root)
    episode_of = np.repeat(np.arange(meta.num_episodes), meta.lengths)
    ours = DatasetsPipeline(root, seed=0, pool_size=16, frame_buffer_size=16)
    pipeline_ids = np.array([ref.episode_index for ref in ours.iter_frames()])
    pipeline_fraction = randomness_fraction(batch_episode_ids(pipeline_ids, batch_size=32))
    reservoir = reservoir_shuffle_order(meta.total_frames, buffer_size=1000, seed=0)
    reservoir_fraction = randomness_fraction(batch_episode_ids(episode_of[reservoir], batch_size=32))
    sequential_fraction = randomness_fraction(batch_episode_ids(episode_of, batch_size=32))
    print(f"datasets pool16/buffer16 {pipeline_fraction:.3f}  lerobot reservoir1000 {reservoir_fraction:.3f}  "
          f"sequential {sequential_fraction:.3f}")
    assert sequential_fraction < pipeline_fraction < reservoir_fraction
