"""The package's shape: the public API is what __all__ says, imports point down the layers.
(The CLI's help and import cost: test_cli.py; the wheel: test_wheel.py.)"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lerobot_inspect

PACKAGE = Path(lerobot_inspect.__file__).parent

# Lower numbers are lower layers (DESIGN.md); a module may import only from its rank or below.
RANKS = {
    "errors": 0, "_resources": 0,
    "loaders.windows": 1, "loaders.pool": 1, "loaders.sampler": 1, "loaders.collate": 1,
    "video.mp4": 1, "video.mp4_write": 1, "video.spans": 1, "video.header": 1, "video.source": 1, "video.codec_info": 1,
    # The byte transport (opener and guarded join, range reads, sparse files, counters, fork
    # safety) knows nothing of LeRobot, so the layout code below it can read through it.
    "io.fs": 1, "io.ranges": 1, "io.sparse": 1, "io.counters": 1, "io._forks": 1, "io.parquet_footer": 1,
    "format": 2,
    "io": 3,
    "video": 4,
    "loaders.samples": 4, "loaders.rows": 4,
    "loaders.map_dataset": 5,
    "loaders": 6, "loaders.streaming": 6, "loaders.datasets_pipeline": 6,
    "probes": 7,
    "charts": 8,
    "report": 9, "bench": 9, "cli": 10,
}


def rank_of(module: str) -> int:
    parts = module.split(".")
    for cut in range(len(parts), 0, -1):
        key = ".".join(parts[:cut])
        if key in RANKS:
            return RANKS[key]
    raise AssertionError(f"module lerobot_inspect.{module} has no layer in RANKS; add it")


def package_modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).with_suffix("")
        parts = [p for p in relative.parts if p != "__init__"]
        if parts:
            out.append((".".join(parts), path))
    return out


PUBLIC_API = {
    "MapDataset", "StreamingDataset", "DatasetsPipeline", "EpisodeAwareSampler", "ring_collate",
    "DatasetMeta", "Finding", "validate", "build_report",
    "LeRobotInspectError", "OptionError", "DatasetFormatError", "DecodeError", "FetchError", "ResumeError",
}


def test_public_api_is_exactly_all():
    """A small API on purpose: adding a name here is a decision, not an accident."""
    assert set(lerobot_inspect.__all__) == PUBLIC_API | {"__version__"}
    public = {name for name in dir(lerobot_inspect) if not name.startswith("_")}
    modules = {name for name in public if isinstance(getattr(lerobot_inspect, name), type(lerobot_inspect))}
    assert public - modules == PUBLIC_API
    for name in PUBLIC_API:
        assert getattr(lerobot_inspect, name).__name__ == name


@pytest.mark.parametrize("module,path", package_modules(), ids=[m for m, _ in package_modules()])
def test_imports_point_down_the_layers(module, path):
    mine = rank_of(module)
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.ImportFrom) and node.module:
            targets = [node.module]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        for target in targets:
            if target in ("marimo", "altair") or target.startswith(("marimo.", "altair.")):
                allowed = ("charts", "report", "cli") if target.startswith("altair") else ("report", "cli")
                assert module.split(".")[0] in allowed, f"{module} imports {target} below its layer"
            assert target.split(".")[0] not in ("data_fixtures", "tests"), f"{module} imports test code: {target}"
            if target == "lerobot_inspect" and isinstance(node, ast.ImportFrom):
                # `from lerobot_inspect import x`: a submodule, or the public API, which sits on top.
                for alias in node.names:
                    submodule = (PACKAGE / alias.name).is_dir() or (PACKAGE / f"{alias.name}.py").is_file()
                    assert submodule, f"{module} imports {alias.name} from the package root (the top layer)"
                    assert rank_of(alias.name) <= mine, f"{module} (layer {mine}) imports {alias.name}"
            if target.startswith("lerobot_inspect."):
                other = target.removeprefix("lerobot_inspect.")
                assert rank_of(other) <= mine, f"{module} (layer {mine}) imports {other} (layer {rank_of(other)})"
