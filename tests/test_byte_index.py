"""Episode byte index: build from real MP4s through injected I/O, save, load, look up, resume."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from _mp4_samples import FPS, N_FRAMES, SparseFile, episode_bounds, make_mp4
from torchcodec.decoders import VideoDecoder

from lerobot_inspect.errors import DatasetFormatError, IndexStaleError, OptionError
from lerobot_inspect.video.byte_index import (
    BYTE_INDEX_FORMAT,
    ByteIndex,
    VideoFileRef,
    build_byte_index,
)
from lerobot_inspect.video.mp4 import parse_mp4


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """Two cameras: `front` is one AV1 file, `wrist` is an H.264 B-frame file (moov at end)."""
    root = tmp_path_factory.mktemp("ds")
    for camera, kind in (("front", "av1_faststart"), ("wrist", "h264_bframes")):
        directory = root / "videos" / camera / "chunk-000"
        directory.mkdir(parents=True)
        make_mp4(directory, kind).rename(directory / "file-000.mp4")
    return root


def refs() -> list[VideoFileRef]:
    return [VideoFileRef(camera=c, path=f"videos/{c}/chunk-000/file-000.mp4", episodes=episode_bounds())
            for c in ("front", "wrist")]


class LocalIO:
    """Plain local-file callbacks that count reads, standing in for the fsspec RangeReader."""

    def __init__(self, root: Path, fail_on: str | None = None) -> None:
        self.root, self.fail_on, self.reads = root, fail_on, []

    def read(self, path: str, start: int, stop: int) -> bytes:
        if self.fail_on and self.fail_on in path:
            raise OSError(f"simulated network failure on {path}")
        self.reads.append((path, start, stop))
        with open(self.root / path, "rb") as f:
            f.seek(start)
            return f.read(stop - start)

    def size(self, path: str) -> int:
        return (self.root / path).stat().st_size

    def version(self, path: str) -> str:
        return str((self.root / path).stat().st_mtime_ns)


def test_build_save_load_lookup(root, tmp_path):
    io_ = LocalIO(root)
    calls = []
    index = build_byte_index(refs(), io_.read, io_.size, threads=2, progress=lambda *a: calls.append(a))
    assert len(calls) == 2 and calls[-1][:2] == (2, 2)
    assert len(index) == 6 and index.cameras == ["front", "wrist"]
    index.save(tmp_path / "byte_index")
    loaded = ByteIndex.load(tmp_path / "byte_index")
    for table in ("files", "episodes", "frames"):
        meta = pq.read_schema(tmp_path / "byte_index" / f"{table}.parquet").metadata
        assert meta[b"lerobot_inspect.byte_index.format"] == str(BYTE_INDEX_FORMAT).encode()
    for camera in ("front", "wrist"):
        path = f"videos/{camera}/chunk-000/file-000.mp4"
        track = parse_mp4((root / path).read_bytes(), name=path).video
        frames = loaded.file_frames(path)
        assert frames["pts"].tolist() == track.pts.tolist()
        assert frames["offset"].tolist() == track.offset.tolist()
        assert loaded.timescale(path) == track.timescale
        for episode_index, from_ts, to_ts in episode_bounds():
            entry = loaded.episode(episode_index, camera)
            assert entry.path == path and entry.n_frames == round((to_ts - from_ts) * FPS)
            assert entry == index.episode(episode_index, camera)


def test_episode_bytes_decode_like_the_full_file(root):
    io_ = LocalIO(root)
    index = build_byte_index(refs(), io_.read, io_.size, threads=1)
    for camera in ("front", "wrist"):
        path = f"videos/{camera}/chunk-000/file-000.mp4"
        data = (root / path).read_bytes()
        reference = VideoDecoder(io.BytesIO(data)).get_frames_in_range(0, N_FRAMES).data
        for episode_index, from_ts, to_ts in episode_bounds():
            entry = index.episode(episode_index, camera)
            decoder = VideoDecoder(SparseFile(data, entry.byte_ranges, seed=episode_index),
                                   custom_frame_mappings=index.frame_mappings(path))
            first, last = round(from_ts * FPS), round(to_ts * FPS)
            got = decoder.get_frames_in_range(first, last).data
            assert torch.equal(got, reference[first:last]), f"{camera} episode {episode_index}"


def test_index_build_reads_only_headers(root):
    io_ = LocalIO(root)
    build_byte_index(refs(), io_.read, io_.size, probe_bytes=1024)
    for camera in ("front", "wrist"):
        path = f"videos/{camera}/chunk-000/file-000.mp4"
        info = parse_mp4((root / path).read_bytes(), name=path)
        mdat_start, mdat_stop = info.mdat_ranges[0]
        sample_bytes = sum(max(0, min(b, mdat_stop) - max(a, mdat_start + 64))
                           for p, a, b in io_.reads if p == path)
        assert sample_bytes <= 1024, f"{camera}: index build read {sample_bytes} bytes of frames"


def test_lookups_are_fast_for_1000_episodes(tmp_path):
    """1000 episodes in 10 files of 3000 samples: loading and lookups stay in milliseconds."""
    n_files, per_file, n_samples = 10, 100, 3000
    files = pa.table({
        "file_id": pa.array(np.arange(n_files, dtype=np.int32)),
        "path": [f"videos/cam/chunk-000/file-{i:03d}.mp4" for i in range(n_files)],
        "camera": ["cam"] * n_files, "size_bytes": [10_000_000] * n_files, "etag": [None] * n_files,
        "codec": ["av01"] * n_files, "width": pa.array([64] * n_files, pa.int32()),
        "height": pa.array([64] * n_files, pa.int32()), "timescale": [15360] * n_files,
        "n_samples": [n_samples] * n_files, "frames_start": [i * n_samples for i in range(n_files)],
        "frames_stop": [(i + 1) * n_samples for i in range(n_files)], "moov_start": [32] * n_files,
        "moov_stop": [5000] * n_files, "header_starts": [[0, 32, 5000]] * n_files,
        "header_stops": [[32, 5000, 5016]] * n_files,
    })
    n_eps = n_files * per_file
    episodes = pa.table({
        "episode_index": np.arange(n_eps), "camera": ["cam"] * n_eps,
        "file_id": pa.array(np.arange(n_eps) // per_file, pa.int32()),
        "from_timestamp": np.zeros(n_eps), "to_timestamp": np.ones(n_eps),
        **{c: np.arange(n_eps) for c in ("first_sample", "n_samples", "n_frames", "span_start",
                                        "span_stop", "floor_bytes")},
    })
    n = n_files * n_samples
    frames = pa.table({
        "file_id": pa.array(np.repeat(np.arange(n_files), n_samples), pa.int32()),
        "sample": pa.array(np.tile(np.arange(n_samples), n_files), pa.int32()),
        "pts": np.arange(n) * 512, "dts": np.arange(n) * 512, "duration": np.full(n, 512),
        "keyframe": np.arange(n) % 2 == 0, "offset": np.arange(n) * 1000, "size": np.full(n, 1000),
    })
    ByteIndex(files, episodes, frames).save(tmp_path)
    ByteIndex.load(tmp_path)  # warm the filesystem cache and pyarrow
    start = time.perf_counter()
    index = ByteIndex.load(tmp_path)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    for episode_index in range(n_eps):
        index.episode(episode_index, "cam")
    lookup_s = (time.perf_counter() - start) / n_eps
    print(f"load {load_s * 1e3:.1f} ms, lookup {lookup_s * 1e6:.1f} us")
    assert load_s < 0.5 and lookup_s < 1e-3


def test_resume_skips_finished_files(root, tmp_path):
    partial = tmp_path / ".partial"
    with pytest.raises(OSError, match="simulated"):
        build_byte_index(refs(), LocalIO(root, fail_on="wrist").read, LocalIO(root).size,
                         threads=1, resume_dir=partial, file_version=LocalIO(root).version)
    assert len(list(partial.glob("*.npz"))) == 1  # front finished and was kept
    assert partial.stat().st_mode & 0o777 == 0o700, "partial results are kept where only this user can look"
    io_ = LocalIO(root)
    index = build_byte_index(refs(), io_.read, io_.size, threads=1, resume_dir=partial, file_version=io_.version)
    assert {p for p, _, _ in io_.reads} == {"videos/wrist/chunk-000/file-000.mp4"}
    assert len(index) == 6
    assert not partial.exists(), "partial results are removed once the build succeeds"


def test_resume_without_a_version_tag_compares_the_moov(root, tmp_path):
    """Without an ETag or mtime a same-size replacement cannot be told by its identity: the finished
    file's moov is read again (one read) and compared with the hash the partial recorded."""
    partial = tmp_path / ".partial"
    with pytest.raises(OSError, match="simulated"):
        build_byte_index(refs(), LocalIO(root, fail_on="wrist").read, LocalIO(root).size,
                         threads=1, resume_dir=partial)
    io_ = LocalIO(root)
    index = build_byte_index(refs(), io_.read, io_.size, threads=1, resume_dir=partial)
    front = [(start, stop) for p, start, stop in io_.reads if "front" in p]
    moov = parse_mp4((root / refs()[0].path).read_bytes(), name="front").moov_range
    assert front == [moov], "the finished file cost one read of its moov, not a parse"
    assert len(index) == 6


def test_check_fresh_names_the_file_and_the_fix(root):
    io_ = LocalIO(root)
    index = build_byte_index(refs()[:1], io_.read, io_.size)
    path = refs()[0].path
    index.check_fresh({path: io_.size(path)})
    with pytest.raises(IndexStaleError, match=r"file-000\.mp4.*lerobot-inspect index build ROOT"):
        index.check_fresh({path: io_.size(path) + 1})
    with pytest.raises(IndexStaleError, match="not in the byte index"):
        index.check_fresh({"videos/other.mp4": 5})


def test_load_refuses_other_format_version(root, tmp_path):
    io_ = LocalIO(root)
    build_byte_index(refs()[:1], io_.read, io_.size).save(tmp_path)
    table = pq.read_table(tmp_path / "files.parquet")
    pq.write_table(table.replace_schema_metadata({b"lerobot_inspect.byte_index.format": b"999"}),
                   tmp_path / "files.parquet")
    with pytest.raises(IndexStaleError, match="format"):
        ByteIndex.load(tmp_path)
    with pytest.raises(IndexStaleError, match="cannot read"):
        ByteIndex.load(tmp_path / "missing")


def test_bad_inputs_are_named(root):
    io_ = LocalIO(root)
    with pytest.raises(OptionError):
        build_byte_index(refs(), io_.read, io_.size, threads=0)
    wrong = [VideoFileRef(camera="front", path=refs()[0].path, episodes=[(7, 50.0, 51.0)])]
    with pytest.raises(DatasetFormatError, match=r"episode 7.*front"):
        build_byte_index(wrong, io_.read, io_.size)
    index = build_byte_index(refs()[:1], io_.read, io_.size)
    with pytest.raises(IndexStaleError, match="episode 0, camera 'wrist'"):
        index.episode(0, "wrist")
