"""Deterministic generator of real LeRobot v3 datasets, so every loader test runs on the real layout.

The files match what LeRobot 0.6.x writes (see /work/shared/LEROBOT_V3_FORMAT.md section 1):
episodes concatenated into Parquet and MP4 files, one Parquet row group per episode, per-episode
AV1 (or H.264) encodes stream-copied onto the end of each camera's current MP4 (faststart once a
file holds two or more episodes, moov at the end when it holds one), chunk/file rollover, real
per-episode statistics and their count-weighted aggregate.

Every value is a function of the arguments, so a test recomputes what it expects:

* video frame of camera i (position in the camera list), episode e, frame f shows
  `encode_frame_code(FrameCode(i, e, f), height, width)`; see `lerobot_inspect.probes.framecode`;
* `frame_values(e, f, length=..., seed=..., state_dim=..., action_dim=...)` gives the tabular row:
  `observation.state[d] = float32(seed + 1000*e + f + d/64)`,
  `action[d] = float32(-(seed + 1000*e + f) - d/64)`,
  `next.reward = float64(seed + e + f/1000)` (not representable in float32: the loader's cast shows),
  `next.done = (f == length - 1)`;
* episode lengths are `numpy.random.default_rng(seed).integers(lo, hi + 1, episodes)`;
* episode e does task `tasks[e % len(tasks)]`; with `task_change_episode=e` that episode switches
  to `tasks[(e + 1) % len(tasks)]` (or an extra task when only one is given) at frame length // 2.

Parquet contents and decoded frame codes are identical for identical arguments. MP4 bytes are
identical too with this PyAV build, because both encoders run single-threaded (SVT-AV1 `lp=1`,
x264 `threads=1`) and the muxer writes no creation time.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import io
import json
import math
import multiprocessing
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lerobot_inspect.probes.framecode import DARK, GRID, LIGHT, FrameCode, encode_frame_code

__all__ = ["DEFAULT_TASKS", "GENERATOR_VERSION", "cached_dataset", "camera_keys", "fixture_parser", "frame_values",
           "generate_dataset", "main"]

GENERATOR_VERSION = "2"  # 2: every camera at the asked size; frame codes verified per episode
DEFAULT_TASKS = ("Pick the red cube", "Stack the blocks", "Open the drawer", "Wipe the table")
EXTRA_TASK = "Return to the start"
CAMERA_NAMES = ("front", "wrist", "side", "top")
IMAGE_CAMERA_KEY = "observation.images.gripper_png"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
EPISODES_PER_META_ROW_GROUP = 10  # LeRobot's metadata_buffer_size
STAT_NAMES = ("min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99")
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
MIN_CAMERA_SIDE = 32
# Below this many encoded frames a process pool costs more (spawn + imports) than it saves.
POOL_MIN_FRAMES = 4000

Codec = Literal["av1", "h264"]


def camera_keys(cameras: int) -> list[str]:
    """Video feature keys in camera-index order: front, wrist, side, top, then cam4, cam5, ..."""
    names = [CAMERA_NAMES[i] if i < len(CAMERA_NAMES) else f"cam{i}" for i in range(cameras)]
    return [f"observation.images.{name}" for name in names]


def frame_values(episode: int, frame: int, *, length: int, seed: int = 0, state_dim: int = 6,
                 action_dim: int = 6) -> dict[str, Any]:
    """The tabular values of one frame, exactly as written (see the module docstring for the formula)."""
    base = float(seed + 1000 * episode + frame)
    return {
        "observation.state": np.array([base + d / 64 for d in range(state_dim)], dtype=np.float32),
        "action": np.array([-base - d / 64 for d in range(action_dim)], dtype=np.float32),
        "next.reward": float(seed + episode + frame / 1000),
        "next.done": frame == length - 1,
    }


# --------------------------------------------------------------------------------------------------
# Pure planning: lengths, tasks, file rollover


@dataclass(frozen=True)
class _Camera:
    index: int
    key: str
    height: int
    width: int


def _next_slot(chunk: int, file: int, chunks_size: int) -> tuple[int, int]:
    """LeRobot's rollover: file_index counts up to chunks_size, then chunk_index + 1 and file 0."""
    file += 1
    if file >= chunks_size:
        return chunk + 1, 0
    return chunk, file


def _assign_files(sizes: Sequence[int], *, per_file: int | None, limit_bytes: float,
                  chunks_size: int) -> list[tuple[int, int]]:
    """(chunk, file) of each item: a new file after `per_file` items, or when size + item >= limit."""
    slots: list[tuple[int, int]] = []
    chunk, file, used, count = 0, 0, 0, 0
    for size in sizes:
        full = count >= per_file if per_file is not None else used + size >= limit_bytes
        if count and full:
            chunk, file = _next_slot(chunk, file, chunks_size)
            used, count = 0, 0
        slots.append((chunk, file))
        used += size
        count += 1
    return slots


def _episode_tasks(episodes: int, lengths: Sequence[int], tasks: Sequence[str],
                   task_change_episode: int | None) -> tuple[list[list[str]], list[str]]:
    """Per-frame task strings of every episode, and the task list in first-appearance order."""
    per_frame: list[list[str]] = []
    for ep in range(episodes):
        first = tasks[ep % len(tasks)]
        frames = [first] * lengths[ep]
        if ep == task_change_episode:
            second = tasks[(ep + 1) % len(tasks)] if len(tasks) > 1 else EXTRA_TASK
            half = lengths[ep] // 2
            frames[half:] = [second] * (lengths[ep] - half)
        per_frame.append(frames)
    ordered: list[str] = []
    for frames in per_frame:
        for task in frames:
            if task not in ordered:
                ordered.append(task)
    return per_frame, ordered


# --------------------------------------------------------------------------------------------------
# Statistics (LeRobot's per-episode stats and their aggregate)


def _feature_stats(values: np.ndarray, axis: tuple[int, ...] | int, keepdims: bool) -> dict[str, np.ndarray]:
    as_float = values.astype(np.float64)
    stats = {
        "min": np.min(values, axis=axis, keepdims=keepdims),
        "max": np.max(values, axis=axis, keepdims=keepdims),
        "mean": np.mean(as_float, axis=axis, keepdims=keepdims),
        "std": np.std(as_float, axis=axis, keepdims=keepdims),
        "count": np.array([values.shape[0]], dtype=np.int64),
    }
    for name, q in QUANTILES.items():
        stats[name] = np.quantile(as_float, q, axis=axis, keepdims=keepdims)
    return stats


def _image_stats(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel stats of (N, H, W, 3) uint8 frames in [0, 1], shaped (3, 1, 1) as LeRobot stores them."""
    chw = frames.transpose(0, 3, 1, 2).astype(np.float64) / 255.0
    stats = _feature_stats(chw, axis=(0, 2, 3), keepdims=True)
    out = {name: value[0] for name, value in stats.items() if name != "count"}
    out["count"] = np.array([frames.shape[0]], dtype=np.int64)
    return {name: out[name] for name in STAT_NAMES}


def _aggregate_stats(per_episode: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Dataset stats from episode stats: extremes, pooled mean/variance, count-weighted quantiles."""
    counts = np.array([s["count"][0] for s in per_episode], dtype=np.float64)
    total = counts.sum()

    def weighted(name: str) -> np.ndarray:
        stacked = np.stack([np.asarray(s[name], dtype=np.float64) for s in per_episode])
        return np.tensordot(counts, stacked, axes=1) / total

    mean = weighted("mean")
    second = sum(c * (np.asarray(s["std"]) ** 2 + (np.asarray(s["mean"]) - mean) ** 2)
                 for c, s in zip(counts, per_episode, strict=True)) / total
    out = {
        "min": np.min(np.stack([s["min"] for s in per_episode]), axis=0),
        "max": np.max(np.stack([s["max"] for s in per_episode]), axis=0),
        "mean": mean,
        "std": np.sqrt(second),
        "count": np.array([int(total)], dtype=np.int64),
    }
    for name in QUANTILES:
        out[name] = weighted(name)
    return {name: out[name] for name in STAT_NAMES}


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


# --------------------------------------------------------------------------------------------------
# Video: per-episode encodes (worker side) and stream-copy concatenation


@dataclass(frozen=True)
class _EncodeJob:
    camera: int
    height: int
    width: int
    episodes: tuple[tuple[int, int], ...]  # (episode_index, length)
    codec: Codec
    fps: int
    gop: int
    crf: int
    texture: bool = False
    seed: int = 0


# Textured frames: each camera films a zero-mean colour texture (detail at 48, 12 and 3 px) that pans
# back and forth, plus a little sensor noise, added onto the frame code. The codec then spends bits
# and decode time as on real footage (a flat code alone decodes several times faster), while the
# code cells' averages stay far on their side of mid-gray (checked per episode, as always).
TEXTURE_AMPLITUDE = 24.0  # luma units per unit of the texture's standard deviation
TEXTURE_PAN = 64  # pixels the view travels before it turns
SENSOR_NOISE = 1  # +/- luma, fresh every frame


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cell: int) -> np.ndarray:
    """Unit-variance noise on a grid of `cell` pixels, bilinearly interpolated to (height, width, 3)."""
    grid = rng.standard_normal((height // cell + 2, width // cell + 2, 3))
    y, x = np.arange(height) / cell, np.arange(width) / cell
    y0, x0 = y.astype(int), x.astype(int)
    fy, fx = (y - y0)[:, None, None], (x - x0)[None, :, None]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _camera_scene(camera: int, height: int, width: int, seed: int) -> np.ndarray:
    """The texture one camera pans over: float32 (height + PAN, width + PAN, 3), zero mean."""
    rng = np.random.default_rng([seed, camera, 0x7E])
    h, w = height + TEXTURE_PAN, width + TEXTURE_PAN
    scene = sum(weight * _smooth_noise(rng, h, w, cell) for cell, weight in ((48, 0.6), (12, 0.6), (3, 0.25)))
    return (TEXTURE_AMPLITUDE * scene / scene.std()).astype(np.float32)


def _textured(code: np.ndarray, scene: np.ndarray, *, episode: int, frame: int, seed: int, camera: int) -> np.ndarray:
    """`code` (uint8 HWC) seen through the panning `scene` at this frame, with sensor noise."""
    height, width = code.shape[:2]
    travel = (episode * 17 + frame * 2) % (2 * TEXTURE_PAN)
    dy = dx = TEXTURE_PAN - abs(travel - TEXTURE_PAN)
    dy = (dy + episode * 5) % (TEXTURE_PAN + 1)
    noise = np.random.default_rng([seed, camera, episode, frame]).integers(
        -SENSOR_NOISE, SENSOR_NOISE + 1, code.shape, dtype=np.int16)
    return np.clip(code + scene[dy:dy + height, dx:dx + width] + noise, 0, 255).astype(np.uint8)


# SVT-AV1's fastest preset sometimes predicts a whole flat cell from the wrong neighbour at some
# sizes (224x304: 12 of 60 inter frames unreadable); a slower preset searches better. Each episode
# is checked after encoding and re-encoded with the next preset until every frame code reads back.
AV1_PRESETS = (12, 10, 8)


def _encoder_options(codec: Codec, gop: int, crf: int, *, av1_preset: int = AV1_PRESETS[0]
                     ) -> tuple[str, dict[str, str], int | str]:
    """FFmpeg encoder name, its options, and the preset recorded in info.json."""
    if codec == "av1":
        return ("libsvtav1", {"g": str(gop), "crf": str(crf), "preset": str(av1_preset), "svtav1-params": "lp=1"},
                av1_preset)
    # b-adapt=0 makes x264 use its 2 B-frames even on easy content, so pts order != dts order.
    options = {"g": str(gop), "crf": str(crf), "preset": "veryfast", "threads": "1",
               "x264-params": f"bframes=2:b-adapt=0:keyint={gop}:min-keyint={gop}:scenecut=0"}
    return "libx264", options, "veryfast"


def _encode_episode_mp4(frames: np.ndarray, *, codec: Codec, fps: int, gop: int, crf: int,
                        av1_preset: int = AV1_PRESETS[0]) -> bytes:
    """One episode as its own MP4 (ftyp, free, mdat, moov), as LeRobot encodes before concatenating."""
    import av

    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its config banner per encoder otherwise
    encoder, options, _ = _encoder_options(codec, gop, crf, av1_preset=av1_preset)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream(encoder, rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = options
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def _codes_survive(mp4: bytes, codes: np.ndarray) -> bool:
    """Every decoded frame's code cells sit on the same side of mid-gray as the `codes` drawn (before
    any texture), so `decode_frame_code` reads each frame back as itself (one vectorised pass per cell)."""
    import av

    with av.open(io.BytesIO(mp4)) as container:
        decoded = np.stack([f.to_ndarray(format="gray") for f in container.decode(video=0)])
    if decoded.shape[0] != codes.shape[0]:
        return False
    original = codes[..., 0]
    height, width = original.shape[1:]
    rows, cols = (np.arange(GRID + 1) * height) // GRID, (np.arange(GRID + 1) * width) // GRID
    threshold = (DARK + LIGHT) / 2
    for r in range(GRID):
        inset_r = (rows[r + 1] - rows[r]) // 4
        top, bottom = rows[r] + inset_r, rows[r + 1] - inset_r
        for c in range(GRID):
            inset_c = (cols[c + 1] - cols[c]) // 4
            left, right = cols[c] + inset_c, cols[c + 1] - inset_c
            light = decoded[:, top:bottom, left:right].mean(axis=(1, 2)) > threshold
            if not np.array_equal(light, original[:, top, left] > threshold):
                return False
    return True


def _run_encode_job(job: _EncodeJob) -> list[tuple[bytes, dict[str, np.ndarray]]]:
    results = []
    scene = _camera_scene(job.camera, job.height, job.width, job.seed) if job.texture else None
    for episode, length in job.episodes:
        codes = np.stack([encode_frame_code(FrameCode(job.camera, episode, f), job.height, job.width)
                          for f in range(length)])
        frames = codes if scene is None else np.stack(
            [_textured(code, scene, episode=episode, frame=f, seed=job.seed, camera=job.camera)
             for f, code in enumerate(codes)])
        presets = AV1_PRESETS if job.codec == "av1" else AV1_PRESETS[:1]
        for preset in presets:
            mp4 = _encode_episode_mp4(frames, codec=job.codec, fps=job.fps, gop=job.gop, crf=job.crf,
                                      av1_preset=preset)
            if _codes_survive(mp4, codes):
                break
        else:
            raise ValueError(
                f"camera {job.camera} at {job.height}x{job.width} ({job.codec}, crf {job.crf}): episode {episode}'s "
                "frame codes do not survive encoding; choose another size (e.g. 64x48, 320x240, 640x480) or codec")
        results.append((mp4, _image_stats(frames)))
    return results


def _write_video_file(path: str, episode_mp4s: list[bytes], lengths: list[int]) -> None:
    """Concatenate episode MP4s by stream copy, pts running on; faststart as LeRobot's remux does.

    A file with one episode is the encoder's own output, moov at the end, exactly as LeRobot leaves
    it. Each episode is shifted by the ticks of the episodes before it, so it starts on its own
    keyframe and the file's timestamps stay contiguous."""
    import av

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if len(episode_mp4s) == 1:
        Path(path).write_bytes(episode_mp4s[0])
        return
    inputs = [av.open(io.BytesIO(data)) for data in episode_mp4s]
    try:
        with av.open(path, "w", format="mp4", options={"movflags": "faststart"}) as out:
            template = inputs[0].streams.video[0]
            stream = out.add_stream_from_template(template, opaque=True)
            time_base = template.time_base
            fps = template.average_rate
            ticks_per_frame = int(1 / (fps * time_base))
            offset = 0
            for container, length in zip(inputs, lengths, strict=True):
                source = container.streams.video[0]
                for packet in container.demux(source):
                    if packet.dts is None:  # the demuxer's end-of-stream marker
                        continue
                    packet.pts += offset
                    packet.dts += offset
                    packet.stream = stream
                    out.mux(packet)
                offset += length * ticks_per_frame
    finally:
        for container in inputs:
            container.close()


def _write_video_job(job: tuple[str, list[bytes], list[int]]) -> None:
    _write_video_file(*job)


# --------------------------------------------------------------------------------------------------
# Tabular: features, per-episode tables


def _features(cams: list[_Camera], *, image_camera: _Camera | None, state_dim: int, action_dim: int,
              fps: int, codec: Codec, gop: int, crf: int) -> dict[str, dict[str, Any]]:
    _, _, preset = _encoder_options(codec, gop, crf)
    features: dict[str, dict[str, Any]] = {}
    for cam in cams:
        features[cam.key] = {
            "dtype": "video",
            "shape": [cam.height, cam.width, 3],
            "names": ["height", "width", "channels"],
            "info": {
                "video.height": cam.height, "video.width": cam.width, "video.codec": codec,
                "video.pix_fmt": "yuv420p", "video.fps": fps, "video.channels": 3, "has_audio": False,
                "video.g": gop, "video.crf": crf, "video.preset": preset, "video.fast_decode": 0,
                "video.video_backend": "pyav", "video.extra_options": {}, "is_depth_map": False,
            },
        }
    if image_camera is not None:
        features[image_camera.key] = {"dtype": "image", "shape": [image_camera.height, image_camera.width, 3],
                                      "names": ["height", "width", "channels"]}
    features["observation.state"] = {"dtype": "float32", "shape": [state_dim],
                                     "names": [f"joint_{d}" for d in range(state_dim)]}
    features["action"] = {"dtype": "float32", "shape": [action_dim],
                          "names": [f"joint_{d}" for d in range(action_dim)]}
    features["next.reward"] = {"dtype": "float64", "shape": [1], "names": None}
    features["next.done"] = {"dtype": "bool", "shape": [1], "names": None}
    features["timestamp"] = {"dtype": "float32", "shape": [1], "names": None}
    for name in ("frame_index", "episode_index", "index", "task_index"):
        features[name] = {"dtype": "int64", "shape": [1], "names": None}
    return features


def _data_schema(features: dict[str, dict[str, Any]], fingerprint: str) -> pa.Schema:
    """Arrow schema with the `huggingface` metadata LeRobot's writer stores (features + fingerprint)."""
    import datasets

    hf: dict[str, Any] = {}
    for key, feature in features.items():
        dtype, shape = feature["dtype"], feature["shape"]
        if dtype == "video":
            continue
        if dtype == "image":
            hf[key] = datasets.Image()
        elif shape == [1]:
            hf[key] = datasets.Value(dtype)
        else:
            hf[key] = datasets.List(datasets.Value(dtype), length=shape[0])
    schema = datasets.Features(hf).arrow_schema
    meta = json.loads(schema.metadata[b"huggingface"])
    meta["fingerprint"] = fingerprint
    return schema.with_metadata({"huggingface": json.dumps(meta)})


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _episode_table(schema: pa.Schema, *, episode: int, length: int, start_index: int, fps: int,
                   task_indices: list[int], seed: int, state_dim: int, action_dim: int,
                   image_camera: _Camera | None) -> tuple[pa.Table, dict[str, np.ndarray]]:
    """One episode's rows (schema order) and the raw per-feature arrays its stats come from."""
    rows = [frame_values(episode, f, length=length, seed=seed, state_dim=state_dim, action_dim=action_dim)
            for f in range(length)]
    frame_index = np.arange(length, dtype=np.int64)
    arrays: dict[str, np.ndarray] = {
        "observation.state": np.stack([r["observation.state"] for r in rows]),
        "action": np.stack([r["action"] for r in rows]),
        "next.reward": np.array([r["next.reward"] for r in rows], dtype=np.float64),
        "next.done": np.array([r["next.done"] for r in rows], dtype=bool),
        "timestamp": (frame_index / fps).astype(np.float32),
        "frame_index": frame_index,
        "episode_index": np.full(length, episode, dtype=np.int64),
        "index": np.arange(start_index, start_index + length, dtype=np.int64),
        "task_index": np.array(task_indices, dtype=np.int64),
    }
    columns: dict[str, pa.Array] = {}
    images = None
    if image_camera is not None:
        images = np.stack([encode_frame_code(FrameCode(image_camera.index, episode, f),
                                             image_camera.height, image_camera.width) for f in range(length)])
        columns[image_camera.key] = pa.array(
            [{"bytes": _png(img), "path": f"frame-{f:06d}.png"} for f, img in enumerate(images)],
            type=schema.field(image_camera.key).type)
    for key, values in arrays.items():
        if values.ndim == 2:
            columns[key] = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])
        else:
            columns[key] = pa.array(values)
    table = pa.Table.from_arrays([columns[name] for name in schema.names], schema=schema)
    stats_input = {key: (v if v.ndim == 2 else v[:, None]) for key, v in arrays.items()}
    if images is not None:
        stats_input[image_camera.key] = images
    return table, stats_input


def _stats_arrow_type(stat: str, sample: np.ndarray) -> pa.DataType:
    if stat == "count":
        return pa.list_(pa.int64())
    element = pa.from_numpy_dtype(sample.dtype)
    if sample.ndim == 3:
        return pa.list_(pa.list_(pa.list_(element)))
    return pa.list_(element)


# --------------------------------------------------------------------------------------------------
# Public entry points


def _check(condition: bool, message: str) -> None:
    if not condition:
        from lerobot_inspect.errors import OptionError

        raise OptionError(message)


def generate_dataset(
    root: str | Path,
    *,
    episodes: int = 4,
    length_range: tuple[int, int] = (20, 40),
    fps: int = 30,
    cameras: int = 2,
    width: int = 64,
    height: int = 48,
    camera_sizes: Sequence[tuple[int, int]] | None = None,
    codec: Codec = "av1",
    gop: int | None = None,
    crf: int = 30,
    episodes_per_file: int | None = None,
    episodes_per_data_file: int | None = None,
    video_files_size_in_mb: float = 200,
    data_files_size_in_mb: float = 100,
    chunks_size: int = 1000,
    tasks: Sequence[str] | None = None,
    task_change_episode: int | None = None,
    state_dim: int = 6,
    action_dim: int = 6,
    image_camera: bool = False,
    texture: bool = False,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Write a complete LeRobot v3 dataset to `root` (must be absent or empty) and return its path.

    camera_sizes gives (height, width) per video camera; by default every camera is height x width
    (pass camera_sizes for cameras of different sizes). Each episode's frame codes are read back
    after encoding; a size whose codes do not survive is refused, never written silently.
    gop defaults to 2 for AV1 (LeRobot) and 12 for H.264 (with 2 B-frames per mini-GOP).
    episodes_per_file / episodes_per_data_file force rollover by count; left None, LeRobot's size
    rules apply with video_files_size_in_mb / data_files_size_in_mb. `texture=True` films each code
    through a panning colour texture with sensor noise, so decoding costs what real footage costs
    (for benchmarks; slower to encode). Work spreads over a process pool
    when there are more than a few thousand frames to encode. `progress` (e.g. `print`) hears each
    stage and, while encoding, about every 5% of the episode-camera encodes with the time so far.
    """
    from lerobot_inspect.errors import check_option

    check_option("codec", codec, ("av1", "h264"))
    low, high = length_range
    _check(episodes >= 1, f"episodes={episodes}; need at least 1")
    _check(1 <= low <= high, f"length_range={length_range}; need 1 <= min <= max")
    _check(fps >= 1 and cameras >= 0 and chunks_size >= 1, "fps and chunks_size must be >= 1, cameras >= 0")
    _check(state_dim >= 1 and action_dim >= 1, "state_dim and action_dim must be >= 1")
    gop = gop if gop is not None else (2 if codec == "av1" else 12)
    _check(gop >= 1, f"gop={gop}; need >= 1")
    for name, value in (("episodes_per_file", episodes_per_file),
                        ("episodes_per_data_file", episodes_per_data_file)):
        _check(value is None or value >= 1, f"{name}={value}; need None or >= 1")
    _check(task_change_episode is None or 0 <= task_change_episode < episodes,
           f"task_change_episode={task_change_episode}; need an episode index in [0, {episodes})")
    if camera_sizes is None:
        camera_sizes = [(height, width)] * cameras
    _check(len(camera_sizes) == cameras, f"camera_sizes has {len(camera_sizes)} entries for {cameras} cameras")
    for h, w in [*camera_sizes, (height, width)]:
        _check(h >= MIN_CAMERA_SIDE and w >= MIN_CAMERA_SIDE and h % 2 == 0 and w % 2 == 0,
               f"camera size {h}x{w}: need even sides of at least {MIN_CAMERA_SIDE} (yuv420p, frame code)")
    task_list = list(tasks) if tasks is not None else list(DEFAULT_TASKS)
    _check(len(task_list) >= 1 and len(set(task_list)) == len(task_list), "tasks must be non-empty and unique")

    root = Path(root)
    if root.exists() and any(root.iterdir()):
        _check(False, f"{root} is not empty; give a new directory (generate_dataset never overwrites)")
    root.mkdir(parents=True, exist_ok=True)

    lengths = [int(x) for x in np.random.default_rng(seed).integers(low, high + 1, episodes)]
    starts = np.concatenate([[0], np.cumsum(lengths)]).astype(int).tolist()
    total_frames = starts[-1]
    frame_tasks, ordered_tasks = _episode_tasks(episodes, lengths, task_list, task_change_episode)
    task_index = {task: i for i, task in enumerate(ordered_tasks)}
    cams = [_Camera(i, key, h, w) for i, (key, (h, w)) in enumerate(zip(camera_keys(cameras), camera_sizes,
                                                                         strict=True))]
    image_cam = _Camera(cameras, IMAGE_CAMERA_KEY, height, width) if image_camera else None
    features = _features(cams, image_camera=image_cam, state_dim=state_dim, action_dim=action_dim, fps=fps,
                         codec=codec, gop=gop, crf=crf)

    # Video: encode episodes (pooled), then place them into files and concatenate.
    workers = max(1, min(os.cpu_count() or 1, 8)) if total_frames * max(cameras, 1) >= POOL_MIN_FRAMES else 1
    video_meta: dict[str, list[tuple[int, int, float, float]]] = {}
    video_stats: dict[str, list[dict[str, np.ndarray]]] = {}
    if cams:
        batch = max(1, math.ceil(episodes * cameras / (workers * 4)))
        jobs = [_EncodeJob(cam.index, cam.height, cam.width,
                           tuple((e, lengths[e]) for e in range(s, min(s + batch, episodes))), codec, fps, gop, crf,
                           texture, seed)
                for cam in cams for s in range(0, episodes, batch)]
        say = progress or (lambda _message: None)
        clock = time.perf_counter()
        total_encodes = episodes * len(cams)
        say(f"encoding {total_encodes} episode videos ({len(cams)} camera(s), {total_frames * len(cams)} frames, "
            f"{codec}) in {workers} process(es)")
        done, next_report = 0, 0.05

        def encoded_one(job: _EncodeJob) -> None:
            nonlocal done, next_report
            done += len(job.episodes)
            if done / total_encodes >= next_report or done == total_encodes:
                elapsed = time.perf_counter() - clock
                left = elapsed / done * (total_encodes - done)
                say(f"  encoded {done}/{total_encodes} ({elapsed:.0f} s, about {left:.0f} s left)")
                next_report = done / total_encodes + 0.05

        with _pool(workers) as run:
            encoded = run(_run_encode_job, jobs, encoded_one)
            per_camera: dict[int, list[tuple[bytes, dict[str, np.ndarray]]]] = {c.index: [] for c in cams}
            for job, result in zip(jobs, encoded, strict=True):
                per_camera[job.camera].extend(result)
            write_jobs = []
            for cam in cams:
                mp4s = [mp4 for mp4, _ in per_camera[cam.index]]
                video_stats[cam.key] = [stats for _, stats in per_camera[cam.index]]
                slots = _assign_files([len(m) for m in mp4s], per_file=episodes_per_file,
                                      limit_bytes=video_files_size_in_mb * 1024 * 1024, chunks_size=chunks_size)
                rows, from_ts, previous = [], 0.0, None
                groups: dict[tuple[int, int], list[int]] = {}
                for ep, slot in enumerate(slots):
                    if slot != previous:
                        from_ts = 0.0
                    to_ts = from_ts + lengths[ep] / fps
                    rows.append((slot[0], slot[1], from_ts, to_ts))
                    from_ts, previous = to_ts, slot
                    groups.setdefault(slot, []).append(ep)
                video_meta[cam.key] = rows
                for (chunk, file), eps in groups.items():
                    path = root / VIDEO_PATH.format(video_key=cam.key, chunk_index=chunk, file_index=file)
                    write_jobs.append((str(path), [mp4s[e] for e in eps], [lengths[e] for e in eps]))
            say(f"writing {len(write_jobs)} video file(s)")
            run(_write_video_job, write_jobs)

    if progress is not None:
        progress("writing data and meta parquet")
    # Data parquet: one row group per episode.
    # LeRobot's fingerprint changes every run; ours is a hash of the content so files stay identical.
    fingerprint = hashlib.sha256(json.dumps([features, lengths, frame_tasks, seed]).encode()).hexdigest()[:16]
    schema = _data_schema(features, fingerprint)
    tables, tab_stats = [], []
    for ep in range(episodes):
        table, raw = _episode_table(schema, episode=ep, length=lengths[ep], start_index=starts[ep], fps=fps,
                                    task_indices=[task_index[t] for t in frame_tasks[ep]], seed=seed,
                                    state_dim=state_dim, action_dim=action_dim, image_camera=image_cam)
        tables.append(table)
        stats: dict[str, dict[str, np.ndarray]] = {}
        for key, values in raw.items():
            stats[key] = _image_stats(values) if key == IMAGE_CAMERA_KEY else _feature_stats(values, 0, False)
        tab_stats.append(stats)
    data_slots = _assign_files([t.nbytes for t in tables], per_file=episodes_per_data_file,
                               limit_bytes=data_files_size_in_mb * 1024 * 1024, chunks_size=chunks_size)
    _write_grouped(root, DATA_PATH, schema, data_slots, tables)

    # Per-episode stats in feature order (video cameras included).
    episode_stats: list[dict[str, dict[str, np.ndarray]]] = []
    for ep in range(episodes):
        merged = {}
        for key in features:
            merged[key] = video_stats[key][ep] if key in video_stats else tab_stats[ep][key]
        episode_stats.append(merged)

    _write_episodes_meta(root, features=features, cams=cams, lengths=lengths, starts=starts,
                         frame_tasks=frame_tasks, data_slots=data_slots, video_meta=video_meta,
                         episode_stats=episode_stats, chunks_size=chunks_size,
                         limit_bytes=data_files_size_in_mb * 1024 * 1024)
    _write_tasks(root, ordered_tasks)
    stats_json = {key: _aggregate_stats([s[key] for s in episode_stats]) for key in features}
    (root / "meta" / "stats.json").write_text(json.dumps(_jsonable(stats_json), indent=4))
    info = {
        "codebase_version": "v3.0",
        "robot_type": "fixture_robot",
        "total_episodes": episodes,
        "total_frames": total_frames,
        "total_tasks": len(ordered_tasks),
        "chunks_size": chunks_size,
        "data_files_size_in_mb": data_files_size_in_mb,
        "video_files_size_in_mb": video_files_size_in_mb,
        "fps": fps,
        "splits": {"train": f"0:{episodes}"},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if cams else None,
        "features": features,
    }
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=4))
    return root


@contextlib.contextmanager
def _pool(workers: int):
    """Yield map(function, jobs, on_done=None): results in job order, `on_done(job)` as each finishes
    (for progress); one pool serves both the encode and the concatenation stage."""
    def serial(function, jobs, on_done=None):
        results = []
        for job in jobs:
            results.append(function(job))
            if on_done is not None:
                on_done(job)
        return results

    if workers <= 1:
        yield serial
        return
    context = multiprocessing.get_context("spawn")  # fork is unsafe once torch/FFmpeg threads exist
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        def pooled(function, jobs, on_done=None):
            results = []
            for job, result in zip(jobs, pool.map(function, jobs), strict=True):
                results.append(result)
                if on_done is not None:
                    on_done(job)
            return results

        yield pooled


def _write_grouped(root: Path, template: str, schema: pa.Schema, slots: list[tuple[int, int]],
                   tables: list[pa.Table]) -> None:
    """One ParquetWriter per file (snappy, dictionary), one row group per table, as LeRobot writes."""
    writer, current = None, None
    try:
        for slot, table in zip(slots, tables, strict=True):
            if slot != current:
                if writer is not None:
                    writer.close()
                path = root / template.format(chunk_index=slot[0], file_index=slot[1])
                path.parent.mkdir(parents=True, exist_ok=True)
                writer = pq.ParquetWriter(path, schema, compression="snappy", use_dictionary=True)
                current = slot
            writer.write_table(table, row_group_size=max(1, table.num_rows))
    finally:
        if writer is not None:
            writer.close()


def _write_episodes_meta(root: Path, *, features: dict[str, dict[str, Any]], cams: list[_Camera],
                         lengths: list[int], starts: list[int], frame_tasks: list[list[str]],
                         data_slots: list[tuple[int, int]], video_meta: dict[str, list[tuple[int, int, float, float]]],
                         episode_stats: list[dict[str, dict[str, np.ndarray]]], chunks_size: int,
                         limit_bytes: float) -> None:
    """meta/episodes: LeRobot's column order, 10 episodes per row group, rollover by size at each flush."""
    columns: dict[str, list[Any]] = {name: [] for name in ("episode_index", "tasks", "length", "data/chunk_index",
                                                          "data/file_index", "dataset_from_index",
                                                          "dataset_to_index")}
    types: dict[str, pa.DataType] = {"episode_index": pa.int64(), "tasks": pa.list_(pa.string()),
                                     "length": pa.int64(), "data/chunk_index": pa.int64(),
                                     "data/file_index": pa.int64(), "dataset_from_index": pa.int64(),
                                     "dataset_to_index": pa.int64()}
    for cam in cams:
        for suffix, kind in (("chunk_index", pa.int64()), ("file_index", pa.int64()),
                             ("from_timestamp", pa.float64()), ("to_timestamp", pa.float64())):
            columns[f"videos/{cam.key}/{suffix}"] = []
            types[f"videos/{cam.key}/{suffix}"] = kind
    for key in features:
        for stat in STAT_NAMES:
            columns[f"stats/{key}/{stat}"] = []
            types[f"stats/{key}/{stat}"] = _stats_arrow_type(stat, episode_stats[0][key][stat])
    for ep, length in enumerate(lengths):
        columns["episode_index"].append(ep)
        columns["tasks"].append(list(dict.fromkeys(frame_tasks[ep])))
        columns["length"].append(length)
        columns["data/chunk_index"].append(data_slots[ep][0])
        columns["data/file_index"].append(data_slots[ep][1])
        columns["dataset_from_index"].append(starts[ep])
        columns["dataset_to_index"].append(starts[ep + 1])
        for cam in cams:
            chunk, file, from_ts, to_ts = video_meta[cam.key][ep]
            for suffix, value in (("chunk_index", chunk), ("file_index", file), ("from_timestamp", from_ts),
                                  ("to_timestamp", to_ts)):
                columns[f"videos/{cam.key}/{suffix}"].append(value)
        for key in features:
            for stat in STAT_NAMES:
                columns[f"stats/{key}/{stat}"].append(episode_stats[ep][key][stat].tolist())
    # Row groups of 10 episodes; a file rolls over when its estimated size reached the data limit.
    groups = [range(s, min(s + EPISODES_PER_META_ROW_GROUP, len(lengths)))
              for s in range(0, len(lengths), EPISODES_PER_META_ROW_GROUP)]
    tables = []
    for group in groups:
        tables.append({name: values[group.start:group.stop] for name, values in columns.items()})
    sizes = [len(json.dumps(t, default=str)) for t in tables]
    group_slots = _flush_rule_slots(sizes, limit_bytes, chunks_size)
    arrow_tables = []
    for group, data, slot in zip(groups, tables, group_slots, strict=True):
        data = dict(data)
        data["meta/episodes/chunk_index"] = [slot[0]] * len(group)
        data["meta/episodes/file_index"] = [slot[1]] * len(group)
        arrays = [pa.array(values, type=types.get(name, pa.int64())) for name, values in data.items()]
        arrow_tables.append(pa.Table.from_arrays(arrays, names=list(data)))
    _write_grouped(root, EPISODES_PATH, arrow_tables[0].schema, group_slots, arrow_tables)


def _flush_rule_slots(sizes: list[int], limit_bytes: float, chunks_size: int) -> list[tuple[int, int]]:
    """LeRobot's metadata flush: a new file when the current one already reached the size limit."""
    slots, chunk, file, used = [], 0, 0, 0
    for size in sizes:
        if used and used >= limit_bytes:
            chunk, file = _next_slot(chunk, file, chunks_size)
            used = 0
        slots.append((chunk, file))
        used += size
    return slots


def _write_tasks(root: Path, ordered_tasks: list[str]) -> None:
    """meta/tasks.parquet: a pandas frame indexed by task, task_index in first-appearance order."""
    import pandas as pd

    frame = pd.DataFrame({"task_index": np.arange(len(ordered_tasks), dtype=np.int64)},
                         index=pd.Index(ordered_tasks, name="task"))
    path = root / "meta" / "tasks.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame, preserve_index=True)
    # pandas may infer large_string; LeRobot's files (pandas 2) hold plain string.
    table = table.cast(pa.schema([f.with_type(pa.string()) if f.name == "task" else f for f in table.schema],
                                 metadata=table.schema.metadata))
    pq.write_table(table, path)


def _cache_key(kwargs: dict[str, Any]) -> str:
    normal = {k: (list(map(list, v)) if k == "camera_sizes" and v is not None else
                  list(v) if isinstance(v, tuple | list) else v) for k, v in sorted(kwargs.items())}
    text = json.dumps({"version": GENERATOR_VERSION, "kwargs": normal}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def cached_dataset(**kwargs: Any) -> Path:
    """generate_dataset(**kwargs) once per machine: later calls (any process) reuse the directory.

    The cache lives in $LEROBOT_INSPECT_FIXTURE_CACHE or <tempdir>/lerobot_inspect_fixtures, keyed by
    a hash of the arguments and GENERATOR_VERSION. Each caller builds in its own temporary directory
    and renames it into place, so racing processes never see a half-written dataset: the loser of
    the rename deletes its copy and uses the winner's, which is identical by determinism."""
    if "root" in kwargs:
        from lerobot_inspect.errors import OptionError

        raise OptionError("cached_dataset chooses the directory itself; call generate_dataset(root, ...)")
    base = Path(os.environ.get("LEROBOT_INSPECT_FIXTURE_CACHE") or Path(tempfile.gettempdir())
                / "lerobot_inspect_fixtures")
    base.mkdir(parents=True, exist_ok=True)
    final = base / _cache_key(kwargs)
    if (final / "meta" / "info.json").exists():
        return final
    building = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=base))
    try:
        generate_dataset(building / "dataset", **kwargs)
        try:
            os.rename(building / "dataset", final)
        except OSError:
            if not (final / "meta" / "info.json").exists():
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return final


def fixture_parser() -> Any:
    """`python -m data_fixtures OUT [options]`: the generator's command line."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m data_fixtures",
        description="Write a deterministic LeRobot v3 dataset whose video frames encode "
                    "(camera, episode, frame) as a readable code, for testing and benchmarking loaders.",
        epilog="examples:\n"
               "  python -m data_fixtures /tmp/ds --episodes 50 --cameras 2 --codec av1 --episodes-per-file 10\n"
               "  python -m data_fixtures /tmp/ds1k --episodes 1000 --cameras 2\n"
               "  python -m data_fixtures /tmp/b320 --episodes 100 --min-length 90 --max-length 110 --width 320 "
               "--height 240 --textured --state-dim 14 --action-dim 14   # the bench's dataset\n"
               "  python -m data_fixtures /tmp/h264 --episodes 6 --codec h264 --gop 12 --image-camera",
        formatter_class=type("Formatter", (argparse.RawDescriptionHelpFormatter,
                                           argparse.ArgumentDefaultsHelpFormatter), {}),
    )
    parser.add_argument("out", metavar="OUT", help="directory to create (must be absent or empty)")
    parser.add_argument("--episodes", type=int, default=4, help="number of episodes")
    parser.add_argument("--cameras", type=int, default=2, help="video cameras")
    parser.add_argument("--codec", choices=("av1", "h264"), default="av1", help="video codec")
    parser.add_argument("--gop", type=int, default=None, help="keyframe interval; %(default)s: av1 2, h264 12")
    parser.add_argument("--episodes-per-file", type=int, default=None,
                        help="episodes per mp4; %(default)s: LeRobot's size rule (200 MB)")
    parser.add_argument("--episodes-per-data-file", type=int, default=None,
                        help="episodes per data parquet; %(default)s: LeRobot's size rule (100 MB)")
    parser.add_argument("--width", type=int, default=64, help="width of every camera")
    parser.add_argument("--height", type=int, default=48, help="height of every camera")
    parser.add_argument("--fps", type=int, default=30, help="frame rate")
    parser.add_argument("--seed", type=int, default=0, help="lengths and tabular values")
    parser.add_argument("--min-length", type=int, default=20, help="shortest episode (frames)")
    parser.add_argument("--max-length", type=int, default=40, help="longest episode (frames)")
    parser.add_argument("--image-camera", action="store_true", help="add a PNG-in-parquet image camera")
    parser.add_argument("--textured", action="store_true",
                        help="film the codes through a moving colour texture with sensor noise "
                             "(decodes like real footage)")
    parser.add_argument("--crf", type=int, default=30, help="encoder quality (LeRobot: 30)")
    parser.add_argument("--state-dim", type=int, default=6, help="observation.state dimensions")
    parser.add_argument("--action-dim", type=int, default=6, help="action dimensions")
    parser.add_argument("--chunks-size", type=int, default=1000, help="files per chunk directory")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Generate the dataset `python -m data_fixtures ARGS` asks for and print where and how long."""
    args = fixture_parser().parse_args(argv)
    started = time.perf_counter()
    path = generate_dataset(
        args.out, episodes=args.episodes, cameras=args.cameras, codec=args.codec, gop=args.gop,
        episodes_per_file=args.episodes_per_file, episodes_per_data_file=args.episodes_per_data_file,
        width=args.width, height=args.height, fps=args.fps, seed=args.seed,
        length_range=(args.min_length, args.max_length), image_camera=args.image_camera,
        chunks_size=args.chunks_size, texture=args.textured, crf=args.crf, state_dim=args.state_dim,
        action_dim=args.action_dim, progress=lambda message: print(message, flush=True),
    )
    print(f"{path} ({time.perf_counter() - started:.1f} s)")
    return 0
