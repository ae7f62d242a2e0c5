"""The per-episode MP4: its sample table reads back exactly, its size follows the episode, and FFmpeg
decodes from it the same pixels at the same pts as from the whole file (AV1, and H.264 with B-frames
and an edit list)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchcodec.decoders import VideoDecoder

from lerobot_inspect.errors import Mp4ParseError
from lerobot_inspect.format import DatasetMeta
from lerobot_inspect.video.mp4 import parse_mp4
from lerobot_inspect.video.mp4_write import TrackTemplate, episode_mp4_header, track_template
from lerobot_inspect.video.remote import ByteIndexSource

TINY_AV1 = Path(__file__).resolve().parents[1] / "data_fixtures/tiny/videos/observation.images.front/chunk-000"
COLUMNS = ("pts", "dts", "duration", "keyframe", "offset", "size")


@functools.cache
def _template(path: Path = TINY_AV1 / "file-000.mp4") -> TrackTemplate:
    data = path.read_bytes()
    return track_template([(0, data)], file_size=len(data), name=str(path))


def _read_back(header: bytes, span_bytes: int):
    """The video track parse_mp4 finds in header + span, without holding the span's bytes."""

    def read(start: int, stop: int) -> bytes:
        return header[start:stop].ljust(stop - start, b"\0")

    return parse_mp4(read, file_size=len(header) + span_bytes, name="episode.mp4").video


# ---- pure: the sample table survives the round trip ---------------------------------------------------


@st.composite
def episode_tables(draw):
    """Samples in decode order as a byte index holds them: decode times rising by each duration, a
    reorder delay >= 0 (pts >= dts, as after FFmpeg's dts shift), a keyframe first, and byte ranges
    inside a span, in any order and with gaps (other data interleaved)."""
    n = draw(st.integers(1, 40))
    durations = np.array(draw(st.lists(st.integers(1, 3000), min_size=n, max_size=n)), dtype=np.int64)
    first_dts = draw(st.integers(-5000, 10**9))
    dts = first_dts + np.r_[0, np.cumsum(durations[:-1])]
    pts = dts + np.array(draw(st.lists(st.integers(0, 4000), min_size=n, max_size=n)), dtype=np.int64)
    keyframe = np.array([True, *draw(st.lists(st.booleans(), min_size=n - 1, max_size=n - 1))])
    size = np.array(draw(st.lists(st.integers(1, 5000), min_size=n, max_size=n)), dtype=np.int64)
    gaps = np.array(draw(st.lists(st.integers(0, 100), min_size=n, max_size=n)), dtype=np.int64)
    order = np.array(draw(st.permutations(range(n))))
    span_start = draw(st.integers(0, 10**10))
    slot_start = span_start + np.cumsum(gaps + size[order]) - size[order]  # slot k holds sample order[k]
    offset = np.empty(n, dtype=np.int64)
    offset[order] = slot_start
    span_stop = int((offset + size).max()) + draw(st.integers(0, 100))
    return {"pts": pts, "dts": dts, "duration": durations, "keyframe": keyframe, "offset": offset,
            "size": size, "span_start": span_start, "span_stop": span_stop}


@settings(max_examples=150, deadline=None)
@given(table=episode_tables())
def test_parse_mp4_reads_back_the_samples_with_offsets_rebased(table):
    header = episode_mp4_header(_template(), **table)
    track = _read_back(header, table["span_stop"] - table["span_start"])
    for column in ("pts", "dts", "duration", "keyframe", "size"):
        assert np.array_equal(getattr(track, column), table[column]), column
    assert np.array_equal(track.offset, len(header) + table["offset"] - table["span_start"])
    assert track.timescale == _template().timescale and track.codec == "av01"


def test_a_file_past_4_gib_gets_co64_and_a_64_bit_mdat():
    size = np.array([1000, 2000], dtype=np.int64)
    span_start = 10**10
    table = {"pts": np.array([0, 512]), "dts": np.array([0, 512]), "duration": np.array([512, 512]),
             "keyframe": np.array([True, False]), "size": size, "offset": span_start + np.array([0, 5 << 30]),
             "span_start": span_start, "span_stop": span_start + (5 << 30) + 2000}
    header = episode_mp4_header(_template(), **table)
    assert b"co64" in header and b"stco" not in header
    track = _read_back(header, table["span_stop"] - span_start)
    assert track.offset.tolist() == [len(header), len(header) + (5 << 30)]


def test_header_size_follows_the_episode_not_the_file():
    """A 100-frame episode of a 1,000,000-sample file (10,000 episodes of 100 frames) costs a few KB
    wherever it sits; the whole file's table, which a decoder over the original moov indexes, ~10 MB."""
    n_file = 1_000_000
    rng = np.random.default_rng(0)
    size = rng.integers(200, 3000, n_file)
    dts = np.arange(n_file, dtype=np.int64) * 512
    file = {"pts": dts, "dts": dts, "duration": np.full(n_file, 512), "keyframe": np.arange(n_file) % 2 == 0,
            "size": size, "offset": 48 + np.cumsum(size) - size}

    def header_bytes(first: int, n: int) -> int:
        window = {k: v[first : first + n] for k, v in file.items()}
        stop = int(window["offset"][-1] + window["size"][-1])
        return len(episode_mp4_header(_template(), **window, span_start=int(window["offset"][0]), span_stop=stop))

    for first in (0, n_file // 2, n_file - 100):
        assert header_bytes(first, 100) < 10_000, f"episode at sample {first}"
    step = header_bytes(0, 200) - header_bytes(0, 100)
    assert header_bytes(0, 300) - header_bytes(0, 200) == step <= 100 * 10, "not linear in the episode's samples"
    assert header_bytes(0, n_file) > 100 * header_bytes(0, 100)


def test_template_needs_a_whole_moov_with_a_video_track():
    data = (TINY_AV1 / "file-000.mp4").read_bytes()
    template = _template()
    assert template.ftyp == data[: len(template.ftyp)] and template.ftyp[4:8] == b"ftyp"
    assert template.stsd[4:8] == b"stsd" and template.stsd in data
    assert (template.width, template.height) == (64, 48)
    moov_stop = parse_mp4(data, name="tiny").moov_range[1]
    with pytest.raises(Mp4ParseError, match=r"cut\.mp4: the header bytes hold no whole moov"):
        track_template([(0, data[: moov_stop - 1])], file_size=len(data), name="cut.mp4")
    # moov at the end of the file (file-002), given as the separate pieces a sparse reader holds
    late = (TINY_AV1 / "file-002.mp4").read_bytes()
    late_info = parse_mp4(late, name="late")
    pieces = [(a, late[a:b]) for a, b in late_info.header_ranges]
    assert track_template(pieces, file_size=len(late), name="late").stsd == _template(TINY_AV1 / "file-002.mp4").stsd
    with pytest.raises(Mp4ParseError, match="samples lie at bytes"):
        episode_mp4_header(template, pts=[0], dts=[0], duration=[512], keyframe=[True], offset=[100], size=[50],
                           span_start=120, span_stop=200, name="stale.mp4")


# ---- real files: the episode MP4 decodes like the whole file ----------------------------------------


@functools.cache
def _whole_file(path: str) -> tuple[torch.Tensor, np.ndarray]:
    """Every frame of a local MP4 and its pts, from TorchCodec's own decoder over the whole file."""
    decoder = VideoDecoder(path)
    batch = decoder.get_frames_in_range(start=0, stop=len(decoder))
    return batch.data, batch.pts_seconds.numpy()


@pytest.mark.parametrize("fixture", ["av1_multifile_root", "h264_root"])
def test_episode_decoders_match_the_whole_file_decoder(fixture: str, request: pytest.FixtureRequest) -> None:
    root = Path(request.getfixturevalue(fixture))
    meta = DatasetMeta.open(str(root))
    source = ByteIndexSource(meta)
    n = meta.num_episodes
    for camera in meta.video_keys:
        for episode in sorted({0, n // 2, n - 1}):
            where = f"{fixture}, camera {camera}, episode {episode}"
            entry = source.entry(episode, camera)
            _, opener, pts_s = source(episode, camera)
            decoder = opener()
            whole_data, whole_pts = _whole_file(str(root / entry.path))
            at = np.searchsorted(whole_pts, pts_s)
            assert len(decoder) == entry.n_samples == len(pts_s), where
            np.testing.assert_allclose(whole_pts[at], pts_s, rtol=0, atol=1e-9, err_msg=where)
            picked = decoder.get_frames_at(indices=list(range(len(decoder))))
            walked = decoder.get_frames_in_range(start=0, stop=len(decoder))
            for how, batch in (("get_frames_at", picked), ("get_frames_in_range", walked)):
                np.testing.assert_allclose(batch.pts_seconds.numpy(), pts_s, rtol=0, atol=1e-9,
                                           err_msg=f"{where} {how}")
                assert torch.equal(batch.data, whole_data[at]), f"{where}: {how} decoded other pixels"
            # one frame after a seek into the episode (not from its first keyframe)
            last = decoder.get_frames_at(indices=[len(decoder) - 1])
            assert torch.equal(last.data[0], whole_data[at[-1]]), where
    live = source.stats()["episode_files"]
    assert live["live_decoders"] >= 1 and live["header_bytes"] < 4000 * live["live_decoders"]


def test_h264_fixture_reorders_and_the_episode_mp4_keeps_its_ctts(h264_root: Path) -> None:
    """The H.264 case above is the one with composition offsets: B-frames, so ctts and an edit list."""
    meta = DatasetMeta.open(str(h264_root))
    source = ByteIndexSource(meta)
    camera = meta.video_keys[0]
    entry = source.entry(meta.num_episodes // 2, camera)
    frames = source.index.file_frames(entry.path)
    window = {k: frames[k][entry.first_sample : entry.first_sample + entry.n_samples] for k in COLUMNS}
    assert (window["pts"] != window["dts"]).any() and (np.diff(window["pts"]) < 0).any(), "no B-frames"
    data = (h264_root / entry.path).read_bytes()
    template = track_template([(a, data[a:b]) for a, b in entry.header_ranges], file_size=len(data), name="h264")
    assert template.codec == "avc1"
    header = episode_mp4_header(template, **window, span_start=entry.span_start, span_stop=entry.span_stop)
    assert b"ctts" in header and b"elst" in header
    track = parse_mp4(header + data[entry.span_start : entry.span_stop], name="episode").video
    for column in ("pts", "dts", "duration", "keyframe", "size"):
        assert np.array_equal(getattr(track, column), window[column]), column
    assert np.array_equal(track.offset, len(header) + window["offset"] - entry.span_start)
