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
from lerobot_inspect.map_dataset import MapDataset

__version__ = "0.1.0"

__all__ = [
    "DatasetFormatError",
    "DatasetMeta",
    "DecodeError",
    "FetchError",
    "Finding",
    "FragmentedMp4Error",
    "FrameTimestampError",
    "IndexStaleError",
    "LeRobotInspectError",
    "MapDataset",
    "Mp4ParseError",
    "OptionError",
    "ResumeError",
    "__version__",
    "validate",
]
