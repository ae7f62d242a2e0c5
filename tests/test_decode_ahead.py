"""Decode-ahead: the pure plan (every use served, each frame decoded once, dropped after its last
use) and, on real files, the stream decoding each needed frame once in batches with samples equal to
MapDataset's."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from test_streaming import CountingDecoder, assert_same_sample

from lerobot_inspect.format import DatasetMeta
from lerobot_inspect.loaders.map_dataset import MapDataset
from lerobot_inspect.loaders.streaming import StreamingDataset
from lerobot_inspect.video.ahead import DecodeAhead, ahead_plan
from lerobot_inspect.video.reader import VideoReader

uses_strategy = st.lists(st.lists(st.integers(0, 40), min_size=1, max_size=6), min_size=1, max_size=40)


def simulate(uses, depth):
    """Run the plan as DecodeAhead does: (decode batches, max frames held)."""
    plan = ahead_plan([np.array(u) for u in uses])
    decoded, held, batches, most = 0, set(), [], 0
    for use, wanted in enumerate(uses):
        start, stop = plan.next_batch(decoded, use, depth)
        if stop > start:
            batches.append(sorted(plan.frames[start:stop].tolist()))
            held.update(plan.frames[start:stop].tolist())
            decoded = stop
        assert set(wanted) <= held, f"use {use} needs {wanted}, buffer holds {sorted(held)}"
        most = max(most, len(held))
        held -= set(plan.frames[plan.last_use == use].tolist())
    return plan, batches, most, held


@settings(max_examples=300, deadline=None)
@given(uses=uses_strategy, depth=st.integers(1, 20))
def test_plan_serves_every_use_decodes_each_frame_once_and_drops_after_last_use(uses, depth):
    plan, batches, _, held = simulate(uses, depth)
    flat = [f for batch in batches for f in batch]
    assert sorted(flat) == sorted(set(itertools.chain.from_iterable(uses))), "each needed frame decoded once"
    assert not held, "every frame is dropped after its last use"
    assert (np.diff(plan.first_use) >= 0).all() and (plan.last_use >= plan.first_use).all()
    for frame, first, last in zip(plan.frames, plan.first_use, plan.last_use, strict=True):
        users = [k for k, u in enumerate(uses) if frame in u]
        assert (first, last) == (users[0], users[-1])


@settings(max_examples=200, deadline=None)
@given(length=st.integers(1, 60), depth=st.integers(1, 20), window=st.integers(0, 3))
def test_in_order_windows_hold_at_most_depth_plus_window_frames(length, depth, window):
    """Frames in order with a window [-window, 0]: batches are runs and the buffer stays small."""
    uses = [list(range(max(0, f - window), f + 1)) for f in range(length)]
    _, batches, most, _ = simulate(uses, depth)
    assert all(batch == list(range(batch[0], batch[-1] + 1)) for batch in batches)
    assert len(batches) == -(-length // depth)
    assert most <= depth + window


def reader_with_logged_decoders(meta):
    """(a real VideoReader, logs): each decoder it opens logs the frames asked of it, one log per decoder."""
    logs = []
    reader = VideoReader(meta)
    source = reader.episode_source

    def counted(episode, camera):
        key, open_decoder, pts = source(episode, camera)

        def opened():
            logs.append([])
            return CountingDecoder(open_decoder(), logs[-1])

        return key, opened, pts

    reader.episode_source = counted
    return reader, logs


def test_stream_decodes_each_frame_once_in_batches_and_matches_map(av1_multifile_root):
    meta = DatasetMeta.open(av1_multifile_root)
    reader, logs = reader_with_logged_decoders(meta)
    fps = meta.fps
    delta_timestamps = {camera: [-1 / fps, 0.0] for camera in meta.video_keys}
    stream = StreamingDataset(meta, delta_timestamps=delta_timestamps, seed=3, pool_size=3, decode_ahead=4,
                              video_reader=reader)
    assert isinstance(stream.ahead, DecodeAhead) and stream.video is reader
    mapped = MapDataset(av1_multifile_root, delta_timestamps=delta_timestamps)
    samples = list(stream)
    assert len(samples) == int(meta.lengths.sum())
    for sample in samples:
        assert_same_sample(sample, mapped[int(sample["index"])], f"frame {int(sample['index'])}")
    log = [call for decoder_log in logs for call in decoder_log]
    decoded = [i for call in log for i in call]
    n_files = sum(len(meta.video_files(camera)) for camera in meta.video_keys)
    assert len(decoded) == int(meta.lengths.sum()) * len(meta.video_keys), "each frame of each camera decoded once"
    assert len(log) < len(samples) * len(meta.video_keys) / 2, "frames are decoded in batches"
    assert stream.ahead.held_frames() == 0 and n_files


def test_ahead_falls_back_to_direct_decoding_for_unannounced_requests(tiny_root):
    meta = DatasetMeta.open(tiny_root)
    reader = VideoReader(meta, return_uint8=True)
    ahead = DecodeAhead(reader, depth=4)
    camera = meta.video_keys[0]
    planned = [{camera: np.array([k / meta.fps])} for k in range(5)]
    ahead.expect(0, planned)
    first = ahead.frames_for(0, planned[0])[camera]
    assert first.equal(reader.frames(0, camera, planned[0][camera]))
    other = {camera: np.array([3 / meta.fps])}  # not the announced second sample
    assert ahead.frames_for(0, other)[camera].equal(reader.frames(0, camera, other[camera]))
    assert ahead.held_frames() == 0, "a broken plan is dropped with its buffer"


def test_long_gop_episodes_get_decoders_of_their_own_that_only_move_forward(h264_root):
    # GOP 12 with B-frames, 4 episodes per MP4, a pool of 3: the pool interleaves episodes of one file.
    # A shared decoder would seek back to a keyframe and re-decode at every switch; each episode gets
    # its own decoder, whose calls only move forward, and it is closed when the episode ends.
    meta = DatasetMeta.open(h264_root)
    reader, logs = reader_with_logged_decoders(meta)
    fps = meta.fps
    delta_timestamps = {camera: [-1 / fps, 0.0] for camera in meta.video_keys}
    stream = StreamingDataset(meta, delta_timestamps=delta_timestamps, seed=1, pool_size=3, decode_ahead=4,
                              video_reader=reader)
    mapped = MapDataset(h264_root, delta_timestamps=delta_timestamps)
    samples = list(stream)
    for sample in samples:
        assert_same_sample(sample, mapped[int(sample["index"])], f"frame {int(sample['index'])}")
    walks = [log for log in logs if len(log) > 1]
    assert len(logs) >= meta.num_episodes * len(meta.video_keys), "a decoder per (episode, camera)"
    for log in walks:
        starts = [call[0] for call in log]
        assert starts == sorted(starts), f"a decoder went back: {starts}"
    assert len(reader.decoders) <= 2 * len(meta.video_keys), "finished episodes' decoders are closed"
