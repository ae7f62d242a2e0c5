"""Remote video through the byte index: bytes at the server, frames equal to local decoding.

Every remote test serves a real dataset directory on 127.0.0.1 with `serve_directory`, which counts
the bytes it sends per path, so "costs only the episode's bytes" is measured where it is paid.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from data_fixtures import cached_dataset, camera_keys, decode_frame_code
from lerobot_inspect.errors import FetchError, IndexStaleError, OptionError
from lerobot_inspect.format import DatasetMeta
from lerobot_inspect.io import RangeReader
from lerobot_inspect.io.loopback import serve_directory
from lerobot_inspect.loaders.map_dataset import MapDataset
from lerobot_inspect.video.byte_index import BYTE_INDEX_DIR, ByteIndex
from lerobot_inspect.video.index_io import load_or_build_index, save_index
from lerobot_inspect.video.reader import VideoReader
from lerobot_inspect.video.remote import ByteIndexVideoReader, make_video_reader, merge_ranges

sys.path.insert(0, str(Path(__file__).parent))
from _mp4_samples import to_co64

CAMERA = camera_keys(1)[0]
KINDS = {
    # LeRobot's layout: AV1, GOP 2, faststart, 50 episodes in one file
    "av1_faststart": dict(episodes=50, length_range=(20, 40), episodes_per_file=50, cameras=1, seed=3),
    # H.264 with B-frames and an edit list
    "h264_bframes": dict(episodes=50, length_range=(20, 40), episodes_per_file=50, cameras=1, seed=3,
                         codec="h264", gop=12),
    # one episode per file: the encoder's own layout, moov at the end
    "moov_at_end": dict(episodes=3, length_range=(20, 40), episodes_per_file=1, cameras=1, seed=3),
}


def _copy(kind: str, tmp_path: Path) -> Path:
    source = cached_dataset(**KINDS["moov_at_end" if kind == "co64" else kind])
    root = tmp_path / kind
    shutil.copytree(source, root)
    if kind == "co64":
        meta = DatasetMeta.open(str(root))
        mp4 = root / meta.video_file(1, meta.video_keys[0])
        mp4.write_bytes(to_co64(mp4.read_bytes()))
    return root


def _build_and_save(root: Path) -> ByteIndex:
    meta = DatasetMeta.open(str(root))
    index = load_or_build_index(meta)
    save_index(meta, index)
    return index


def _codes(frames: torch.Tensor) -> list:
    return [decode_frame_code(frame.numpy()) for frame in frames]


@pytest.mark.parametrize("kind", ["av1_faststart", "h264_bframes", "moov_at_end", "co64"])
def test_one_episode_costs_header_plus_its_span(kind: str, tmp_path: Path) -> None:
    root = _copy(kind, tmp_path)
    index = _build_and_save(root)
    local = DatasetMeta.open(str(root))
    camera = local.video_keys[0]
    episode = 25 if local.num_episodes == 50 else 1
    entry = index.episode(episode, camera)
    if kind == "co64":
        assert b"co64" in (root / entry.path).read_bytes()[-(entry.size_bytes - entry.span_stop):]
    timestamps = np.arange(int(local.lengths[episode])) / local.fps
    expected = VideoReader(local, return_uint8=True).frames(episode, camera, timestamps)

    with serve_directory(root) as server:
        remote = DatasetMeta.open(server.url)
        reader = make_video_reader(remote, return_uint8=True)
        assert isinstance(reader, ByteIndexVideoReader)
        assert len(reader.source.index) == local.num_episodes  # loaded before counting
        server.reset_stats()
        got = reader.frames(episode, camera, timestamps)
        sent = server.stats()["paths"][f"/{entry.path}"]["bytes_sent"]

    header = sum(b - a for a, b in merge_ranges(entry.header_ranges))
    span = entry.span_stop - entry.span_start
    assert sent <= header + 1.10 * span, f"{kind}: fetched {sent} bytes for header {header} + span {span}"
    assert sent >= span, "the span itself must come from the server"
    if local.num_episodes == 50:
        assert sent < entry.size_bytes / 5, "a 50-episode file must not be read whole for one episode"
    assert _codes(got) == _codes(expected)
    assert [c.episode for c in _codes(got)] == [episode] * len(timestamps)
    assert [c.frame for c in _codes(got)] == list(range(len(timestamps)))
    assert torch.equal(got, expected), "pixels decoded from header + span differ from the whole file"


@pytest.fixture(scope="module")
def two_camera_root() -> Path:
    """AV1, 2 cameras of different sizes, 3 episodes per MP4, an image camera, files across chunks."""
    return cached_dataset(episodes=8, length_range=(12, 30), episodes_per_file=3, episodes_per_data_file=2,
                          chunks_size=2, task_change_episode=3, image_camera=True, seed=1)


def _assert_same_sample(a: dict, b: dict, where: str) -> None:
    assert list(a) == list(b), where
    for key, value in a.items():
        other = b[key]
        if isinstance(value, torch.Tensor):
            assert value.dtype == other.dtype and value.shape == other.shape, f"{where} {key}"
            assert torch.equal(value, other), f"{where} {key}"
        else:
            assert value == other, f"{where} {key}"


def test_map_dataset_over_http_equals_local(two_camera_root: Path) -> None:
    episodes = [0, 4, 7]
    local = MapDataset(str(two_camera_root), episodes=episodes, delta_timestamps={
        CAMERA: [-1 / 30, 0.0], "observation.state": [0.0, 1 / 30]})
    assert type(local.video) is VideoReader, "local roots keep the whole-file decoder"
    with serve_directory(two_camera_root) as server:
        remote = MapDataset(server.url, episodes=episodes, delta_timestamps={
            CAMERA: [-1 / 30, 0.0], "observation.state": [0.0, 1 / 30]})
        assert isinstance(remote.video, ByteIndexVideoReader)
        assert len(remote) == len(local)
        for i in range(len(local)):
            _assert_same_sample(local[i], remote[i], f"frame {i}")
        stats = remote.video.stats()
    # No saved index here: it was built in memory on first use; each (episode, camera) opened one decoder.
    assert stats["decoders_opened"] == len(episodes) * 2 and stats["reader"]["failures"] == 0


def test_video_access_is_validated_and_can_force_either_path(two_camera_root: Path) -> None:
    with pytest.raises(OptionError, match=r"video_access='bytes'.*'auto', 'file', 'byte_index'"):
        MapDataset(str(two_camera_root), episodes=[0], video_access="bytes")
    forced = MapDataset(str(two_camera_root), episodes=[1], video_access="byte_index")
    assert isinstance(forced.video, ByteIndexVideoReader)
    plain = MapDataset(str(two_camera_root), episodes=[1])
    for i in range(len(plain)):
        _assert_same_sample(plain[i], forced[i], f"frame {i}")


def test_prefetch_makes_the_next_episode_a_cache_hit(tmp_path: Path) -> None:
    root = _copy("av1_faststart", tmp_path)
    _build_and_save(root)
    with serve_directory(root) as server:
        meta = DatasetMeta.open(server.url)
        reader = make_video_reader(meta, return_uint8=True)
        camera = meta.video_keys[0]
        reader.prefetch([3, 4])
        reader.frames(3, camera, [0.0])
        reader.frames(4, camera, [0.0])
        stats = reader.stats()
    assert stats["cache"]["prefetches"] == 3, "one header + two spans"
    assert stats["cache"]["misses"] == 0 and stats["cache"]["hits"] == 4
    assert stats["reader"]["requests"] == 3
    assert stats["cache"]["fetch_s"] > 0 and stats["cache"]["decode_s"] > 0, "both sides of the time are recorded"


def test_an_episode_decoder_knows_only_its_own_frames(tmp_path: Path) -> None:
    """A decoder over header + span numbers the episode's frames only: another episode's frame is out
    of range, never a read into bytes that were not fetched."""
    root = _copy("av1_faststart", tmp_path)
    _build_and_save(root)
    with serve_directory(root) as server:
        meta = DatasetMeta.open(server.url)
        reader = make_video_reader(meta, return_uint8=True)
        camera = meta.video_keys[0]
        source = reader.source
        entry = source.entry(10, camera)
        decoder = source.open_decoder(entry)
        first = decoder.get_frames_at([0])
        assert abs(float(first.pts_seconds[0]) - meta.video_span_s(10, camera)[0]) < 1e-4
        with pytest.raises(IndexError, match=f"must be less than {entry.n_samples}"):
            decoder.get_frames_at([entry.n_samples])


def test_stale_index_names_the_file_and_the_rebuild_command(tmp_path: Path) -> None:
    root = _copy("moov_at_end", tmp_path)
    index = _build_and_save(root)
    entry = index.episode(2, CAMERA)
    with open(root / entry.path, "ab") as handle:
        handle.write(b"\0" * 100)
    meta = DatasetMeta.open(str(root))
    with pytest.raises(IndexStaleError, match=rf"{entry.path}.*{entry.size_bytes + 100} bytes.*index build {root}"):
        load_or_build_index(meta)
    with serve_directory(root) as server:
        remote = DatasetMeta.open(server.url)
        reader = make_video_reader(remote)
        reader.frames(0, CAMERA, [0.0])  # an untouched file is fine
        with pytest.raises(IndexStaleError, match=rf"{entry.path}.*index build {server.url}"):
            reader.frames(2, CAMERA, [0.0])


def test_saved_index_round_trips_through_http(tmp_path: Path) -> None:
    root = _copy("moov_at_end", tmp_path)
    index = _build_and_save(root)
    assert sorted(p.name for p in (root / BYTE_INDEX_DIR).iterdir()) == [
        "episodes.parquet", "files.parquet", "frames.parquet"]
    with serve_directory(root) as server:
        remote = DatasetMeta.open(server.url)
        loaded = load_or_build_index(remote, RangeReader(remote.fs))
        assert server.stats()["paths"].get(f"/{index.episode(0, CAMERA).path}", {}).get(
            "bytes_sent", 0) == 0, "loading a saved index reads no video bytes"
    assert loaded.episodes.equals(index.episodes) and loaded.frames.equals(index.frames)


# ---- optional: s3:// through s3fs against moto's server on 127.0.0.1 ---------------------------------
def test_s3_episode_decodes_like_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s3fs = pytest.importorskip("s3fs", reason="s3fs not installed: pip install s3fs to test s3:// roots")
    moto_server = pytest.importorskip(
        "moto.server", reason="moto[server] not installed: pip install 'moto[server]' to test s3:// roots")
    import fsspec

    root = _copy("av1_faststart", tmp_path)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        options = {"key": "testing", "secret": "testing", "skip_instance_cache": True,
                   "client_kwargs": {"endpoint_url": f"http://{host}:{port}", "region_name": "eu-west-1"}}
        fs = s3fs.S3FileSystem(**options)
        fs.mkdir("lerobot-remote-test")
        fs.put(str(root), "lerobot-remote-test/ds", recursive=True)
        # DatasetMeta.open(url) builds its own filesystem: hand s3fs the endpoint through fsspec's config.
        monkeypatch.setitem(fsspec.config.conf, "s3", options)
        meta = DatasetMeta.open("s3://lerobot-remote-test/ds")
        reader = make_video_reader(meta, return_uint8=True)
        assert isinstance(reader, ByteIndexVideoReader)
        camera = meta.video_keys[0]
        timestamps = np.arange(int(meta.lengths[7])) / meta.fps
        got = reader.frames(7, camera, timestamps)
        stats = reader.stats()
        # `index build` writes meta/byte_index/ into the bucket; a new reader then loads it from there.
        args = _index_args("index", "build", "s3://lerobot-remote-test/ds", "--no-progress")
        assert args.func(args) == 0
        assert fs.exists(f"lerobot-remote-test/ds/{BYTE_INDEX_DIR}/frames.parquet")
        saved = make_video_reader(DatasetMeta.open("s3://lerobot-remote-test/ds"), return_uint8=True)
        assert saved.frames(7, camera, timestamps).equal(got)
        entry = saved.index.episode(7, camera)
        header = sum(b - a for a, b in merge_ranges(entry.header_ranges))
        assert saved.stats()["reader"]["bytes"] == header + entry.span_stop - entry.span_start
    finally:
        server.stop()
    local = DatasetMeta.open(str(root))
    expected = VideoReader(local, return_uint8=True).frames(7, camera, timestamps)
    assert torch.equal(got, expected)
    assert [c.episode for c in _codes(got)] == [7] * len(timestamps)
    assert stats["reader"]["bytes"] < (root / local.video_file(7, camera)).stat().st_size


# ---- SparseFile gap policy (what FFmpeg's read-ahead needs) --------------------------------------------
def test_sparse_zero_policy_fills_read_ahead_but_refuses_seeks_into_gaps() -> None:
    from lerobot_inspect.io import SparseFile

    original = bytes(range(256)) * 4
    sparse = SparseFile(1024, {0: original[:10], 100: original[100:150]}, name="v.mp4", gap_policy="zeros")
    # A read starting in a held span is filled to the size asked: held bytes, zeros, the next held span.
    assert sparse.read(120) == original[:10] + bytes(90) + original[100:120]
    assert sparse.zero_filled_bytes == 90 and sparse.zero_filled_reads == 1
    # Continuing where the last read stopped (FFmpeg reading through a short gap) is served too,
    # even after the size query FFmpeg makes between reads.
    sparse.seek(0, 2)
    sparse.seek(120)
    assert sparse.read(100) == original[120:150] + bytes(70)
    assert sparse.read(10) == bytes(10) and sparse.zero_filled_bytes == 170
    # A seek that lands in a gap is a request for bytes nobody fetched: refused.
    sparse.seek(500)
    with pytest.raises(FetchError, match=r"byte 500 of v.mp4 is outside the fetched spans"):
        sparse.read(10)
    assert sparse.seek(2000) == 2000 and sparse.read(100) == b"", "past the end reads nothing, as a file"
    with pytest.raises(OptionError, match=r"gap_policy='noise'.*'raise', 'zeros'"):
        SparseFile(10, {}, name="v.mp4", gap_policy="noise")


# ---- index build / show CLI handlers -------------------------------------------------------------------
def _index_args(*argv: str):
    from lerobot_inspect.cli import build_parser

    return build_parser().parse_args(list(argv))


def test_index_build_cli_writes_tables_and_resumes_after_a_failed_file(tmp_path: Path, capsys) -> None:
    import re

    from lerobot_inspect.video.index_io import resume_dir_for, video_file_refs

    root = _copy("moov_at_end", tmp_path)
    meta = DatasetMeta.open(str(root))
    refs = video_file_refs(meta)
    last = root / refs[-1].path
    hidden = last.with_suffix(".away")
    last.rename(hidden)  # the last file to be parsed fails: a network error on one file
    args = _index_args("index", "build", str(root), "--threads", "1", "--no-progress")
    with pytest.raises(FetchError, match=re.escape(refs[-1].path)):
        args.func(args)
    assert not (root / BYTE_INDEX_DIR).exists(), "a failed build writes no index"
    assert len(list(resume_dir_for(meta).glob("*.npz"))) == len(refs) - 1, "finished files are kept"

    hidden.rename(last)
    capsys.readouterr()
    assert args.func(args) == 0
    out = capsys.readouterr().out
    requests = int(re.search(r"in (\d+) requests", out).group(1))
    assert requests <= 3, f"the resumed build re-parsed finished files: {out}"
    assert sorted(p.name for p in (root / BYTE_INDEX_DIR).iterdir()) == [
        "episodes.parquet", "files.parquet", "frames.parquet"]
    assert not resume_dir_for(meta).exists(), "scratch files go once the build succeeded"
    index = ByteIndex.load(root / BYTE_INDEX_DIR)
    fresh = load_or_build_index(DatasetMeta.open(str(tmp_path / "moov_at_end")))
    assert index.episodes.equals(fresh.episodes) and index.frames.equals(fresh.frames)

    show = _index_args("index", "show", str(root))
    assert show.func(show) == 0
    table = capsys.readouterr().out
    assert refs[-1].path in table and re.search(r"total: 3 files\s+\d+\s+3\s", table)


def test_index_show_without_an_index_says_how_to_build_it(tmp_path: Path, capsys) -> None:
    root = _copy("moov_at_end", tmp_path)
    args = _index_args("index", "show", str(root))
    assert args.func(args) == 1
    assert f"lerobot-inspect index build {root}" in capsys.readouterr().out


def test_index_build_to_a_read_only_http_root_points_to_out(tmp_path: Path, capsys) -> None:
    root = _copy("moov_at_end", tmp_path)
    with serve_directory(root) as server:
        args = _index_args("index", "build", server.url, "--no-progress")
        with pytest.raises(OptionError, match="--out DIR"):
            args.func(args)
        out_dir = tmp_path / "index_out"
        args = _index_args("index", "build", server.url, "--no-progress", "--out", str(out_dir))
        assert args.func(args) == 0
    assert len(ByteIndex.load(out_dir)) == 3


def test_dataloader_workers_read_remote_video_like_local(two_camera_root: Path) -> None:
    """Forked workers inherit the index loaded in the parent and open their own HTTP sessions."""
    from torch.utils.data import DataLoader

    local = MapDataset(str(two_camera_root), episodes=[0, 5])
    expected = torch.stack([local[i][CAMERA] for i in range(len(local))])
    with serve_directory(two_camera_root) as server:
        remote = MapDataset(server.url, episodes=[0, 5])
        server.reset_stats()
        loader = DataLoader(remote, batch_size=8, num_workers=2, multiprocessing_context="fork")
        got = torch.cat([batch[CAMERA] for batch in loader])
        paths = server.stats()["paths"]
    assert torch.equal(got, expected)
    assert any(p.endswith(".mp4") for p in paths), "the workers fetched video"
    assert not [p for p in paths if "byte_index" in p or "meta/" in p], "workers reuse the parent's index and meta"


def test_memory_root_uses_the_byte_index_and_matches_local(two_camera_root: Path) -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    base = f"/remote_test_{id(two_camera_root)}"
    for path in two_camera_root.rglob("*"):
        if path.is_file():
            fs.pipe(f"{base}/{path.relative_to(two_camera_root)}", path.read_bytes())
    try:
        remote = MapDataset(f"memory://{base}", episodes=[2])
        local = MapDataset(str(two_camera_root), episodes=[2])
        assert isinstance(remote.video, ByteIndexVideoReader)
        for i in range(len(local)):
            _assert_same_sample(local[i], remote[i], f"frame {i}")
    finally:
        fs.rm(base, recursive=True)
