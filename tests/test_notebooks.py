"""Every notebook runs headless on the tiny fixture and its key cells hold the right values.

In-process `app.run()` for the values (one import of torch for all), a real script run and a real
`marimo export html` for the path users take; the other notebooks' script/export runs are slow.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _nb_support import NOTEBOOKS, REPO, demo_root, run_notebook

from data_fixtures.corrupt import shift_video_timestamps

ALL = ["audit", "padding", "frames", "mixing", "resume", "fetches"]


@pytest.fixture(scope="module")
def root() -> Path:
    return demo_root()


@pytest.fixture(scope="module")
def shifted_root(tmp_path_factory, root) -> Path:
    """Episode 0 of the first camera one frame late: the decoder silently returns frame f+1."""
    copy = tmp_path_factory.mktemp("shifted") / "dataset"
    shutil.copytree(root, copy)
    shift_video_timestamps(copy, "observation.images.front", 0, frames=1)
    return copy


def test_audit_notebook_clean_dataset(root):
    _, defs = run_notebook("audit", f"--dataset={root}")
    assert defs["verdict"] == "0 errors, 0 warnings"
    table = defs["decoded"].table()
    assert table["ok"].all() and set(table["episode_index"]) == set(range(defs["report"].summary["episodes"]))


def test_audit_notebook_names_shifted_episode(shifted_root):
    _, defs = run_notebook("audit", f"--dataset={shifted_root}")
    findings = defs["findings"]
    shared = findings[findings["code"] == "episodes-share-frame"]
    assert shared[["episode", "camera"]].values.tolist() == [[0, "observation.images.front"]]
    assert defs["verdict_level"] == "error"


def test_padding_notebook_pads_only_at_edges(root):
    deltas = '{"action": [-0.066667, 0.0, 0.1]}'
    _, defs = run_notebook("padding", f"--dataset={root}", f"--delta-timestamps={deltas}", "--episode=2")
    table = defs["table"]
    assert table["at_edges"].all()
    assert set(table["offset_frames"]) == {-2, 0, 3}
    row = table[(table["episode_index"] == 2) & (table["offset_frames"] == 3)].iloc[0]
    assert (row["padded"], row["last_padded"]) == (3, row["length"] - 1)
    frames = defs["frames_table"]
    assert set(frames["episode_index"]) == {2}
    assert frames[frames["is_pad"]]["frame_index"].tolist()[:2] == [0, 1]  # offset -2 pads frames 0, 1


def test_frames_notebook_clean(root):
    _, defs = run_notebook("frames", f"--dataset={root}")
    assert defs["verdict"] == "all frames are the frames asked for"
    assert defs["parity"]["code_ok"].all()


def test_frames_notebook_points_at_shifted_episode(root):
    _outputs, defs = run_notebook("frames", f"--dataset={root}", "--shift-episode=0")
    parity = defs["parity"]
    assert defs["verdict"] == "wrong frames in episodes [0]"
    front0 = parity[(parity["episode_index"] == 0) & (parity["camera"] == "observation.images.front")]
    assert front0.set_index("position")["frame_offset"].to_dict()["first"] == 1.0
    last = front0[front0["position"] == "last"].iloc[0]
    assert (last["code_episode"], last["code_frame"], last["next_episode_identical"]) == (1, 0, True)
    assert defs["side_by_side"].size[0] > 0 and defs["episode"].value == "0"


@pytest.mark.parametrize("name", ["mixing", "resume", "fetches"])
def test_other_notebooks_finish_or_say_why(root, name):
    _outputs, defs = run_notebook(name, f"--dataset={root}", "--seed=3")
    assert defs.get("verdict") or defs.get("unavailable"), f"{name} neither finished nor said why"


def _script(name: str, root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(NOTEBOOKS / f"{name}.py"), "--", f"--dataset={root}"],
                          capture_output=True, text=True, timeout=300, cwd=REPO)


def _export(name: str, root: Path, out: Path) -> subprocess.CompletedProcess:
    marimo = Path(sys.executable).with_name("marimo")
    return subprocess.run([str(marimo), "export", "html", str(NOTEBOOKS / f"{name}.py"), "-o", str(out), "--",
                           f"--dataset={root}"], capture_output=True, text=True, timeout=300, cwd=REPO)


def test_audit_runs_as_script(root):
    script = _script("audit", root)
    assert script.returncode == 0, script.stderr[-2000:]


@pytest.mark.slow
def test_audit_exports_with_its_verdict(root, tmp_path):
    exported = _export("audit", root, tmp_path / "audit.html")
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert "0 errors, 0 warnings" in (tmp_path / "audit.html").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL)
def test_every_notebook_runs_as_script_and_exports(root, tmp_path, name):
    script = _script(name, root)
    assert script.returncode == 0, script.stderr[-2000:]
    exported = _export(name, root, tmp_path / f"{name}.html")
    assert exported.returncode == 0, exported.stderr[-2000:]
