"""Inspect, load and debug LeRobot v3 datasets: map-style and streaming loaders, MP4 byte index,
and the probes behind the notebooks. The public API is `__all__`; everything else is internal."""

from lerobot_inspect.errors import (
    DatasetFormatError,
    DecodeError,
    FetchError,
    FragmentedMp4Error,
    FrameTimestampError,
    IndexStaleError,
    LeRobotInspectError,
    Mp4ParseError,
    OptionError,
    ResumeError,
)
from lerobot_inspect.format import DatasetMeta, Finding, validate
from lerobot_inspect.io import ByteCache, RangeReader, open_root
from lerobot_inspect.loaders.map_dataset import MapDataset
from lerobot_inspect.loaders.pool import randomness_fraction
from lerobot_inspect.probes.audit import audit_dataset
from lerobot_inspect.probes.resume import resume_comparison
from lerobot_inspect.loaders.sampler import EpisodeAwareSampler, compute_sampler_state
from lerobot_inspect.loaders.streaming import StreamingDataset
from lerobot_inspect.video import ByteIndex, build_byte_index, parse_mp4
from lerobot_inspect.video.index_io import load_or_build_index
from lerobot_inspect.video.reader import VideoReader
from lerobot_inspect.video.remote import ByteIndexVideoReader, make_video_reader
from lerobot_inspect.loaders.windows import delta_indices, query_indices

__version__ = "0.1.0"

__all__ = [
    "ByteCache",
    "ByteIndex",
    "ByteIndexVideoReader",
    "DatasetFormatError",
    "DatasetMeta",
    "DecodeError",
    "EpisodeAwareSampler",
    "FetchError",
    "Finding",
    "FragmentedMp4Error",
    "FrameTimestampError",
    "IndexStaleError",
    "LeRobotInspectError",
    "MapDataset",
    "Mp4ParseError",
    "OptionError",
    "RangeReader",
    "ResumeError",
    "StreamingDataset",
    "VideoReader",
    "__version__",
    "audit_dataset",
    "build_byte_index",
    "compute_sampler_state",
    "delta_indices",
    "load_or_build_index",
    "make_video_reader",
    "open_root",
    "parse_mp4",
    "query_indices",
    "randomness_fraction",
    "resume_comparison",
    "validate",
]
