"""Running a notebook headless, in a child process, and collecting what it shows.

The parent (`run_notebook`) starts `python -m lerobot_inspect.report.run NOTEBOOK RESULT -- ARGS`;
the child runs the notebook exactly as `python notebooks/X.py -- ARGS` would (`app.run()` with the
knobs as `mo.cli_args()`), renders its outputs and writes them with its verdict to RESULT as JSON.
A crash, a hang or a failing cell costs that notebook only: the parent turns each into a result
that says what happened.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lerobot_inspect.report.progress import PROGRESS_ENV, PROGRESS_PREFIX

__all__ = ["run_notebook"]


def run_notebook(notebook: Path, args: list[str], *, timeout_s: float,
                 progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run `notebook` with `args` in a child process; {status, verdict, level, blocks, error}.

    The child's progress lines (see `report.progress`) go to `progress` as they come, so a long
    notebook is not a silent wait."""
    if not notebook.exists():
        return {"status": "failed", "verdict": "notebook missing", "blocks": [],
                "error": f"{notebook} does not exist; pass the folder holding the notebooks as notebook_dir"}
    with tempfile.TemporaryDirectory(prefix="lerobot_inspect_report_") as tmp:
        result_path = Path(tmp) / "result.json"
        command = [sys.executable, "-m", "lerobot_inspect.report.run", str(notebook), str(result_path), "--", *args]
        env = {**os.environ, PROGRESS_ENV: "1"}
        tail: collections.deque[str] = collections.deque(maxlen=30)
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                cwd=str(notebook.parent), env=env)

        def read_stderr() -> None:
            for line in proc.stderr:  # type: ignore[union-attr]
                if line.startswith(PROGRESS_PREFIX):
                    if progress is not None:
                        progress(line[len(PROGRESS_PREFIX):].rstrip())
                else:
                    tail.append(line.rstrip())

        reader = threading.Thread(target=read_stderr, daemon=True)
        reader.start()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return {"status": "failed", "verdict": "timed out", "blocks": [],
                    "error": f"{notebook.name} ran longer than {timeout_s:.0f} s; rerun it alone with the "
                             "command above to see where it spends the time"}
        reader.join(timeout=5)
        if result_path.exists():
            return json.loads(result_path.read_text())
        return {"status": "failed", "verdict": "crashed", "blocks": [],
                "error": f"the notebook process exited with code {proc.returncode} before writing a result\n"
                         + "\n".join(tail)}


def _run_here(notebook: Path, args: list[str]) -> dict[str, Any]:
    """Child side: run a notebook as `python notebook.py -- ARGS` would, render its outputs."""
    import importlib.util

    from lerobot_inspect.report.render import render_outputs

    sys.argv = [str(notebook), *args]
    spec = importlib.util.spec_from_file_location(f"_lerobot_inspect_nb_{notebook.stem}", notebook)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    outputs, defs = module.app.run()
    blocks = render_outputs(outputs)
    verdict = defs.get("verdict")
    unavailable = defs.get("unavailable")
    if unavailable:
        return {"status": "unavailable", "verdict": str(unavailable), "blocks": blocks, "error": ""}
    if verdict is None:
        return {"status": "failed", "verdict": "did not finish",
                "blocks": blocks, "error": "the notebook stopped before it computed its verdict "
                "(a cell called mo.stop or raised; the page shows how far it got)"}
    level = str(defs.get("verdict_level", "ok"))
    return {"status": "ok", "verdict": str(verdict), "level": level, "blocks": blocks, "error": ""}


def _child_main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: lerobot-inspect report ROOT --out DIR (this module is the report's notebook runner)",
              file=sys.stderr)
        return 2
    notebook, out, rest = argv[0], argv[1], argv[2:]
    args = rest[1:] if rest[:1] == ["--"] else rest
    try:
        result = _run_here(Path(notebook), args)
    except BaseException as exc:  # report any failure of the notebook, whatever raised it
        result = {"status": "failed", "verdict": "failed", "blocks": [],
                  "error": f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}"}
    Path(out).write_text(json.dumps(result))
    return 0 if result["status"] != "failed" else 1


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
