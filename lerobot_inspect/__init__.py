"""Inspect, load and debug LeRobot v3 datasets: map-style and streaming loaders, an MP4 byte index,
an audit, and the probes behind the notebooks.

The public API is `__all__`: the datasets, the sampler, `ring_collate` (batches out of DataLoader
workers), metadata and validation, the error tree's usual catches, and the report entry point.
Everything else lives in subpackages (`loaders`, `video`, `io`, `format`, `probes`, `charts`,
`report`) and may change without notice. Names load on first use, so `import lerobot_inspect`
(and the CLI's `--help`) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "MapDataset": "lerobot_inspect.loaders.map_dataset",
    "StreamingDataset": "lerobot_inspect.loaders.streaming",
    "DatasetsPipeline": "lerobot_inspect.loaders.datasets_pipeline",
    "EpisodeAwareSampler": "lerobot_inspect.loaders.sampler",
    "ring_collate": "lerobot_inspect.loaders.collate",
    "DatasetMeta": "lerobot_inspect.format.meta",
    "Finding": "lerobot_inspect.format.validate",
    "validate": "lerobot_inspect.format.validate",
    "build_report": "lerobot_inspect.report",
    "LeRobotInspectError": "lerobot_inspect.errors",
    "OptionError": "lerobot_inspect.errors",
    "DatasetFormatError": "lerobot_inspect.errors",
    "DecodeError": "lerobot_inspect.errors",
    "FetchError": "lerobot_inspect.errors",
    "ResumeError": "lerobot_inspect.errors",
}

__all__ = [
    "DatasetFormatError",
    "DatasetMeta",
    "DatasetsPipeline",
    "DecodeError",
    "EpisodeAwareSampler",
    "FetchError",
    "Finding",
    "LeRobotInspectError",
    "MapDataset",
    "OptionError",
    "ResumeError",
    "StreamingDataset",
    "__version__",
    "build_report",
    "ring_collate",
    "validate",
]

if TYPE_CHECKING:
    from lerobot_inspect.errors import (
        DatasetFormatError,
        DecodeError,
        FetchError,
        LeRobotInspectError,
        OptionError,
        ResumeError,
    )
    from lerobot_inspect.format.meta import DatasetMeta
    from lerobot_inspect.format.validate import Finding, validate
    from lerobot_inspect.loaders.collate import ring_collate
    from lerobot_inspect.loaders.datasets_pipeline import DatasetsPipeline
    from lerobot_inspect.loaders.map_dataset import MapDataset
    from lerobot_inspect.loaders.sampler import EpisodeAwareSampler
    from lerobot_inspect.loaders.streaming import StreamingDataset
    from lerobot_inspect.report import build_report


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lerobot_inspect' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    submodules = [name for name, value in globals().items()
                  if getattr(value, "__name__", "").startswith(f"{__name__}.")
                  and name == value.__name__.split(".")[-1]]
    return sorted({*__all__, *submodules})
