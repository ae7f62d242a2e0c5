"""The MP4 parser against what FFmpeg (PyAV) and TorchCodec report on real files."""

from __future__ import annotations

import io
import struct

import av
import numpy as np
import pytest
import torch
from _mp4_samples import FPS, KINDS, N_FRAMES, SparseFile, episode_bounds, make_mp4, to_co64
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torchcodec.decoders import VideoDecoder

from lerobot_inspect.errors import DatasetFormatError, Mp4ParseError
from lerobot_inspect.video.mp4 import (
    custom_frame_mappings_json,
    episode_span,
    parse_mp4,
    read_mp4_header,
    reorder_depth,
)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, bytes]:
    directory = tmp_path_factory.mktemp("mp4")
    out = {kind: make_mp4(directory, kind).read_bytes() for kind in KINDS}
    out["av1_co64"] = to_co64(out["av1_moov_end"])
    return out


def pyav_packets(data: bytes) -> dict[str, list]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        packets = [p for p in container.demux(stream) if p.size]
        return {
            "pts": [p.pts for p in packets],
            "dts": [p.dts for p in packets],
            "offset": [p.pos for p in packets],
            "size": [p.size for p in packets],
            "keyframe": [bool(p.is_keyframe) for p in packets],
            "duration": [p.duration for p in packets],
            "time_base": stream.time_base,
        }


ALL_KINDS = [*KINDS, "av1_co64"]


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_sample_table_matches_ffmpeg_demuxer(videos, kind):
    data = videos[kind]
    track = parse_mp4(data, name=kind).video
    expected = pyav_packets(data)
    assert track.n_samples == N_FRAMES
    assert expected["time_base"].denominator == track.timescale and expected["time_base"].numerator == 1
    for column in ("pts", "dts", "offset", "size", "keyframe", "duration"):
        assert getattr(track, column).tolist() == expected[column], f"{kind}: {column} differs from FFmpeg"


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_pts_and_keyframes_match_torchcodec_exact_scan(videos, kind):
    data = videos[kind]
    track = parse_mp4(data, name=kind).video
    decoder = VideoDecoder(io.BytesIO(data), seek_mode="exact")
    assert decoder.metadata.num_frames == track.n_samples
    frames = decoder.get_frames_in_range(0, track.n_samples)
    np.testing.assert_allclose(frames.pts_seconds.numpy(), np.sort(track.pts_s))
    assert decoder.metadata.begin_stream_seconds == pytest.approx(track.pts_s.min())


def test_layouts_and_codecs(videos):
    fast = parse_mp4(videos["av1_faststart"], name="fast")
    end = parse_mp4(videos["av1_moov_end"], name="end")
    assert fast.faststart and not end.faststart
    assert [b[0] for b in end.boxes][-1] == "moov"
    assert fast.video.codec == "av01" and (fast.video.width, fast.video.height) == (64, 64)
    h264 = parse_mp4(videos["h264_bframes"], name="h264").video
    assert h264.codec == "avc1"
    assert h264.edit_shift == 2 * 512  # two frames of B-frame delay at 15360 ticks/s
    assert reorder_depth(h264) == 2 and reorder_depth(fast.video) == 0
    assert parse_mp4(videos["h264_empty_edit"], name="e").video.pts_s.min() == pytest.approx(0.5)
    co64 = parse_mp4(videos["av1_co64"], name="co64").video
    assert b"co64" in videos["av1_co64"] and b"stco" not in videos["av1_co64"]
    assert co64.offset.tolist() == end.video.offset.tolist()


def test_64bit_box_sizes_are_read(videos):
    """A top-level box written with size==1 and a 64-bit largesize parses like the 32-bit one."""
    data = videos["av1_moov_end"]
    parsed = parse_mp4(data, name="x")
    moov_start, _ = parsed.moov_range
    (size,) = struct.unpack_from(">I", data, moov_start)
    # moov grows by 8 header bytes; it is the last box, so no sample offset moves.
    large = data[:moov_start] + struct.pack(">I4sQ", 1, b"moov", size + 8) + data[moov_start + 8 :]
    track = parse_mp4(large, name="large").video
    assert track.offset.tolist() == parsed.video.offset.tolist()


def test_size_zero_box_runs_to_end_of_file(videos):
    data = videos["av1_moov_end"]
    moov_start, _ = parse_mp4(data, name="x").moov_range
    zero = data[:moov_start] + struct.pack(">I", 0) + data[moov_start + 4 :]
    assert parse_mp4(zero, name="zero").video.n_samples == N_FRAMES


@pytest.mark.parametrize("kind", ["av1_faststart", "av1_moov_end"])
def test_read_mp4_header_reads_only_header_bytes(videos, kind):
    data = videos[kind]
    reads: list[tuple[int, int]] = []

    def read(start, stop):
        reads.append((start, stop))
        return data[start:stop]

    segments, info = read_mp4_header(read, len(data), name=kind, probe_bytes=1024)
    mdat_start, mdat_stop = info.mdat_ranges[0]
    payload = range(mdat_start + 64, mdat_stop)  # well past the mdat header
    touched = sum(len(range(max(a, payload.start), min(b, payload.stop))) for a, b in reads)
    assert touched < 1024, f"{kind}: read {touched} bytes of sample data while looking for moov"
    assert len(reads) <= 4
    # the returned segments are exactly the file's bytes at those positions, and include all of moov
    for start, chunk in segments:
        assert data[start : start + len(chunk)] == chunk
    moov = info.moov_range
    assert any(start == moov[0] and len(chunk) == moov[1] - moov[0] for start, chunk in segments)
    assert parse_mp4(read, file_size=len(data), name=kind).video.pts.tolist() == info.video.pts.tolist()


def test_fragmented_mp4_is_refused(tmp_path):
    path = tmp_path / "frag.mp4"
    import subprocess

    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc=size=64x64:rate=30", "-frames:v", "10", "-c:v", "libx264",
                    "-movflags", "frag_keyframe+empty_moov", str(path)], check=True)
    with pytest.raises(Mp4ParseError, match="fragmented"):
        parse_mp4(path.read_bytes(), name="frag.mp4")


def test_truncated_file_names_the_file(videos):
    data = videos["av1_moov_end"]
    with pytest.raises(Mp4ParseError, match=r"clip\.mp4.*truncated"):
        parse_mp4(data[: len(data) - 100], name="clip.mp4")
    with pytest.raises(Mp4ParseError, match="no moov"):
        parse_mp4(b"\x00\x00\x00\x08free" * 4, name="clip.mp4")


@pytest.mark.parametrize("kind", ["av1_faststart", "h264_bframes", "h264_negative_cts"])
def test_episode_spans_cover_exactly_the_episode(videos, kind):
    info = parse_mp4(videos[kind], name=kind)
    track = info.video
    spans = [episode_span(info, from_timestamp=a, to_timestamp=b) for _, a, b in episode_bounds()]
    assert sum(span.n_frames for span in spans) == N_FRAMES
    for span, (_, a, b) in zip(spans, episode_bounds(), strict=True):
        pts_s = track.pts_s[span.frame_samples]
        assert np.all(np.diff(pts_s) > 0), "frames must come in display order"
        assert pts_s[0] == pytest.approx(a) and span.n_frames == round((b - a) * FPS)
        assert track.keyframe[span.first_sample]
        assert span.floor_bytes <= span.span_bytes
        needed = np.arange(span.first_sample, span.first_sample + span.n_samples)
        assert set(span.frame_samples) <= set(needed)
        assert span.span_start == track.offset[needed].min()
        assert span.span_stop == (track.offset + track.size)[needed].max()


def test_float_timestamps_with_accumulated_error_round_to_ticks(videos):
    info = parse_mp4(videos["av1_faststart"], name="x")
    # LeRobot's to_timestamp accumulates float error: it lands a hair above or below k/fps
    for err in (-1e-9, 0.0, 1e-9):
        boundary = 17 / FPS + err
        assert episode_span(info, from_timestamp=0.0, to_timestamp=boundary).n_frames == 17
        assert episode_span(info, from_timestamp=boundary, to_timestamp=40 / FPS).n_frames == 23


def test_episode_outside_file_raises_dataset_format_error(videos):
    info = parse_mp4(videos["av1_faststart"], name="cam.mp4")
    with pytest.raises(DatasetFormatError, match=r"cam\.mp4.*from_timestamp"):
        episode_span(info, from_timestamp=10.0, to_timestamp=11.0)


@pytest.mark.parametrize("kind", ["av1_faststart", "av1_moov_end", "h264_bframes", "h264_negative_cts"])
def test_decoding_from_header_plus_episode_span_gives_full_decode_pixels(videos, kind):
    """TorchCodec with our frame mappings, over a file holding only header + span (noise elsewhere)."""
    data = videos[kind]
    info = parse_mp4(data, name=kind)
    mappings = custom_frame_mappings_json(info)
    reference = VideoDecoder(io.BytesIO(data)).get_frames_in_range(0, N_FRAMES).data
    for _, from_ts, to_ts in episode_bounds():
        span = episode_span(info, from_timestamp=from_ts, to_timestamp=to_ts)
        ranges = [*info.header_ranges, (span.span_start, span.span_stop)]
        decoder = VideoDecoder(SparseFile(data, ranges, seed=1), custom_frame_mappings=mappings)
        first, last = round(from_ts * FPS), round(to_ts * FPS)
        assert torch.equal(decoder.get_frames_in_range(first, last).data, reference[first:last])
        backwards = list(range(last - 1, first - 1, -3))
        assert torch.equal(decoder.get_frames_at(backwards).data, reference[backwards])


def test_bframe_span_without_decoder_lookahead_is_not_enough(videos):
    """Guards the lookahead: without it, the B-frame decoder runs into noise and fails."""
    data = videos["h264_bframes"]
    info = parse_mp4(data, name="h264")
    _, from_ts, to_ts = episode_bounds()[0]
    span = episode_span(info, from_timestamp=from_ts, to_timestamp=to_ts, lookahead=0)
    ranges = [*info.header_ranges, (span.span_start, span.span_stop)]
    decoder = VideoDecoder(SparseFile(data, ranges, seed=1), custom_frame_mappings=custom_frame_mappings_json(info))
    reference = VideoDecoder(io.BytesIO(data)).get_frames_in_range(0, 17).data
    try:
        got = decoder.get_frames_in_range(0, 17).data
    except RuntimeError:
        return
    assert not torch.equal(got, reference)


# -- corruption: every damaged header raises Mp4ParseError, never IndexError/struct.error ---------


def _header_bytes(data: bytes) -> tuple[bytes, int]:
    info = parse_mp4(data, name="x")
    return data, info.moov_range[0]


def _check_corruption(data: bytes, moov_start: int, moov_stop: int, edits, cut: int | None) -> None:
    damaged = bytearray(data)
    for where, value in edits:
        damaged[moov_start + where % (moov_stop - moov_start)] = value
    if cut is not None:
        damaged = damaged[: max(0, len(damaged) - cut)]
    try:
        info = parse_mp4(bytes(damaged), name="fuzz.mp4")
    except Mp4ParseError as exc:
        assert "fuzz.mp4" in str(exc)
        # the catch-all for unchecked reads must never be what caught it
        assert "malformed MP4 header" not in str(exc), exc
        return
    track = info.video if info.tracks else None
    if track is not None and track.n_samples:
        assert track.offset.min() >= 0 and (track.offset + track.size).max() <= len(damaged)


_FUZZ = dict(
    edits=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1, max_size=6),
    cut=st.none() | st.integers(1, 5000),
    kind=st.sampled_from(["av1_faststart", "h264_bframes", "av1_co64"]),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(**_FUZZ)
def test_corrupted_headers_raise_only_mp4_parse_error(videos, edits, cut, kind):
    data = videos[kind]
    start, stop = parse_mp4(data, name="x").moov_range
    _check_corruption(data, start, stop, edits, cut)


@pytest.mark.slow
@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(**_FUZZ)
def test_corrupted_headers_raise_only_mp4_parse_error_long(videos, edits, cut, kind):
    data = videos[kind]
    start, stop = parse_mp4(data, name="x").moov_range
    _check_corruption(data, start, stop, edits, cut)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, 20_000), kind=st.sampled_from(["av1_faststart", "av1_moov_end"]))
def test_truncated_prefixes_raise_mp4_parse_error(videos, cut, kind):
    data = videos[kind]
    prefix = data[: cut % len(data)]
    with pytest.raises(Mp4ParseError):
        parse_mp4(prefix, name="cut.mp4")
