"""Probes: run the real loader for a bounded budget and return tables for the notebooks."""

from lerobot_inspect.probes.audit import AuditReport, audit_dataset, dataset_summary, format_report

__all__ = ["AuditReport", "audit_dataset", "dataset_summary", "format_report"]

from lerobot_inspect.probes.mixing import batch_episode_ids, reservoir_shuffle_order
from lerobot_inspect.probes.resume import ResumeComparison, resume_comparison

__all__ += ["ResumeComparison", "batch_episode_ids", "reservoir_shuffle_order", "resume_comparison"]
