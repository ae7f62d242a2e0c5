"""LeRobot v3 layout: info.json, episodes and tasks tables, path templates, validation."""

from lerobot_inspect.format.meta import DEFAULT_FEATURES, DatasetMeta, Feature
from lerobot_inspect.format.validate import Finding, Severity, summarize, validate, validate_meta

__all__ = [
    "DEFAULT_FEATURES",
    "DatasetMeta",
    "Feature",
    "Finding",
    "Severity",
    "summarize",
    "validate",
    "validate_meta",
]
