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
    "loaders.windows": 1, "loaders.pool": 1, "loaders.sampler": 1, "video.mp4": 1,
    "format": 2,
    "io": 3,
    "video": 4,
    "loaders.samples": 4,
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


def test_public_api_is_exactly_all():
    public = {name for name in dir(lerobot_inspect) if not name.startswith("_")}
    modules = {name for name in public if isinstance(getattr(lerobot_inspect, name), type(lerobot_inspect))}
    assert set(lerobot_inspect.__all__) - {"__version__"} == public - modules
    for name in lerobot_inspect.__all__:
        assert getattr(lerobot_inspect, name) is not None


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
            if target.startswith("lerobot_inspect."):
                other = target.removeprefix("lerobot_inspect.")
                assert rank_of(other) <= mine, f"{module} (layer {mine}) imports {other} (layer {rank_of(other)})"
