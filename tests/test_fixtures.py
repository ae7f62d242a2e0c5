"""The fixture generator writes LeRobot's exact v3 layout, and its frames decode to who they are.

Every other test trusts these datasets, so these tests check them against the format notes
(/work/shared/LEROBOT_V3_FORMAT.md section 1) and decode every frame through torchcodec's public API.
"""

from __future__ import annotations

import io
import json
import struct
import threading
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image
from torchcodec.decoders import VideoDecoder

from data_fixtures import (
    FrameCode,
    cached_dataset,
    camera_keys,
    decode_frame_code,
    encode_frame_code,
    fixture_parser,
    frame_values,
    generate_dataset,
)
from data_fixtures import main as fixture_main
from data_fixtures.generator import _encode_episode_mp4

DEFAULTS = ["timestamp", "frame_index", "episode_index", "index", "task_index"]
STATS = ["min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99"]


def _info(root: Path) -> dict:
    return json.loads((root / "meta" / "info.json").read_text())


def _episodes(root: Path) -> pd.DataFrame:
    files = sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)


def _data_files(root: Path) -> list[Path]:
    return sorted((root / "data").glob("chunk-*/file-*.parquet"))


def _video_path(root: Path, info: dict, key: str, row: pd.Series) -> Path:
    return root / info["video_path"].format(video_key=key, chunk_index=row[f"videos/{key}/chunk_index"],
                                            file_index=row[f"videos/{key}/file_index"])


def _top_level_boxes(path: Path) -> list[str]:
    data = path.read_bytes()
    names, offset = [], 0
    while offset < len(data):
        size, kind = struct.unpack(">I4s", data[offset:offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8:offset + 16])[0]
        names.append(kind.decode())
        offset += size
    return names


def _video_keys(info: dict) -> list[str]:
    return [k for k, f in info["features"].items() if f["dtype"] == "video"]


def _assert_every_frame_decodes(root: Path, *, episode_step: int = 1) -> int:
    """Decode each episode's frames at from_timestamp + frame/fps; return how many were checked."""
    info, episodes = _info(root), _episodes(root).iloc[::episode_step]
    fps, checked = info["fps"], 0
    for camera, key in enumerate(_video_keys(info)):
        decoders: dict[Path, VideoDecoder] = {}
        for _, row in episodes.iterrows():
            path = _video_path(root, info, key, row)
            decoder = decoders.setdefault(path, VideoDecoder(str(path)))
            wanted = [row[f"videos/{key}/from_timestamp"] + f / fps for f in range(row["length"])]
            # played_at uses [pts, pts + duration): a float sum a hair under a frame's pts would pick
            # the frame before (LeRobot rounds to an index instead), so ask 10 µs later.
            frames = decoder.get_frames_played_at(seconds=[t + 1e-5 for t in wanted])
            for f, seconds in enumerate(wanted):
                where = f"{key} episode {row['episode_index']} frame {f} in {path.name}"
                assert abs(float(frames.pts_seconds[f]) - seconds) < 1e-4, where
                assert decode_frame_code(frames.data[f]) == FrameCode(camera, row["episode_index"], f), where
                checked += 1
    return checked


# ------------------------------------------------------------------------------------------------
# The committed tiny fixture


def test_tiny_layout_and_counts_agree(tiny_root: Path) -> None:
    info, episodes = _info(tiny_root), _episodes(tiny_root)
    assert info["codebase_version"] == "v3.0"
    assert list(info["features"])[-5:] == DEFAULTS
    assert info["total_episodes"] == len(episodes) == 5
    data = pd.concat([pq.read_table(f).to_pandas() for f in _data_files(tiny_root)], ignore_index=True)
    assert info["total_frames"] == len(data) == episodes["length"].sum()
    assert info["total_tasks"] == len(pd.read_parquet(tiny_root / "meta" / "tasks.parquet"))
    assert info["splits"] == {"train": "0:5"}
    for key in _video_keys(info):
        assert info["features"][key]["info"]["video.codec"] == "av1"
        for _, row in episodes.iterrows():
            assert _video_path(tiny_root, info, key, row).is_file()
    sizes = {tuple(info["features"][k]["shape"]) for k in _video_keys(info)}
    assert len(sizes) == 2, "the two cameras must differ in size"
    total = sum(p.stat().st_size for p in tiny_root.rglob("*") if p.is_file())
    assert total < 1_000_000


def test_tiny_episodes_meta_columns_in_lerobot_order(tiny_root: Path) -> None:
    info = _info(tiny_root)
    table = pq.read_table(next((tiny_root / "meta" / "episodes").glob("chunk-*/file-*.parquet")))
    expected = ["episode_index", "tasks", "length", "data/chunk_index", "data/file_index",
                "dataset_from_index", "dataset_to_index"]
    for key in _video_keys(info):
        expected += [f"videos/{key}/{c}" for c in ("chunk_index", "file_index", "from_timestamp", "to_timestamp")]
    expected += [f"stats/{key}/{s}" for key in info["features"] for s in STATS]
    expected += ["meta/episodes/chunk_index", "meta/episodes/file_index"]
    assert table.column_names == expected
    episodes = table.to_pandas()
    assert (episodes["episode_index"] == range(len(episodes))).all()
    assert (episodes["dataset_from_index"].iloc[1:].to_numpy() == episodes["dataset_to_index"].iloc[:-1]).all()


def test_tiny_video_timestamps_chain_within_each_file(tiny_root: Path) -> None:
    info, episodes = _info(tiny_root), _episodes(tiny_root)
    for key in _video_keys(info):
        previous_file, previous_to = None, 0.0
        for _, row in episodes.iterrows():
            file = (row[f"videos/{key}/chunk_index"], row[f"videos/{key}/file_index"])
            expected_from = previous_to if file == previous_file else 0.0
            assert row[f"videos/{key}/from_timestamp"] == expected_from
            assert row[f"videos/{key}/to_timestamp"] == expected_from + row["length"] / info["fps"]
            previous_file, previous_to = file, row[f"videos/{key}/to_timestamp"]


def test_tiny_data_has_one_row_group_per_episode_and_contiguous_index(tiny_root: Path) -> None:
    info, indices = _info(tiny_root), []
    assert len(_data_files(tiny_root)) == 2
    for path in _data_files(tiny_root):
        parquet = pq.ParquetFile(path)
        assert parquet.metadata.row_group(0).column(0).compression == "SNAPPY"
        assert "huggingface" in json.dumps(list(map(bytes.decode, parquet.schema_arrow.metadata)))
        for group in range(parquet.metadata.num_row_groups):
            rows = parquet.read_row_group(group).to_pandas()
            assert rows["episode_index"].nunique() == 1, f"{path.name} row group {group} mixes episodes"
            assert (rows["frame_index"] == range(len(rows))).all()
            assert (rows["timestamp"].to_numpy() == (rows["frame_index"] / info["fps"]).astype(np.float32)).all()
            indices.extend(rows["index"].tolist())
    assert indices == list(range(info["total_frames"]))


def test_tiny_physical_column_types(tiny_root: Path) -> None:
    schema = pq.read_schema(_data_files(tiny_root)[0])
    assert str(schema.field("observation.state").type) == "fixed_size_list<element: float>[6]"
    assert str(schema.field("observation.images.gripper_png").type) == "struct<bytes: binary, path: string>"
    assert str(schema.field("next.reward").type) == "double"
    assert str(schema.field("next.done").type) == "bool"
    assert str(schema.field("timestamp").type) == "float"
    hf = json.loads(schema.metadata[b"huggingface"])
    assert hf["info"]["features"]["observation.images.gripper_png"] == {"_type": "Image"}


def test_tiny_tabular_values_follow_the_documented_formula(tiny_root: Path) -> None:
    rows = pq.read_table(_data_files(tiny_root)[0]).to_pandas()
    lengths = _episodes(tiny_root).set_index("episode_index")["length"]
    for _, row in rows.iloc[::7].iterrows():
        episode, frame = int(row["episode_index"]), int(row["frame_index"])
        expected = frame_values(episode, frame, length=int(lengths[episode]))
        assert np.array_equal(row["observation.state"], expected["observation.state"])
        assert np.array_equal(row["action"], expected["action"])
        assert row["next.reward"] == expected["next.reward"]
        assert float(np.float32(row["next.reward"])) != row["next.reward"] or frame % 1000 == 0
        assert bool(row["next.done"]) == expected["next.done"]


def test_tiny_tasks_in_first_appearance_order_with_a_mid_episode_change(tiny_root: Path) -> None:
    tasks = pd.read_parquet(tiny_root / "meta" / "tasks.parquet")
    assert tasks.index.name == "task"
    assert list(tasks["task_index"]) == list(range(len(tasks)))
    assert list(tasks.index) != sorted(tasks.index), "default fixture must not be alphabetical"
    data = pd.concat([pq.read_table(f).to_pandas() for f in _data_files(tiny_root)], ignore_index=True)
    first_seen = list(dict.fromkeys(data["task_index"]))
    assert first_seen == list(range(len(tasks)))
    per_episode = data.groupby("episode_index")["task_index"].nunique()
    changed = per_episode[per_episode > 1].index.tolist()
    assert changed == [2]
    meta_tasks = _episodes(tiny_root).set_index("episode_index")["tasks"]
    assert len(meta_tasks[2]) == 2 and all(len(meta_tasks[e]) == 1 for e in (0, 1, 3, 4))


def test_tiny_mp4_box_order_faststart_vs_single_episode(tiny_root: Path) -> None:
    info, episodes = _info(tiny_root), _episodes(tiny_root)
    for key in _video_keys(info):
        counts = episodes.groupby([f"videos/{key}/chunk_index", f"videos/{key}/file_index"]).size()
        assert sorted(counts) == [1, 2, 2]
        for (chunk, file), n in counts.items():
            path = tiny_root / info["video_path"].format(video_key=key, chunk_index=chunk, file_index=file)
            boxes = _top_level_boxes(path)
            if n > 1:
                assert boxes == ["ftyp", "moov", "free", "mdat"], path
            else:
                assert boxes == ["ftyp", "free", "mdat", "moov"], path


def test_tiny_every_frame_decodes_to_its_code(tiny_root: Path) -> None:
    assert _assert_every_frame_decodes(tiny_root) == 2 * _info(tiny_root)["total_frames"]


def test_tiny_av1_stream_timing_matches_lerobot(tiny_root: Path) -> None:
    info = _info(tiny_root)
    path = tiny_root / info["video_path"].format(video_key=camera_keys(1)[0], chunk_index=0, file_index=0)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert str(stream.time_base) == "1/15360"
        packets = [p for p in container.demux(stream) if p.dts is not None]
    assert [p.pts for p in packets] == [512 * i for i in range(len(packets))]
    assert all(p.pts == p.dts for p in packets)
    assert [p.is_keyframe for p in packets[:4]] == [True, False, True, False]
    lengths = _episodes(tiny_root)["length"]
    assert packets[int(lengths[0])].is_keyframe, "the second episode must start on a keyframe"


def test_tiny_stats_are_real_and_shaped_like_lerobot(tiny_root: Path) -> None:
    stats = json.loads((tiny_root / "meta" / "stats.json").read_text())
    info = _info(tiny_root)
    for key in [*_video_keys(info), "observation.images.gripper_png"]:
        assert list(stats[key]) == STATS
        mean = np.array(stats[key]["mean"])
        assert mean.shape == (3, 1, 1) and 0 < mean.min() <= mean.max() < 1
        assert stats[key]["count"] == [info["total_frames"]]
    assert np.array(stats["observation.state"]["min"]).shape == (6,)
    assert stats["frame_index"]["max"] == [int(_episodes(tiny_root)["length"].max() - 1)]


def test_tiny_image_camera_png_carries_the_next_camera_index(tiny_root: Path) -> None:
    rows = pq.read_table(_data_files(tiny_root)[0], columns=["observation.images.gripper_png", "episode_index",
                                                             "frame_index"]).to_pylist()
    for row in rows[::5]:
        image = np.array(Image.open(io.BytesIO(row["observation.images.gripper_png"]["bytes"])))
        assert row["observation.images.gripper_png"]["path"] == f"frame-{row['frame_index']:06d}.png"
        assert decode_frame_code(image) == FrameCode(2, row["episode_index"], row["frame_index"])


# ------------------------------------------------------------------------------------------------
# Generated in tmp_path


def test_h264_has_b_frames_and_an_edit_list(tmp_path: Path) -> None:
    root = generate_dataset(tmp_path / "h264", episodes=3, cameras=1, codec="h264", length_range=(14, 20),
                            episodes_per_file=2)
    info = _info(root)
    assert info["features"][camera_keys(1)[0]]["info"]["video.codec"] == "h264"
    path = root / info["video_path"].format(video_key=camera_keys(1)[0], chunk_index=0, file_index=0)
    with av.open(str(path)) as container:
        packets = [p for p in container.demux(video=0) if p.dts is not None]
    pts = [p.pts for p in packets]
    assert pts != sorted(pts), "decode order must differ from presentation order (B-frames)"
    assert any(p.pts != p.dts for p in packets)
    assert b"elst" in path.read_bytes()
    assert _top_level_boxes(path) == ["ftyp", "moov", "free", "mdat"]
    assert _assert_every_frame_decodes(root) == info["total_frames"]


def test_chunk_rollover_for_data_videos_and_episode_meta(tmp_path: Path) -> None:
    root = generate_dataset(tmp_path / "roll", episodes=12, cameras=1, length_range=(2, 3), chunks_size=2,
                            episodes_per_file=1, episodes_per_data_file=1, data_files_size_in_mb=1e-6)
    episodes, key = _episodes(root), camera_keys(1)[0]
    expected = [(e // 2, e % 2) for e in range(12)]
    assert list(zip(episodes["data/chunk_index"], episodes["data/file_index"], strict=True)) == expected
    assert list(zip(episodes[f"videos/{key}/chunk_index"], episodes[f"videos/{key}/file_index"],
                    strict=True)) == expected
    assert (root / "data" / "chunk-005" / "file-001.parquet").is_file()
    assert (root / "videos" / key / "chunk-005" / "file-001.mp4").is_file()
    # meta/episodes flushes 10 episodes per row group; the tiny size limit starts a file per flush.
    first = pq.ParquetFile(root / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    assert first.metadata.num_rows == 10 and first.metadata.num_row_groups == 1
    assert pq.read_table(root / "meta" / "episodes" / "chunk-000" / "file-001.parquet").num_rows == 2
    assert list(episodes["meta/episodes/file_index"]) == [0] * 10 + [1] * 2
    assert (episodes[f"videos/{key}/from_timestamp"] == 0.0).all()


def test_same_arguments_give_identical_files(tmp_path: Path) -> None:
    kwargs = dict(episodes=3, cameras=2, length_range=(5, 9), episodes_per_file=2, image_camera=True, seed=3)
    first, second = generate_dataset(tmp_path / "a", **kwargs), generate_dataset(tmp_path / "b", **kwargs)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for relative in files:
        assert (first / relative).read_bytes() == (second / relative).read_bytes(), relative
    other = generate_dataset(tmp_path / "c", **{**kwargs, "seed": 4})
    assert _episodes(other)["length"].tolist() != _episodes(first)["length"].tolist()


def test_cached_dataset_builds_once_even_when_callers_race(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LEROBOT_INSPECT_FIXTURE_CACHE", str(tmp_path / "cache"))
    kwargs = dict(episodes=2, cameras=1, length_range=(3, 4), seed=11)
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(cached_dataset(**kwargs))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1 and len(results) == 3
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [results[0].name], "temp dirs left behind"
    assert _info(results[0])["total_episodes"] == 2
    assert cached_dataset(**{**kwargs, "seed": 12}) != results[0]


def test_generate_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        generate_dataset(tmp_path, episodes=1)


def test_fixture_command_generates_and_reports(tmp_path: Path, capsys) -> None:
    assert "python -m data_fixtures" in fixture_parser().format_help()
    assert fixture_main([str(tmp_path / "cli"), "--episodes", "2", "--cameras", "1", "--min-length", "3",
                         "--max-length", "4", "--codec", "h264", "--image-camera"]) == 0
    assert str(tmp_path / "cli") in capsys.readouterr().out
    info = _info(tmp_path / "cli")
    assert info["total_episodes"] == 2 and "observation.images.gripper_png" in info["features"]


def test_every_camera_at_the_asked_size_with_readable_codes_and_progress(tmp_path: Path, capsys) -> None:
    """304x224 is the size where SVT-AV1's fastest preset predicted whole code cells from the wrong
    neighbour (12 of 60 inter frames unreadable): every camera comes out at the asked size and every
    frame reads back as itself; the command prints its stages and encode progress."""
    root = tmp_path / "sized"
    assert fixture_main([str(root), "--episodes", "2", "--cameras", "2", "--width", "304", "--height", "224",
                         "--min-length", "30", "--max-length", "30"]) == 0
    out = capsys.readouterr().out
    assert "encoding 4 episode videos" in out and "encoded 4/4" in out and "writing" in out
    shapes = {key: feature["shape"] for key, feature in _info(root)["features"].items()
              if feature["dtype"] == "video"}
    assert shapes and all(shape == [224, 304, 3] for shape in shapes.values()), shapes
    assert _assert_every_frame_decodes(root) == 2 * 60


def test_every_subcommand_help_shows_defaults_and_an_example() -> None:
    from lerobot_inspect.cli import build_parser

    text = fixture_parser().format_help()
    assert "(default: 4)" in text and "examples:" in text
    parser = build_parser()
    actions = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    for name, sub in actions[0].choices.items():
        helps = [sub.format_help()]
        nested = [a for a in sub._actions if a.__class__.__name__ == "_SubParsersAction"]
        helps += [child.format_help() for child in (nested[0].choices.values() if nested else [])]
        for help_text in helps:
            assert "examples:" in help_text, name
            # options with a default show it (flags and required arguments have none)
            assert "(default: " in help_text or name in ("audit", "index"), name


# ------------------------------------------------------------------------------------------------
# Frame codes


@pytest.mark.parametrize("codec", ["av1", "h264"])
def test_frame_code_survives_a_real_encode_at_32x32(codec: str) -> None:
    rng = np.random.default_rng(5)
    codes = [FrameCode(int(rng.integers(0, 32)), int(rng.integers(0, 65536)), int(rng.integers(0, 65536)))
             for _ in range(24)]
    frames = np.stack([encode_frame_code(c, 32, 32) for c in codes])
    mp4 = _encode_episode_mp4(frames, codec=codec, fps=30, gop=2 if codec == "av1" else 12, crf=30)
    with av.open(io.BytesIO(mp4)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert [decode_frame_code(f) for f in decoded] == codes


def test_frame_code_accepts_torch_chw_float_and_rejects_damage() -> None:
    code = FrameCode(3, 1234, 56)
    image = encode_frame_code(code, 48, 64)
    assert decode_frame_code(torch.from_numpy(image).permute(2, 0, 1).float() / 255) == code
    assert decode_frame_code(image) == code
    damaged = image.copy()
    damaged[: 48 // 7, : 64 // 7] = 255 - damaged[: 48 // 7, : 64 // 7]  # flip the top-left cell
    with pytest.raises(ValueError, match="checksum"):
        decode_frame_code(damaged)
    for blank in (0, 255):
        with pytest.raises(ValueError, match="checksum"):
            decode_frame_code(np.full((32, 32, 3), blank, dtype=np.uint8))


@pytest.mark.slow
def test_thousand_episodes_generate_and_decode(tmp_path: Path) -> None:
    """The size the issue times (`python -m data_fixtures OUT --episodes 1000 --cameras 2` prints the
    time); here only correctness is asserted: speed is for the CLI's report, not a timed test."""
    root = generate_dataset(tmp_path / "big", episodes=1000, cameras=2, length_range=(8, 16), width=64, height=48)
    sampled = _episodes(root)["length"].iloc[::97].sum()
    assert _assert_every_frame_decodes(root, episode_step=97) == 2 * sampled
