"""Provenance: what a rerun of a report needs to get the same numbers, recorded in report.json.

Package versions (FFmpeg included: TorchCodec uses the system's) and a fingerprint of the dataset.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import subprocess
from typing import Any

__all__ = ["dataset_fingerprint", "package_versions"]


def package_versions() -> dict[str, str | None]:
    """Versions of what decides a report's numbers, FFmpeg included (TorchCodec uses the system's)."""
    versions: dict[str, str | None] = {}
    for name in ("lerobot_inspect", "torch", "torchcodec", "datasets", "pyarrow", "marimo", "altair",
                 "vl-convert-python", "numpy", "pandas", "fsspec"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    try:
        first = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, timeout=10).stdout
        versions["ffmpeg"] = first.splitlines()[0] if first else None
    except (OSError, subprocess.SubprocessError):
        versions["ffmpeg"] = None
    try:
        import torchcodec

        versions["ffmpeg_major_torchcodec"] = str(torchcodec.ffmpeg_major_version)
    except Exception:  # torchcodec without FFmpeg still lets the report say so
        versions["ffmpeg_major_torchcodec"] = None
    return versions


def dataset_fingerprint(root: str) -> dict[str, Any]:
    """Hash of the meta files' bytes and of every file's path and size, plus the byte index format.

    Sizes, not contents, for data and video: hashing gigabytes of MP4 would take longer than the
    report, and a changed file almost always changes size; meta files are hashed in full."""
    from lerobot_inspect.io import open_root

    fs, root_path = open_root(root)
    base = root_path.rstrip("/")
    files = sorted(fs.find(base, detail=True).items())
    digest = hashlib.sha256()
    sizes = 0
    for path, info in files:
        rel = path[len(base):].lstrip("/")
        size = int(info.get("size") or 0)
        sizes += size
        digest.update(f"{rel}\t{size}\n".encode())
        if rel.startswith("meta/") and not rel.startswith("meta/byte_index/"):
            with fs.open(path, "rb") as handle:
                digest.update(handle.read())
    byte_index = None
    index_files = [p for p, _ in files if "/meta/byte_index/" in p or p.startswith("meta/byte_index/")]
    if index_files:
        try:
            from lerobot_inspect.video.byte_index import BYTE_INDEX_FORMAT

            byte_index = {"format": BYTE_INDEX_FORMAT, "files": len(index_files)}
        except ImportError:
            byte_index = {"files": len(index_files)}
    return {"sha256": digest.hexdigest(), "files": len(files), "total_bytes": sizes, "byte_index": byte_index}
