"""Dataset audit: a summary of what the dataset holds and every finding about it.

The summary is what a person checks first on a new dataset (episodes, frames, cameras with codec,
resolution and GOP, file layout); findings come from `format.validate`, plus loader-level checks
when the loader parts are available.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lerobot_inspect.errors import LeRobotInspectError
from lerobot_inspect.format import DatasetMeta, Finding, summarize, validate, validate_meta

__all__ = ["AuditReport", "audit_dataset", "dataset_summary"]


@dataclass
class AuditReport:
    """Summary plus findings; `ok` is False when any finding is an error."""

    root: str
    summary: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return summarize(self.findings)

    @property
    def ok(self) -> bool:
        return self.counts["error"] == 0

    def to_dict(self) -> dict[str, Any]:
        return {"root": self.root, "ok": self.ok, "counts": self.counts, "summary": self.summary,
                "findings": [f.to_dict() for f in self.findings]}


def dataset_summary(meta: DatasetMeta) -> dict[str, Any]:
    """Counts, cameras and files, from metadata only (cheap even for remote datasets)."""
    lengths = meta.lengths
    cameras = []
    for key in meta.camera_keys:
        feature = meta.features[key]
        shape = feature.shape
        entry: dict[str, Any] = {"key": key, "kind": feature.dtype,
                                 "height": int(shape[0]) if len(shape) == 3 else None,
                                 "width": int(shape[1]) if len(shape) == 3 else None}
        if feature.is_video:
            info = feature.info
            entry.update(codec=info.get("video.codec"), pix_fmt=info.get("video.pix_fmt"),
                         gop=info.get("video.g"), fps=info.get("video.fps"),
                         files=len(meta.video_files(key)))
        cameras.append(entry)
    return {
        "codebase_version": meta.info.get("codebase_version"),
        "robot_type": meta.info.get("robot_type"),
        "fps": meta.fps,
        "episodes": meta.num_episodes,
        "frames": int(lengths.sum()),
        "tasks": len(meta.tasks),
        "episode_length": {"min": int(lengths.min()) if len(lengths) else 0,
                           "mean": float(lengths.mean()) if len(lengths) else 0.0,
                           "max": int(lengths.max()) if len(lengths) else 0},
        "features": {name: {"dtype": f.dtype, "shape": list(f.shape)} for name, f in meta.features.items()},
        "cameras": cameras,
        "data_files": len(meta.data_files()),
    }


def audit_dataset(root: str) -> AuditReport:
    """Open, summarise and validate; an unopenable dataset gives a report with one error finding."""
    try:
        meta = DatasetMeta.open(root)
    except LeRobotInspectError:
        return AuditReport(str(root), {}, validate(root))
    return AuditReport(str(root), dataset_summary(meta), validate_meta(meta))


def format_report(report: AuditReport) -> str:
    """The human-readable text `lerobot-inspect audit` prints."""
    lines = [f"dataset  {report.root}"]
    s = report.summary
    if s:
        length = s["episode_length"]
        lines.append(f"format   {s['codebase_version']}  robot {s['robot_type']}  {s['fps']} fps")
        lines.append(f"content  {s['episodes']} episodes, {s['frames']} frames, {s['tasks']} tasks; "
                     f"episode length {length['min']}..{length['max']} (mean {length['mean']:.1f})")
        lines.append(f"files    {s['data_files']} data Parquet file(s)")
        for cam in s["cameras"]:
            size = f"{cam['width']}x{cam['height']}" if cam["width"] else "?"
            if cam["kind"] == "video":
                lines.append(f"camera   {cam['key']}: video {cam['codec']} {size} {cam['pix_fmt']}, "
                             f"GOP {cam['gop']}, {cam['files']} MP4 file(s)")
            else:
                lines.append(f"camera   {cam['key']}: PNG images in Parquet, {size}")
    counts = report.counts
    lines.append(f"findings {counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info")
    lines.extend("  " + str(f).replace("\n", "\n  ") for f in report.findings)
    lines.append("verdict  " + ("OK" if report.ok else "FAILED: fix the errors above"))
    return "\n".join(lines)


