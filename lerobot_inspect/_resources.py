"""Files the package carries for `report` and `demo`: the marimo notebooks and the tiny fixture.

In the repository they live at the top level (`notebooks/`, `data_fixtures/tiny/`), where people
edit them; the wheel ships them inside the package as `_notebooks/` and `_tiny/` (pyproject's
`package-dir` maps one onto the other). An editable install or a checkout on `sys.path` has no
packaged copy, so the lookup falls back to the repository folders next to the package.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["notebook_dir", "tiny_root"]

_PACKAGE = Path(__file__).resolve().parent


def _data_dir(packaged: str, checkout: str) -> Path:
    """The packaged folder when the package was installed from a wheel, else the checkout's."""
    inside = _PACKAGE / packaged
    if inside.is_dir():
        return inside
    beside = _PACKAGE.parent / checkout
    return beside if beside.is_dir() else inside


def notebook_dir() -> Path:
    """The folder holding the marimo notebooks `report` runs (audit.py, padding.py, ...)."""
    return _data_dir("_notebooks", "notebooks")


def tiny_root() -> Path:
    """The committed tiny LeRobot v3 fixture: the notebooks' and the demo's default dataset."""
    return _data_dir("_tiny", "data_fixtures/tiny")
