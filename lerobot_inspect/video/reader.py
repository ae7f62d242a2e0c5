"""Frames of one (episode, camera) from a dataset's MP4s, several cameras decoded concurrently.

Local files are opened by path with `seek_mode="approximate"` (LeRobot's choice: the demuxer reads
only the header); other fsspec roots go through a file object. The byte-index path (header plus one
episode's span, for remote roots) plugs in through `episode_source`.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from fsspec.implementations.local import LocalFileSystem

from lerobot_inspect.errors import (
    DatasetFormatError,
    DecodeError,
    FragmentedMp4Error,
    FrameTimestampError,
    LeRobotInspectError,
)
from lerobot_inspect.format import DatasetMeta
from lerobot_inspect.io._forks import ProcessLocal
from lerobot_inspect.video.decode import (
    DEFAULT_DECODER_CACHE_SIZE,
    DecoderCache,
    FrameRequest,
    decode_at,
    frame_indices_at,
    nearest_frames,
)
from lerobot_inspect.video.header import read_video_header
from lerobot_inspect.video.spans import WRONG_FRAME_CODES, SpanProblem, span_problems

__all__ = ["VideoReader", "declared_frame_size", "workers_fill_cores"]

# (episode, camera) -> (cache key, opener of a decoder, optional pts table of the decoder's frames)
EpisodeSource = Callable[[int, str], tuple[object, Callable[[], object], "np.ndarray | None"]]


# Mean keyframe interval above which a decode-ahead episode gets a decoder of its own (`locate`).
LONG_GOP = 4


def workers_fill_cores() -> bool:
    """True inside a DataLoader worker when there are at least as many workers as cores."""
    from torch.utils.data import get_worker_info

    info = get_worker_info()
    return info is not None and info.num_workers >= (os.cpu_count() or 1)


def declared_frame_size(meta: DatasetMeta, camera: str) -> tuple[int, int] | None:
    """(height, width) info.json declares for a camera, or None when its shape does not say.

    LeRobot writes video shapes as (height, width, channels) with those names; a shape without
    names is read that way when its last axis looks like channels, else as (channels, height, width)."""
    feature = meta.features[camera]
    shape = tuple(int(v) for v in feature.shape)
    names = feature.names if isinstance(feature.names, list | tuple) else None
    if len(shape) != 3:
        return None
    if names is not None and "height" in names and "width" in names and len(names) == 3:
        return shape[list(names).index("height")], shape[list(names).index("width")]
    return (shape[0], shape[1]) if shape[2] in (1, 3, 4) else (shape[1], shape[2])


class VideoReader(ProcessLocal):
    """Decode an episode's frames at timestamps relative to the episode's start: the frame source
    for local files (whole-file decoders, `seek_mode="approximate"`, as LeRobot opens them).

    Every frame handed out has the size info.json declares and a pts within `tolerance_s` of the
    request; an episode whose span in its MP4 disagrees with meta/episodes is refused
    (`check_spans=False` reads such a dataset anyway)."""

    def __init__(
        self,
        meta: DatasetMeta,
        *,
        tolerance_s: float = 1e-4,
        return_uint8: bool = False,
        decoder_cache_size: int = DEFAULT_DECODER_CACHE_SIZE,
        episode_source: EpisodeSource | None = None,
        check_spans: bool = True,
    ) -> None:
        self.meta = meta
        self.tolerance_s = tolerance_s
        self.return_uint8 = return_uint8
        self.check_spans = check_spans
        self.cameras: tuple[str, ...] = tuple(meta.video_keys)
        self._span_problems: dict[tuple[str, str], dict[int, SpanProblem]] = {}
        self._long_gop: dict[tuple[str, str], bool] = {}  # (camera, file) -> keyframes further apart than LONG_GOP
        self._sizes = {camera: declared_frame_size(meta, camera) for camera in self.cameras}
        self.decoders = DecoderCache(decoder_cache_size)
        self.episode_source = episode_source or self._whole_file_source
        self._start_process_state()

    _PROCESS_FIELDS = ("_pool", "_lock", "_sources")

    # (episode, camera) entries `locate` keeps: a streaming pool asks about the same few dozen for
    # thousands of samples, and working out the file, its URL and its span costs more than a decode.
    SOURCE_CACHE_SIZE = 512

    def _init_process_state(self) -> None:
        # Threads do not survive a fork or a pickle: each process starts its own pool on first use.
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._sources: OrderedDict[tuple[int, str], tuple[float, object, Callable[[], object],
                                                          np.ndarray | None, FrameRequest]] = OrderedDict()

    def _whole_file_source(self, episode: int, camera: str) -> tuple[object, Callable[[], object], None]:
        rel = self.meta.video_file(episode, camera)
        path = self.meta.path(rel)
        fs = self.meta.fs

        def open_decoder() -> object:
            from torchcodec.decoders import VideoDecoder

            try:
                if isinstance(fs, LocalFileSystem):
                    return VideoDecoder(path, seek_mode="approximate")
                return VideoDecoder(fs.open(path, "rb"), seek_mode="approximate")
            except (FileNotFoundError, RuntimeError, ValueError) as exc:
                raise self.explain_open_failure(episode, camera, rel) from exc

        return ("file", rel), open_decoder, None

    def explain_open_failure(self, episode: int, camera: str, rel: str) -> Exception:
        """The reason an MP4 did not open, in our words: missing, or what its header parse says.

        FFmpeg's own message names C++ source lines and TorchCodec's bug tracker; it stays in the
        chained cause for whoever needs it."""
        shown = self.meta.url(rel)
        where = {"file": shown, "episode": episode, "camera": camera}
        if not self.meta.fs.exists(self.meta.path(rel)):
            return DatasetFormatError(
                f"{shown}: MP4 of camera {camera} for episode {episode} is missing; restore it "
                "(`lerobot-inspect audit` lists every missing file)", fix="restore the file", **where)
        try:
            read_video_header(self.meta.fs, self.meta.path(rel), name=shown)
        except LeRobotInspectError as exc:
            return DecodeError(f"{shown}: camera {camera}, episode {episode}: cannot open the MP4: {exc}. "
                               "Download the file again or re-encode the camera",
                               fix="download the file again or re-encode the camera", **where)
        except OSError as exc:
            return DecodeError(f"{shown}: camera {camera}, episode {episode}: cannot read the MP4 ({exc})",
                               fix="check the file and its permissions", **where)
        return DecodeError(f"{shown}: camera {camera}, episode {episode}: FFmpeg cannot open the MP4 although its "
                           "header parses; the sample data is corrupt. Re-encode the camera (details in the "
                           "chained exception)", fix="re-encode the camera", **where)

    def track_for(self, camera: str, rel: str) -> Any:
        """The MP4's sample table, for the span check; the byte-index reader has it without a read."""
        return read_video_header(self.meta.fs, self.meta.path(rel), name=self.meta.url(rel)).video

    def check_episode_span(self, episode: int, camera: str) -> None:
        """Refuse an episode whose from/to_timestamp disagree with where its frames are in the MP4.

        A span shifted by a whole frame decodes within tolerance_s, so the decoder alone would hand
        back the neighbouring frames silently. Checked once per file and process, from the header,
        by the same `video.spans` check the audit runs."""
        rel = self.meta.video_file(episode, camera)
        problems = self._span_problems.get((camera, rel))
        if problems is None:
            problems = self._span_problems[(camera, rel)] = self._file_span_problems(episode, camera, rel)
        problem = problems.get(episode)
        if problem is not None:
            shown = self.meta.url(rel)
            raise FrameTimestampError(
                f"{shown}: camera {camera}, episode {problem.episode}: {problem.message}; fix: {problem.fix}. "
                "(To read such a dataset anyway, pass video_reader=VideoReader(meta, check_spans=False).)",
                file=shown, episode=episode, camera=camera, fix=problem.fix, code=problem.code)

    def _file_span_problems(self, episode: int, camera: str, rel: str) -> dict[int, SpanProblem]:
        episodes = self.meta.episodes_in_video_file(camera)[rel]
        try:
            track = self.track_for(camera, rel)
        except FileNotFoundError:
            raise self.explain_open_failure(episode, camera, rel) from None
        except FragmentedMp4Error:
            return {}  # no sample table to check against; FFmpeg still decodes it whole
        except LeRobotInspectError as exc:
            raise DecodeError(f"{self.meta.url(rel)}: camera {camera}, episode {episode}: {exc}",
                              file=self.meta.url(rel), episode=episode, camera=camera,
                              fix="download the file again or re-encode the camera") from exc
        self._long_gop[(camera, rel)] = len(track.keyframe) > LONG_GOP * max(1, int(track.keyframe.sum()))
        problems: dict[int, SpanProblem] = {}
        for problem in span_problems(
                track, fps=self.meta.fps, camera=camera, episodes=episodes, lengths=self.meta.lengths[episodes],
                from_s=self.meta.column(f"videos/{camera}/from_timestamp").astype(np.float64)[episodes],
                to_s=self.meta.column(f"videos/{camera}/to_timestamp").astype(np.float64)[episodes]):
            if problem.code in WRONG_FRAME_CODES:
                for target in (episodes.tolist() if problem.affects_file else [problem.episode]):
                    problems.setdefault(int(target), problem)
        return problems

    def locate(self, episode: int, camera: str, timestamps_s: Sequence[float] | np.ndarray, *,
               episode_decoder: bool = False) -> tuple[object, np.ndarray, np.ndarray, FrameRequest]:
        """(decoder, requested seconds in the file, decoder frame indices, where) for times relative to
        the episode's first frame, after the span check: what `frames` decodes, for a caller (the
        decode-ahead buffer) that decodes them itself.

        `episode_decoder=True` (a caller that walks one episode forward while other episodes of the
        same file interleave) gives the episode a decoder of its own when the file's keyframes are
        more than LONG_GOP frames apart: a shared one would seek back to a keyframe and decode up to
        the episode's position again at every switch (GOP 30: ~15 wasted frames per call). Release
        it with `release_episode`."""
        decoder, start_s, pts_s, where = self.decoder(episode, camera, episode_decoder=episode_decoder)
        in_file = start_s + np.asarray(timestamps_s, dtype=np.float64)
        indices = None if pts_s is None else nearest_frames(pts_s, in_file)
        requested, indices = frame_indices_at(decoder, in_file, where=where, frame_indices=indices)
        return decoder, requested, indices, where

    def decoder(self, episode: int, camera: str, *, episode_decoder: bool = False
                ) -> tuple[object, float, np.ndarray | None, FrameRequest]:
        """(decoder, episode start in the file, frame pts or None, where) after the span check: the
        part of `locate` a caller that located its frames earlier still needs at decode time."""
        start_s, key, open_decoder, pts_s, where = self._source(episode, camera)
        if episode_decoder and key[0] == "file" and self._long_gop.get((camera, key[1]), False):
            key = (*key, episode)
        return self.decoders.get(key, open_decoder), start_s, pts_s, where

    def release_episode(self, episode: int, camera: str) -> None:
        """Close the episode's own decoder, if it has one: `locate(..., episode_decoder=True)` in a
        long-GOP file, or a byte-index decoder (always one per episode, and each holds its file's
        parsed header: megabytes for a file of thousands of episodes)."""
        entry = self._sources.get((episode, camera))
        if entry is not None:
            key = entry[1]
            self.decoders.discard((*key, episode) if key[0] == "file" else key)

    def _source(self, episode: int, camera: str) -> tuple[float, object, Callable[[], object], np.ndarray | None,
                                                         FrameRequest]:
        """(episode start in the file, decoder key, opener, frame pts or None, where) after the span
        check; kept for the last SOURCE_CACHE_SIZE (episode, camera) pairs. A refusal is not kept."""
        with self._lock:
            entry = self._sources.get((episode, camera))
            if entry is not None:
                self._sources.move_to_end((episode, camera))
                return entry
        if self.check_spans:
            self.check_episode_span(episode, camera)
        start_s, _ = self.meta.video_span_s(episode, camera)
        key, open_decoder, pts_s = self.episode_source(episode, camera)
        where = FrameRequest(self.meta.url(self.meta.video_file(episode, camera)), episode, camera)
        entry = (start_s, key, open_decoder, pts_s, where)
        with self._lock:
            self._sources[(episode, camera)] = entry
            while len(self._sources) > self.SOURCE_CACHE_SIZE:
                self._sources.popitem(last=False)
        return entry

    def check_size(self, frames: torch.Tensor, where: FrameRequest) -> torch.Tensor:
        """`frames` when they have the size info.json declares for the camera; DecodeError otherwise."""
        declared = self._sizes.get(where.camera)
        if declared is not None and tuple(frames.shape[-2:]) != declared:
            camera, episode = where.camera, where.episode
            raise DecodeError(
                f"{where.file}: camera {camera}, episode {episode}: frames are {frames.shape[-1]}x{frames.shape[-2]} "
                f"(width x height) but meta/info.json declares {declared[1]}x{declared[0]}; re-encode the camera at "
                "the declared size or correct features[camera].shape in info.json",
                file=where.file, episode=episode, camera=camera, code="video-size-mismatch",
                fix="re-encode the camera at the declared size, or fix its shape in meta/info.json")
        return frames

    def frames(self, episode: int, camera: str, timestamps_s: Sequence[float] | np.ndarray) -> torch.Tensor:
        """(k, C, H, W) frames of `camera` at times relative to the episode's first frame."""
        decoder, requested, indices, where = self.locate(episode, camera, timestamps_s)
        frames = decode_at(decoder, requested, where=where, tolerance_s=self.tolerance_s,
                           return_uint8=self.return_uint8, frame_indices=indices)
        return self.check_size(frames, where)

    def frames_for(self, episode: int, requests: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """Several cameras of one episode, one thread per camera (as LeRobot decodes them), except in
        a DataLoader worker when the workers already fill the cores: threads would only take turns."""
        if len(requests) <= 1 or workers_fill_cores():
            return {camera: self.frames(episode, camera, ts) for camera, ts in requests.items()}
        pool = self._thread_pool()
        futures = {camera: pool.submit(self.frames, episode, camera, ts) for camera, ts in requests.items()}
        return {camera: future.result() for camera, future in futures.items()}

    def prefetch(self, episodes: Iterable[int]) -> None:
        """Nothing to do for local files: the operating system's page cache reads ahead."""
        return None

    def _thread_pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=max(1, len(self.cameras)),
                                                thread_name_prefix="lerobot-inspect-decode")
            return self._pool
