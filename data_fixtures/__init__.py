"""Deterministic generator of real LeRobot v3 datasets whose frames say who they are.

`generate_dataset` writes the exact on-disk layout LeRobot 0.6.x writes (Parquet + concatenated
MP4s); every video frame carries a `FrameCode` (camera, episode, frame) that survives AV1/H.264, so
loader tests check they decoded the right frame. `cached_dataset` builds each configuration once.
A tiny committed copy lives in `data_fixtures/tiny/`. Fault makers for tests: `corrupt` (files)
and `fault_server` (a misbehaving HTTP server). `python -m data_fixtures OUT ...` writes a dataset.

The library never imports this package; it stays in the repository (not in the wheel).
"""

from pathlib import Path

from data_fixtures.generator import (
    DEFAULT_TASKS,
    GENERATOR_VERSION,
    cached_dataset,
    camera_keys,
    fixture_parser,
    frame_values,
    generate_dataset,
    main,
)
from lerobot_inspect.probes.framecode import FrameCode, decode_frame_code, encode_frame_code

TINY_KWARGS = {"episodes": 5, "length_range": (20, 40), "episodes_per_file": 2, "episodes_per_data_file": 3,
               "image_camera": True, "task_change_episode": 2}


def tiny_root() -> Path:
    """The committed tiny fixture (the wheel ships the same files: `lerobot_inspect._resources.tiny_root()`);
    regenerated into the fixture cache should a checkout lack it."""
    committed = Path(__file__).resolve().parent / "tiny"
    if (committed / "meta" / "info.json").exists():
        return committed
    return cached_dataset(**TINY_KWARGS)


__all__ = [
    "DEFAULT_TASKS",
    "GENERATOR_VERSION",
    "FrameCode",
    "cached_dataset",
    "camera_keys",
    "decode_frame_code",
    "encode_frame_code",
    "fixture_parser",
    "frame_values",
    "generate_dataset",
    "main",
    "tiny_root",
]
