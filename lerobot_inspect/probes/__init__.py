"""Probes: run the real loader for a bounded budget and return tables for the notebooks.

Names load on first use: the audit reads metadata and MP4 headers only, so importing it (as a
metadata-only `lerobot-inspect audit` does) must not drag in the loaders and torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["AuditReport", "ResumeComparison", "audit_dataset", "batch_episode_ids", "dataset_summary",
           "format_report", "reservoir_shuffle_order", "resume_comparison"]

_HOMES = {
    "AuditReport": "audit", "audit_dataset": "audit", "dataset_summary": "audit", "format_report": "audit",
    "batch_episode_ids": "mixing", "reservoir_shuffle_order": "mixing",
    "ResumeComparison": "resume", "resume_comparison": "resume",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'lerobot_inspect.probes' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"lerobot_inspect.probes.{home}"), name)
    globals()[name] = value
    return value
