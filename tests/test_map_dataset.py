"""MapDataset parity with LeRobot's __getitem__, checked against frame codes and raw Parquet rows."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from data_fixtures import decode_frame_code
from lerobot_inspect import MapDataset, OptionError
from lerobot_inspect.format import DatasetMeta

FPS = 30
DELTA_SETTINGS = {
    "none": None,
    "past": {"observation.state": [-3 / FPS, -1 / FPS, 0.0], "CAM0": [-2 / FPS, 0.0], "action": [-0.1, 0.0]},
    "future": {"action": [0.0, 1 / FPS, 2 / FPS, 5 / FPS], "CAM1": [0.0, 4 / FPS]},
    "both": {"CAM0": [-1 / FPS, 0.0, 1 / FPS], "CAM1": [-4 / FPS, 4 / FPS], "observation.state": [-0.2, 0.0, 0.2],
             "next.reward": [-1 / FPS, 1 / FPS], "index": [-1 / FPS, 0.0, 1 / FPS]},
    "single": {"CAM0": [1 / FPS], "observation.state": [-1 / FPS]},
}


def resolve(setting, meta):
    if setting is None:
        return None
    cams = meta.video_keys
    return {(cams[0] if k == "CAM0" else cams[1] if k == "CAM1" else k): v for k, v in setting.items()}


def raw_rows(meta: DatasetMeta, root) -> pa.Table:
    """All data rows straight from Parquet, as the independent reference."""
    return pa.concat_tables(pq.read_table(root / rel) for rel in meta.data_files())


def expected_window(frame_index: int, length: int, deltas_s):
    offsets = np.array([round(d * FPS) for d in deltas_s])
    unclamped = frame_index + offsets
    return np.clip(unclamped, 0, length - 1), (unclamped < 0) | (unclamped >= length)


def check_sample(sample, meta, rows_by_index, delta_timestamps, abs_index):
    row = rows_by_index[abs_index]
    episode, frame = row["episode_index"], row["frame_index"]
    length = int(meta.lengths[episode])
    ep_from = int(meta.dataset_from_index[episode])
    deltas = delta_timestamps or {}
    expected_keys = meta.video_keys + meta.data_columns + [f"{k}_is_pad" for k in deltas] + ["task"]
    assert list(sample) == expected_keys
    assert sample["task"] == meta.tasks[row["task_index"]]
    for camera_index, camera in enumerate(meta.video_keys):
        frames = sample[camera]
        if camera in deltas:
            window, pad = expected_window(frame, length, deltas[camera])
            assert torch.equal(sample[f"{camera}_is_pad"], torch.from_numpy(pad))
        else:
            window = np.array([frame])
        if len(window) == 1:
            assert frames.ndim == 3  # LeRobot's squeeze(0), also for a single delta
            frames = frames[None]
        assert frames.dtype == torch.float32 and float(frames.min()) >= 0.0 and float(frames.max()) <= 1.0
        got = [decode_frame_code(f) for f in frames]
        assert [(c.camera, c.episode, c.frame) for c in got] == [(camera_index, episode, int(w)) for w in window]
    for name in meta.data_columns:
        feature = meta.features[name]
        if feature.is_image or feature.dtype == "string":
            continue
        if name in deltas:
            window, pad = expected_window(frame, length, deltas[name])
            assert torch.equal(sample[f"{name}_is_pad"], torch.from_numpy(pad))
            expected = np.stack([np.asarray(rows_by_index[ep_from + int(w)][name]) for w in window])
        else:
            expected = np.asarray(row[name])
        value = sample[name]
        if feature.dtype.startswith("float"):
            assert value.dtype == torch.float32
            expected = expected.astype(np.float32)
        assert value.shape == expected.shape, name
        np.testing.assert_array_equal(value.numpy(), expected, err_msg=name)


@pytest.mark.parametrize("setting", list(DELTA_SETTINGS))
@pytest.mark.parametrize("fixture", ["tiny_root", "av1_multifile_root", "h264_root"])
def test_every_frame_matches_codes_pads_rows_and_task(fixture, setting, request):
    root = request.getfixturevalue(fixture)
    meta = DatasetMeta.open(root)
    delta_timestamps = resolve(DELTA_SETTINGS[setting], meta)
    dataset = MapDataset(root, delta_timestamps=delta_timestamps)
    rows = raw_rows(meta, root).to_pylist()
    rows_by_index = {r["index"]: r for r in rows}
    assert len(dataset) == meta.total_frames
    episodes = sorted({0, 1, meta.num_episodes - 1})
    for i in range(len(dataset)):
        if rows[i]["episode_index"] in episodes:
            check_sample(dataset[i], meta, rows_by_index, delta_timestamps, rows[i]["index"])


def test_episode_selection_keeps_file_order(av1_multifile_root):
    meta = DatasetMeta.open(av1_multifile_root)
    dataset = MapDataset(av1_multifile_root, episodes=[5, 1, 6])
    assert dataset.episodes == [5, 1, 6]
    expected = np.concatenate([np.arange(meta.dataset_from_index[e], meta.dataset_to_index[e]) for e in (1, 5, 6)])
    assert len(dataset) == len(expected)
    got = [int(dataset[i]["index"]) for i in range(len(dataset))]
    assert got == expected.tolist()
    sample = dataset[-1]
    assert int(sample["episode_index"]) == 6 and int(sample["frame_index"]) == meta.lengths[6] - 1


def test_windows_with_episode_selection_stay_inside_the_episode(av1_multifile_root):
    meta = DatasetMeta.open(av1_multifile_root)
    camera = meta.video_keys[0]
    dataset = MapDataset(av1_multifile_root, episodes=[2, 4], delta_timestamps={camera: [-2 / FPS, 0, 2 / FPS],
                                                                           "action": [-1 / FPS, 1 / FPS]})
    first_of_4 = int(meta.lengths[2])
    sample = dataset[first_of_4]
    codes = [decode_frame_code(f) for f in sample[camera]]
    assert [(c.episode, c.frame) for c in codes] == [(4, 0), (4, 0), (4, 2)]
    assert sample[f"{camera}_is_pad"].tolist() == [True, False, False]
    assert sample["action_is_pad"].tolist() == [True, False]


def test_types_shapes_and_index_errors(av1_multifile_root):
    meta = DatasetMeta.open(av1_multifile_root)
    dataset = MapDataset(av1_multifile_root, delta_timestamps={"next.reward": [0.0]})
    sample = dataset[0]
    assert sample["index"].shape == () and sample["index"].dtype == torch.int64
    assert sample["timestamp"].dtype == torch.float32 and sample["timestamp"].shape == ()
    assert sample["next.reward"].dtype == torch.float32 and sample["next.reward"].shape == (1,)
    assert sample["next.done"].dtype == torch.bool
    state_dim = meta.features["observation.state"].shape[0]
    assert sample["observation.state"].shape == (state_dim,)
    image_key = meta.image_keys[0]
    h, w, c = meta.features[image_key].shape
    assert sample[image_key].shape == (c, h, w) and sample[image_key].dtype == torch.float32
    code = decode_frame_code(sample[image_key])
    assert (code.episode, code.frame) == (0, 0)
    assert int(dataset[-1]["index"]) == meta.total_frames - 1
    with pytest.raises(IndexError):
        dataset[len(dataset)]
    with pytest.raises(IndexError):
        dataset[-len(dataset) - 1]
    assert isinstance(dataset[0:3], list) and len(dataset[0:3]) == 3


def test_return_uint8_and_image_transforms(tiny_root):
    meta = DatasetMeta.open(tiny_root)
    as_float = MapDataset(tiny_root)[5]
    as_uint8 = MapDataset(tiny_root, return_uint8=True)[5]
    for camera in meta.video_keys:
        assert as_uint8[camera].dtype == torch.uint8
        assert torch.equal(as_uint8[camera].float() / 255.0, as_float[camera])
    seen = []

    def transform(frames):
        seen.append(tuple(frames.shape))
        return frames * 0

    transformed = MapDataset(tiny_root, image_transforms=transform)[5]
    assert len(seen) == len(meta.camera_keys)
    assert all(float(transformed[c].abs().max()) == 0 for c in meta.video_keys)


def test_bad_delta_timestamps_are_refused_with_the_key(tiny_root):
    with pytest.raises(OptionError, match=r"observation\.state"):
        MapDataset(tiny_root, delta_timestamps={"observation.state": [0.02]})
    with pytest.raises(OptionError, match="not_a_key"):
        MapDataset(tiny_root, delta_timestamps={"not_a_key": [0.0]})
    with pytest.raises(OptionError, match="outside"):
        MapDataset(tiny_root, episodes=[0, 99])


def test_dataloader_workers_give_the_same_samples(tiny_root):
    dataset = MapDataset(tiny_root)
    indices = list(range(0, len(dataset), 7))
    subset = torch.utils.data.Subset(dataset, indices)
    loader = torch.utils.data.DataLoader(subset, batch_size=4, num_workers=2)
    got = torch.cat([batch["index"] for batch in loader])
    assert got.tolist() == [int(dataset[i]["index"]) for i in indices]


def test_spawned_workers_unpickle_the_dataset(av1_multifile_root):
    dataset = MapDataset(av1_multifile_root)
    dataset[0]  # opens decoders and the camera thread pool, which must not travel
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, [3, 40, 77]), batch_size=None,
                                         num_workers=1, multiprocessing_context="spawn")
    assert [int(s["index"]) for s in loader] == [3, 40, 77]


def test_planning_many_rows_at_once_equals_planning_each_row(av1_multifile_root):
    """The stream plans an episode's samples as arrays; random access plans one row with scalars.
    Both must give the same window rows, pad masks and camera timestamps, at the episode edges too."""
    meta = DatasetMeta.open(av1_multifile_root)
    camera = meta.video_keys[0]
    dataset = MapDataset(av1_multifile_root, episodes=[2, 4], delta_timestamps={
        camera: [-3 / FPS, 0, 2 / FPS], "action": [-1 / FPS, 0, 1 / FPS, 5 / FPS], "observation.state": [-1 / FPS, 0]})
    rows, builder = dataset.rows, dataset.builder
    order = np.random.default_rng(0).permutation(len(rows))  # any order, as a shuffled pool asks
    plan = builder.plan(rows, order)
    assert plan.pads[camera].any() and plan.pads["action"].any()  # the edges are exercised
    for i, row in enumerate(order.tolist()):
        one = builder.plan_one(rows, row)
        for key in one.window_rows:
            assert plan.window_rows[key][i].tolist() == one.window_rows[key][0].tolist(), (key, row)
            assert plan.pads[key][i].tolist() == one.pads[key][0].tolist(), (key, row)
        for cam in one.requests:
            np.testing.assert_array_equal(plan.requests[cam][i], one.requests[cam][0])
        assert bool(plan.finite[i]) and bool(one.finite[0])
    with pytest.raises(IndexError):
        builder.plan(rows, [len(rows)])
