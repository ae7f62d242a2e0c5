"""What a wheel carries: every subpackage, the notebooks and the tiny fixture (so `report` and `demo`
work from any directory after `pip install .`), and nothing generic at the top level."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
NOTEBOOKS = ("audit", "padding", "frames", "mixing", "resume", "fetches")


def test_pyproject_lists_every_subpackage_and_maps_the_data_folders():
    """The package list is explicit (two data packages are mapped from repository folders), so a new
    subpackage must be added to it by hand: this test says which."""
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "lerobot_inspect").rglob("__init__.py")}
    listed = set(SETUPTOOLS["packages"])
    assert on_disk - listed == set(), f"add to [tool.setuptools] packages in pyproject.toml: {on_disk - listed}"
    mapped = SETUPTOOLS["package-dir"]
    assert listed - on_disk == set(mapped), f"listed but not on disk: {listed - on_disk - set(mapped)}"
    assert mapped == {"lerobot_inspect._notebooks": "notebooks", "lerobot_inspect._tiny": "data_fixtures/tiny"}
    assert all(f"{name}.py" in os.listdir(REPO / "notebooks") for name in NOTEBOOKS)
    assert (REPO / "data_fixtures" / "tiny" / "meta" / "info.json").is_file()


def _source_copy(dest: Path) -> Path:
    """The checkout without its venv, caches and build output: building there keeps the repo clean."""
    ignore = shutil.ignore_patterns(".git", ".venv", "reports", "build", "dist", "*.egg-info", "__pycache__",
                                    ".pytest_cache", ".ruff_cache", ".hypothesis", "__marimo__")
    return Path(shutil.copytree(REPO, dest, ignore=ignore))


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_demo_and_report_from_another_directory(tmp_path):
    """`pip install` of the built wheel (not editable) into a new venv, dependencies from the pins in
    constraints.txt (pip's local wheels: no network), then `demo` and `report` run outside the checkout."""
    source = _source_copy(tmp_path / "source")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("lerobot_inspect-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"lerobot_inspect", wheel.name.split("-py3")[0] + ".dist-info"}, \
        "only lerobot_inspect at the top level (no data_fixtures, no tests)"
    assert all(f"lerobot_inspect/_notebooks/{name}.py" in names for name in NOTEBOOKS)
    assert "lerobot_inspect/_tiny/meta/info.json" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    installed = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-c", str(REPO / "constraints.txt"),
                                str(wheel)], capture_output=True, text=True, timeout=1800)
    assert installed.returncode == 0, installed.stderr[-3000:]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    cli = str(venv / "bin" / "lerobot-inspect")
    demo = subprocess.run([cli, "demo", "--out", str(tmp_path / "demo")], capture_output=True, text=True,
                          timeout=1800, cwd=elsewhere, env=env)
    # 0: every notebook ran (the frames page's seeded fault is a finding, not a failure)
    assert demo.returncode == 0, (demo.stdout[-2000:], demo.stderr[-3000:])
    assert (tmp_path / "demo" / "index.html").is_file()
    assert f"report: {(tmp_path / 'demo' / 'index.html').as_uri()}" in demo.stdout
    assert "seeded fault" in (tmp_path / "demo" / "frames.html").read_text()

    site = subprocess.run([str(venv / "bin" / "python"), "-c", "import lerobot_inspect._resources as r; "
                           "print(r.tiny_root()); print(r.notebook_dir())"],
                          capture_output=True, text=True, timeout=120, cwd=elsewhere, env=env).stdout.split()
    assert all(str(venv) in path for path in site), f"resources resolved outside the venv: {site}"
    for top_level in ("data_fixtures", "tests"):
        probe = subprocess.run([str(venv / "bin" / "python"), "-c", f"import {top_level}"], capture_output=True,
                               text=True, timeout=120, cwd=elsewhere, env=env)
        assert probe.returncode != 0, f"{top_level} is importable from the installed wheel"

    report = subprocess.run([cli, "report", site[0], "--out", str(tmp_path / "report"), "--notebooks", "audit"],
                            capture_output=True, text=True, timeout=900, cwd=elsewhere, env=env)
    assert report.returncode == 0, report.stderr[-3000:]
    assert "0 errors, 0 warnings" in (tmp_path / "report" / "audit.html").read_text()
