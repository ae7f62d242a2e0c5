"""Probes: run the real loader for a bounded budget and return tables for the notebooks."""

from lerobot_inspect.probes.audit import AuditReport, audit_dataset, dataset_summary, format_report

__all__ = ["AuditReport", "audit_dataset", "dataset_summary", "format_report"]
