"""Every notebook runs headless on the tiny fixture and its key cells hold the right values.

Each notebook runs once per session in this process (`app.run()`, one import of torch for all) and
several tests read its values; the seeded fault (episode 0's video from/to_timestamp one frame late)
must be pointed at by both the audit and the frames notebook. Script runs and `marimo export html`
of all six are slow: the report tests already run notebooks in child processes by default.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _nb_support import NOTEBOOKS, REPO, demo_root, run_notebook

from data_fixtures.corrupt import shift_video_timestamps
from lerobot_inspect.loaders.streaming import StreamingDataset
from lerobot_inspect.probes.mixing import randomness_fraction

ALL = ["audit", "padding", "frames", "mixing", "resume", "fetches"]
FRONT = "observation.images.front"
_RUNS: dict[tuple[str, ...], tuple[list[Any], dict[str, Any]]] = {}


def _notebook_module(name: str):
    """A notebook file imported as a module: its @app.function helpers, without running a cell."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"_nb_{name}", REPO / "notebooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_once(name: str, *args: str) -> tuple[list[Any], dict[str, Any]]:
    """A notebook's (outputs, defs) for these arguments, computed once per test session."""
    key = (name, *args)
    if key not in _RUNS:
        _RUNS[key] = run_notebook(name, *args)
    return _RUNS[key]


@pytest.fixture(scope="module")
def root() -> Path:
    return demo_root()


@pytest.fixture(scope="module")
def shifted_root(tmp_path_factory, root) -> Path:
    """Episode 0 of the front camera one frame late: a loader without checks returns frame f+1."""
    copy = tmp_path_factory.mktemp("shifted") / "dataset"
    shutil.copytree(root, copy)
    shift_video_timestamps(copy, FRONT, 0, frames=1)
    return copy


# ---------------------------------------------------------------------------------------- audit
def test_audit_notebook_clean_dataset(root):
    _, defs = run_once("audit", f"--dataset={root}")
    assert defs["verdict"].startswith("0 errors, 0 warnings; 5 of 5 episodes have no error")
    assert defs["verdict_level"] == "ok" and defs["problems"].empty
    table = defs["decoded"].table()
    assert table["ok"].all() and set(table["episode_index"]) == set(range(defs["report"].summary["episodes"]))
    assert defs["table"].empty


def test_audit_notebook_points_at_the_shifted_episode(shifted_root):
    _, defs = run_once("audit", f"--dataset={shifted_root}")
    assert defs["verdict_level"] == "error"
    findings = defs["findings"]
    errors = findings[findings["severity"] == "error"]
    assert len(errors) >= 1
    assert {(int(e), c) for e, c in errors[["episode", "camera"]].values} == {(0, FRONT)}, errors
    grid = defs["decoded"].table()
    failed = grid[~grid["ok"]]
    assert {(int(e), c) for e, c in failed[["episode_index", "camera"]].values} <= {(0, FRONT)}
    assert grid[(grid["episode_index"] != 0) | (grid["camera"] != FRONT)]["ok"].all()


# ---------------------------------------------------------------------------------------- padding
def test_padding_notebook_pads_only_at_edges(root):
    deltas = '{"action": [-0.066667, 0.0, 0.1]}'
    _, defs = run_once("padding", f"--dataset={root}", f"--delta-timestamps={deltas}", "--episode=2")
    table = defs["table"]
    assert table["at_edges"].all() and defs["verdict_level"] == "ok"
    assert set(table["offset_frames"]) == {-2, 0, 3}
    row = table[(table["episode_index"] == 2) & (table["offset_frames"] == 3)].iloc[0]
    assert (row["padded"], row["last_padded"]) == (3, row["length"] - 1)
    frames = defs["frames_table"]
    assert set(frames["episode_index"]) == {2}
    assert frames[frames["is_pad"]]["frame_index"].tolist()[:2] == [0, 1]  # offset -2 pads frames 0, 1


def test_padding_notebook_shows_a_refused_delta_in_the_page(root):
    """An off-grid delta is refused by the loader: the error and its fix are a cell output (and the
    verdict), not only a server log line; the cells below wait."""
    outputs, defs = run_once("padding", f"--dataset={root}", '--delta-timestamps={"action": [0.01]}')
    assert defs["verdict"].startswith("delta_timestamps refused: OptionError") and defs["verdict_level"] == "error"
    assert defs["dataset"] is None
    shown = [o.text for o in outputs if o is not None and "callout" in getattr(o, "text", "")]
    assert shown and "0.01" in shown[0]


# ---------------------------------------------------------------------------------------- frames
def test_frames_notebook_clean_and_streaming_matches_map_style(root):
    _, defs = run_once("frames", f"--dataset={root}")
    parity = defs["parity"]
    assert defs["verdict"].startswith("all 30 frames whose code was read are the frames asked for")
    assert defs["verdict_level"] == "ok" and defs["unchecked"] == 0
    assert parity["code_ok"].all()
    # the streaming loader's frame for the same index: same code, same timestamp, same pixels
    assert (parity["stream_error"] == "").all() and defs["stream_agrees"] and defs["stream_refused"] == []
    assert (parity["stream_max_abs_diff"] == 0).all()
    assert (parity["stream_code_frame"] == parity["code_frame"]).all()
    assert np.allclose(parity["stream_timestamp_s"], parity["timestamp_s"])
    assert {"stream ts", "max |map - stream|"} <= set(defs["side_table"].columns)


def test_frames_notebook_points_at_the_shifted_episode(root):
    outputs, defs = run_once("frames", f"--dataset={root}", "--shift-episode=0")
    parity = defs["parity"]
    # the fault seeded on purpose reads as such first, and finding it is the page working (level ok)
    assert defs["verdict"].startswith("seeded fault found: episode 0") and defs["verdict_level"] == "ok"
    front0 = parity[(parity["episode_index"] == 0) & (parity["camera"] == FRONT)]
    # every asked frame of episode 0 / front is refused or decodes a neighbour, never silently right
    assert ((front0["error"] != "") | (front0["code_ok"] == False)).all()  # noqa: E712
    others = parity[(parity["episode_index"] != 0) | (parity["camera"] != FRONT)]
    assert (others["error"] == "").all()
    assert others[others["episode_index"] != 0]["code_ok"].all()
    # the streaming side names the same episode and nothing else
    assert defs["stream_refused"] in ([], [0])
    assert (parity.loc[parity["episode_index"] != 0, "stream_error"] == "").all()
    # the per-frame view opens on the faulty episode and camera and shows a panel
    assert defs["episode"].value == "0" and defs["camera"].value == FRONT
    assert defs["side_by_side"] is not None and defs["side_by_side"].size[0] > 0
    assert any(type(o).__name__ == "Image" for o in outputs)


def test_frames_verdict_counts_unreadable_codes_as_unchecked():
    """A frame whose code could not be read is neither right nor wrong: counted, named, and a warning."""
    import pandas as pd

    module = _notebook_module("frames")
    row = {"episode_index": 0, "camera": FRONT, "position": "first", "error": "", "code_ok": True,
           "next_episode_identical": None, "stream_error": "", "stream_max_abs_diff": 0.0,
           "stream_code_frame": 0, "code_frame": 0, "stream_timestamp_s": 0.0, "timestamp_s": 0.0}
    parity = pd.DataFrame([row, {**row, "episode_index": 1, "code_ok": None, "code_frame": -1,
                                 "stream_code_frame": -1}])
    verdict, level, counts = module.frames_verdict(parity, pipeline="pool", shift_episode=-1, checked=2, total=200)
    assert counts["unchecked"] == 1 and level == "warning"
    assert "1 of 2 decoded frames UNCHECKED" in verdict and "checked 2 of 200 episodes" in verdict
    assert verdict.startswith("all 1 frames whose code was read")
    _, level, _ = module.frames_verdict(parity, pipeline="pool", shift_episode=0, checked=2, total=2)
    assert level == "error"  # the seeded fault was not found: the check failed


# ---------------------------------------------------------------------------------------- mixing
def test_mixing_notebook_draws_through_a_dataloader_with_workers(root):
    _, defs = run_once("mixing", f"--dataset={root}", "--seed=3", "--workers=2", "--batch-size=4", "--batches=6",
                       "--pool-size=3")
    drawn = defs["drawn"]
    assert drawn["batch"].nunique() == 6 and (drawn.groupby("batch").size() == 4).all()
    assert drawn["index"].is_unique, "a DataLoader with 2 workers repeated a sample"
    # both workers served: their episode sets are disjoint and each batch comes from one worker
    stream = StreamingDataset(str(root), seed=3, pool_size=3, batch_size=4, decode_video=False)
    plans = [stream.consumer_plan(consumer=w, n_consumers=2) for w in range(2)]
    owners = [set(stream.selected_episodes[p.episodes].tolist()) for p in plans]
    batch_owner = [next(w for w in range(2) if set(g) <= owners[w]) for _, g in drawn.groupby("batch")["episode_index"]]
    assert batch_owner[:2] == [0, 1], "torch asks workers round robin"
    label = defs["label"]
    expected = randomness_fraction(drawn["episode_index"].to_numpy().reshape(-1, 4))
    assert defs["randomness"][label] == pytest.approx(expected)
    assert f"randomness {expected:.2f}" in defs["verdict"] and "LeRobot reservoir" in defs["verdict"]
    assert set(defs["samples"]["pipeline"]) == {label, "LeRobot reservoir"}


def test_mixing_notebook_draws_hundreds_of_samples_by_default(root):
    """The default covers several turnovers of the pool (not 16 batches of 8 = 7 episodes of 200)."""
    _, defs = run_once("mixing", f"--dataset={root}")
    assert len(defs["drawn"]) >= 32 * 8 or defs["drawn"]["episode_index"].nunique() == 5


# ---------------------------------------------------------------------------------------- resume
def test_resume_notebook_pool_is_exact(root):
    _, defs = run_once("resume", f"--dataset={root}", "--seed=3", "--pipeline=pool", "--resume-step=40")
    pool = defs["comparisons"]["pool"]
    assert pool.exact and (pool.repeated, pool.lost, pool.unexpected) == (0, 0, 0)
    assert defs["verdict"] == "pool: exact" and defs["verdict_level"] == "ok"
    table = defs["table"]
    assert set(table["status"]) == {"before resume", "same"}
    assert (table["status"] == "before resume").sum() == 40


@pytest.mark.slow
def test_resume_notebook_shows_the_datasets_pipeline_real_numbers(root):
    from lerobot_inspect.probes.resume import resume_comparison

    _, defs = run_once("resume", f"--dataset={root}", "--seed=3", "--pipeline=pool,datasets", "--resume-step=40")
    ours = defs["comparisons"]["datasets"]
    from lerobot_inspect.loaders.streaming import open_stream

    # the notebook's own options: indices only (the order does not depend on pixels)
    options = dict(seed=3, pool_size=3, decode_video=False, pipeline="datasets")
    full = [int(s["index"]) for s in open_stream(str(root), **options)]
    stream = open_stream(str(root), **options)
    stream.load_state_dict(stream.state_dict(samples_seen=40))
    expected = resume_comparison(full, full[:40], [int(s["index"]) for s in stream])
    assert ours.as_dict() == expected.as_dict()
    assert f"datasets: {'exact' if expected.exact else f'{expected.repeated} repeated, {expected.lost} lost'}" \
        in defs["verdict"]


# ---------------------------------------------------------------------------------------- fetches
def test_fetches_notebook_measures_the_byte_index_reads(root):
    _, defs = run_once("fetches", f"--dataset={root}", "--seed=3")
    fetches, per_episode = defs["fetches"], defs["per_episode"]
    assert not defs["unavailable"]
    fetched = int(fetches["bytes_fetched"].sum())
    assert fetched == fetches.attrs["server_video_bytes"] > 0
    assert f"{int((~fetches['cache_hit']).sum())} range requests" in defs["verdict"]
    assert f"{fetched / fetches.attrs['floor_bytes_total']:.2f}x the byte floor" in defs["verdict"]
    assert len(per_episode) == 10 and (per_episode["span_bytes_read"] == per_episode["span_bytes"]).all()


# ---------------------------------------------------------------------------------------- slow: script, export
def _script(name: str, root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(NOTEBOOKS / f"{name}.py"), "--", f"--dataset={root}"],
                          capture_output=True, text=True, timeout=300, cwd=REPO)


def _export(name: str, root: Path, out: Path) -> subprocess.CompletedProcess:
    marimo = Path(sys.executable).with_name("marimo")
    return subprocess.run([str(marimo), "export", "html", str(NOTEBOOKS / f"{name}.py"), "-o", str(out), "--",
                           f"--dataset={root}"], capture_output=True, text=True, timeout=300, cwd=REPO)


@pytest.mark.slow
@pytest.mark.parametrize("pipeline", ["datasets"])
def test_frames_and_mixing_with_the_datasets_pipeline(root, pipeline):
    _, frames = run_once("frames", f"--dataset={root}", "--shift-episode=0", f"--pipeline={pipeline}")
    assert frames["verdict"].startswith("seeded fault found: episode 0") and frames["stream_agrees"]
    _, mixing = run_once("mixing", f"--dataset={root}", "--seed=3", f"--pipeline={pipeline}")
    assert mixing["label"].startswith(pipeline) and 0 < mixing["randomness"][mixing["label"]] <= 1


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
