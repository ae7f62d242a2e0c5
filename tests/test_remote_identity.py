"""A remote file that changes while it is read: an error naming it, never a frame of another version.

The server is the real loopback server (ETag from inode, mtime and size; If-Match answered with
412); the file is rewritten in place with the same size, as a re-upload would.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from data_fixtures import cached_dataset, decode_frame_code
from lerobot_inspect.errors import FetchError, IndexStaleError
from lerobot_inspect.format import DatasetMeta
from lerobot_inspect.io import RangeReader
from lerobot_inspect.io.loopback import serve_directory
from lerobot_inspect.loaders.streaming import StreamingDataset
from lerobot_inspect.video.index_io import build_dataset_index, save_index


def _rewrite_same_size(path: Path) -> None:
    """Replace the file by another of the same size (bytes in its second half changed)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:] = bytes(255 - b for b in data[middle:])
    stat = path.stat()
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a clock tick later


@pytest.fixture
def served_copy(tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    shutil.copytree(cached_dataset(episodes=12, length_range=(10, 14), episodes_per_file=12, cameras=1, seed=4),
                    root)
    return root


def test_a_file_replaced_mid_stream_stops_the_stream_naming_it(served_copy: Path) -> None:
    meta_local = DatasetMeta.open(str(served_copy))
    camera = meta_local.video_keys[0]
    mp4 = served_copy / meta_local.video_file(0, camera)
    with serve_directory(served_copy) as server:
        stream = StreamingDataset(server.url, seed=1, pool_size=1, shuffle=False, return_uint8=True)
        delivered = []
        with pytest.raises(FetchError) as raised:
            for sample in stream:
                delivered.append(sample)
                if len(delivered) == 15:  # the first episode and a bit of the second were fetched
                    _rewrite_same_size(mp4)
        served = server.stats()
    assert raised.value.code == "file-changed" and mp4.name in str(raised.value)
    assert 412 in served["status"], "the range after the change was conditional and refused"
    for sample in delivered:  # everything handed out before the error is the right frame
        code = decode_frame_code(sample[camera].permute(1, 2, 0).numpy())
        index = int(sample["index"])
        episode = int(np.searchsorted(meta_local.dataset_to_index, index, side="right"))
        assert code is not None and (code.episode, code.frame) == (
            episode, index - int(meta_local.dataset_from_index[episode]))
    assert len(delivered) < meta_local.total_frames


def test_a_dataset_opened_again_after_a_change_reads_the_new_version(served_copy: Path) -> None:
    """Pins belong to one open: a later open (a re-upload, or another server on the same port) starts afresh."""
    info = served_copy / "meta/info.json"
    with serve_directory(served_copy) as server:
        before = DatasetMeta.open(server.url)
        next(iter(StreamingDataset(before, shuffle=False, decode_video=False)))
        text = info.read_text()
        info.write_text(text.replace('"fps"', '"fps" ', 1))  # a new version: size, ETag and time differ
        after = DatasetMeta.open(server.url)
        sample = next(iter(StreamingDataset(after, shuffle=False, decode_video=False)))
    assert int(sample["index"]) == 0 and after.fps == before.fps


def test_the_byte_index_records_each_file_identity_and_refuses_another_version(served_copy: Path) -> None:
    meta_local = DatasetMeta.open(str(served_copy))
    camera = meta_local.video_keys[0]
    rel = meta_local.video_file(0, camera)
    with serve_directory(served_copy) as server:
        meta = DatasetMeta.open(server.url)
        index = build_dataset_index(meta, RangeReader(meta.fs))
        version = index.version_of(rel)
        assert version is not None and version.startswith("etag=")
        save_index(DatasetMeta.open(str(served_copy)), index)
        next(iter(StreamingDataset(server.url, shuffle=False, decode_video=True)))  # the index is good
        _rewrite_same_size(served_copy / rel)
        stream = StreamingDataset(server.url, shuffle=False)
        with pytest.raises(IndexStaleError, match="built from") as raised:
            next(iter(stream))
    assert raised.value.file.endswith(rel)
