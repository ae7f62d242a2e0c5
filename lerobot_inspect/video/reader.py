"""Frames of one (episode, camera) from a dataset's MP4s, several cameras decoded concurrently.

Local files are opened by path with `seek_mode="approximate"` (LeRobot's choice: the demuxer reads
only the header); other fsspec roots go through a file object. The byte-index path (header plus one
episode's span, for remote roots) plugs in through `episode_source`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
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
from lerobot_inspect.format.validate import check_video_file_spans, read_video_header
from lerobot_inspect.video.decode import (
    DEFAULT_DECODER_CACHE_SIZE,
    DecoderCache,
    FrameRequest,
    decode_at,
    nearest_frames,
)

__all__ = ["WRONG_FRAME_FINDINGS", "VideoReader"]

# Span findings after which decoding would hand back other frames than the rows ask for. A wrong
# to_timestamp alone is not among them: the loader asks for frames by row timestamp, never by it.
WRONG_FRAME_FINDINGS = frozenset({"video-span-shifted", "video-frames-missing", "camera-fps-mismatch"})

# (episode, camera) -> (cache key, opener of a decoder, optional pts table of the decoder's frames)
EpisodeSource = Callable[[int, str], tuple[object, Callable[[], object], "np.ndarray | None"]]


class VideoReader:
    """Decode an episode's frames at timestamps relative to the episode's start."""

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
        self._span_problems: dict[tuple[str, str], dict[int, str]] = {}
        self.decoders = DecoderCache(decoder_cache_size)
        self.episode_source = episode_source or self._whole_file_source
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = -1
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        """Pickled into DataLoader workers (spawn): open decoders and threads stay behind."""
        state = self.__dict__.copy()
        state.update(_pool=None, _pool_pid=-1, _lock=None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

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
        if not self.meta.fs.exists(self.meta.path(rel)):
            return DatasetFormatError(
                f"{shown}: MP4 of camera {camera} for episode {episode} is missing; restore it "
                "(`lerobot-inspect audit` lists every missing file)")
        try:
            read_video_header(self.meta, rel)
        except LeRobotInspectError as exc:
            return DecodeError(f"{shown}: camera {camera}, episode {episode}: cannot open the MP4: {exc}. "
                               "Download the file again or re-encode the camera")
        except OSError as exc:
            return DecodeError(f"{shown}: camera {camera}, episode {episode}: cannot read the MP4 ({exc})")
        return DecodeError(f"{shown}: camera {camera}, episode {episode}: FFmpeg cannot open the MP4 although its "
                           "header parses; the sample data is corrupt. Re-encode the camera (details in the "
                           "chained exception)")

    def track_for(self, camera: str, rel: str) -> Any:
        """The MP4's sample table, for the span check; the byte-index reader has it without a read."""
        return read_video_header(self.meta, rel).video

    def check_episode_span(self, episode: int, camera: str) -> None:
        """Refuse an episode whose from/to_timestamp disagree with where its frames are in the MP4.

        A span shifted by a whole frame decodes within tolerance_s, so the decoder alone would hand
        back the neighbouring frames silently. Checked once per file and process, from the header."""
        rel = self.meta.video_file(episode, camera)
        problems = self._span_problems.get((camera, rel))
        if problems is None:
            episodes = self.meta.episodes_in_video_file(camera)[rel]
            try:
                track = self.track_for(camera, rel)
            except FileNotFoundError:
                raise self.explain_open_failure(episode, camera, rel) from None
            except FragmentedMp4Error:
                track = None  # no sample table to check against; FFmpeg still decodes it whole
            except LeRobotInspectError as exc:
                raise DecodeError(f"{self.meta.url(rel)}: camera {camera}, episode {episode}: {exc}") from exc
            problems = {}
            findings = [] if track is None else check_video_file_spans(self.meta, camera, rel, episodes, track)
            for finding in (f for f in findings if f.code in WRONG_FRAME_FINDINGS):
                message = (f"{finding.file}: camera {camera}, episode {finding.episode}: {finding.message}; "
                           f"fix: {finding.fix}")
                targets = episodes.tolist() if finding.code == "camera-fps-mismatch" else [finding.episode]
                for target in targets:
                    problems.setdefault(int(target), message)
            self._span_problems[(camera, rel)] = problems
        message = problems.get(episode)
        if message is not None:
            raise FrameTimestampError(
                f"{message}. (To read such a dataset anyway, pass "
                "video_reader=VideoReader(meta, check_spans=False).)")

    def frames(self, episode: int, camera: str, timestamps_s: Sequence[float] | np.ndarray) -> torch.Tensor:
        """(k, C, H, W) frames of `camera` at times relative to the episode's first frame."""
        if self.check_spans:
            self.check_episode_span(episode, camera)
        start_s, _ = self.meta.video_span_s(episode, camera)
        in_file = start_s + np.asarray(timestamps_s, dtype=np.float64)
        key, open_decoder, pts_s = self.episode_source(episode, camera)
        decoder = self.decoders.get(key, open_decoder)
        indices = None if pts_s is None else nearest_frames(pts_s, in_file)
        where = FrameRequest(self.meta.url(self.meta.video_file(episode, camera)), episode, camera)
        return decode_at(decoder, in_file, where=where, tolerance_s=self.tolerance_s,
                         return_uint8=self.return_uint8, frame_indices=indices)

    def frames_for(self, episode: int, requests: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """Several cameras of one episode, one thread per camera (as LeRobot decodes them)."""
        if len(requests) <= 1:
            return {camera: self.frames(episode, camera, ts) for camera, ts in requests.items()}
        pool = self._thread_pool()
        futures = {camera: pool.submit(self.frames, episode, camera, ts) for camera, ts in requests.items()}
        return {camera: future.result() for camera, future in futures.items()}

    def _thread_pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None or self._pool_pid != os.getpid():
                self._pool = ThreadPoolExecutor(max_workers=max(1, len(self.meta.video_keys)),
                                                thread_name_prefix="lerobot-inspect-decode")
                self._pool_pid = os.getpid()
            return self._pool
