"""Shared fixtures: real LeRobot v3 datasets made by the generator, cached across test runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from data_fixtures import cached_dataset

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "data_fixtures" / "tiny"


@pytest.fixture(scope="session")
def tiny_root() -> Path:
    """The committed demo fixture (AV1, two cameras, faststart and moov-at-end files)."""
    return TINY


@pytest.fixture(scope="session")
def av1_multifile_root() -> Path:
    """AV1 GOP 2, 3 episodes per MP4, 2 per data file, tiny chunks so files roll into new chunks."""
    return cached_dataset(episodes=8, length_range=(12, 30), episodes_per_file=3, episodes_per_data_file=2,
                          chunks_size=2, task_change_episode=3, image_camera=True, seed=1)


@pytest.fixture(scope="session")
def h264_root() -> Path:
    """H.264 with B-frames, GOP 12 and an edit list; 4 episodes per MP4."""
    return cached_dataset(episodes=6, length_range=(20, 40), codec="h264", gop=12, episodes_per_file=4, seed=2)


@pytest.fixture()
def tiny_copy(tmp_path: Path) -> Path:
    """A writable copy of the tiny fixture, for corruption tests."""
    dest = tmp_path / "tiny"
    shutil.copytree(TINY, dest)
    return dest
