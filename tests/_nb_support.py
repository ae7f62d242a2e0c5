"""Helpers for the notebook and report tests: the dataset they run on and an in-process notebook run."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"


def demo_root() -> Path:
    """The committed tiny fixture, or the same configuration generated once per machine."""
    tiny = REPO / "data_fixtures" / "tiny"
    if (tiny / "meta" / "info.json").exists():
        return tiny
    from data_fixtures import cached_dataset

    return cached_dataset(episodes=5, length_range=(20, 40), episodes_per_file=2)


def run_notebook(name: str, *args: str) -> tuple[list[Any], dict[str, Any]]:
    """Run notebooks/<name>.py in this process with `args` as its CLI arguments; (outputs, defs)."""
    argv = sys.argv
    sys.argv = [str(NOTEBOOKS / f"{name}.py"), *args]
    try:
        spec = importlib.util.spec_from_file_location(f"_test_nb_{name}", NOTEBOOKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        outputs, defs = module.app.run()
        return list(outputs), dict(defs)
    finally:
        sys.argv = argv
