"""The report driver: run each notebook on a dataset, write one page per notebook, index.html and
report.json (what a rerun needs: command, versions, dataset fingerprint, knobs, times)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lerobot_inspect._resources import notebook_dir as packaged_notebook_dir
from lerobot_inspect.errors import OptionError
from lerobot_inspect.report.knobs import NOTEBOOKS, knob_args, knob_text
from lerobot_inspect.report.provenance import dataset_fingerprint, package_versions
from lerobot_inspect.report.render import index_page, notebook_page
from lerobot_inspect.report.run import run_notebook

__all__ = ["NotebookPage", "ReportResult", "build_report", "check_notebook_dir", "report_command"]

Status = str  # "ok" | "failed" | "unavailable"


@dataclass
class NotebookPage:
    """One notebook's run: its page, a one-line verdict, and why it failed if it did."""

    name: str
    status: Status
    verdict: str
    page: str
    duration_s: float
    level: str = "ok"
    error: str = ""
    command: str = ""


@dataclass
class ReportResult:
    """Where the report is and how each notebook went; `ok` is False when any notebook failed."""

    out_dir: Path
    index: Path
    report_json: Path
    pages: list[NotebookPage] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(p.status != "failed" for p in self.pages)


def report_command(root: str, out_dir: Path, notebooks: Sequence[str], knobs: Mapping[str, Any]) -> str:
    """The `lerobot-inspect report` command line that writes this report again."""
    parts = ["lerobot-inspect", "report", str(root), "--out", str(out_dir), "--notebooks", ",".join(notebooks)]
    for name, value in knobs.items():
        if value is not None:
            parts += [f"--{name.replace('_', '-')}", knob_text(value)]
    return shlex.join(parts)


def check_notebook_dir(notebook_dir: Path, notebooks: Sequence[str]) -> None:
    """Refuse up front when the notebooks are not there, instead of one failed page per notebook."""
    missing = [name for name in notebooks if not (notebook_dir / f"{name}.py").is_file()]
    if not missing:
        return
    where = (f"{notebook_dir} does not exist" if not notebook_dir.is_dir()
             else f"{notebook_dir} lacks {', '.join(f'{m}.py' for m in missing)}")
    raise OptionError(
        f"cannot run notebooks {missing}: {where}. The report runs lerobot_inspect's marimo notebooks: the "
        f"installed package carries them (default: {packaged_notebook_dir()}), a source checkout has them in "
        "notebooks/; pass --notebook-dir / notebook_dir= pointing at the folder that holds them")


def build_report(
    root: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    notebooks: Sequence[str] = NOTEBOOKS,
    knobs: Mapping[str, Any] | None = None,
    command: str | None = None,
    progress: Callable[[str], None] | None = print,
    timeout_s: float = 900,
    notebook_dir: str | os.PathLike | None = None,
) -> ReportResult:
    """Run each notebook headless on `root` with `knobs`; write `<name>.html`, index.html, report.json.

    Each notebook runs in its own process (a crash or a hung decoder cannot take the others down);
    a failure is recorded with its traceback and the rest still run. `notebook_dir` defaults to the
    notebooks the package carries."""
    knobs = dict(knobs or {})
    if "://" not in str(root) and Path(root).exists():
        root = Path(root).resolve()  # the notebooks run in their own folder: a relative path would miss
    bad = [n for n in notebooks if n not in NOTEBOOKS]
    if bad:
        raise OptionError(f"notebooks={list(notebooks)}: unknown {bad}; choose among {list(NOTEBOOKS)}")
    args = knob_args(str(root), knobs)
    folder = Path(notebook_dir) if notebook_dir is not None else packaged_notebook_dir()
    check_notebook_dir(folder, notebooks)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC)
    clock = time.perf_counter()
    say = progress or (lambda _message: None)
    record: dict[str, Any] = {
        "command": command or report_command(str(root), out, notebooks, knobs),
        "dataset": str(root),
        "fingerprint": {},
        "seed": knobs.get("seed"),
        "knobs": knobs,
        "notebooks": list(notebooks),
        "versions": package_versions(),
        "started": started.isoformat(timespec="seconds"),
        "duration_s": None,
        "pages": [],
    }
    try:
        record["fingerprint"] = dataset_fingerprint(str(root))
    except Exception as exc:  # an unreadable root still gets a report (the audit page says why)
        record["fingerprint"] = {"error": f"{type(exc).__name__}: {exc}"}
    pages: list[NotebookPage] = []
    for position, name in enumerate(notebooks, start=1):
        notebook = folder / f"{name}.py"
        page = NotebookPage(name, "failed", "", f"{name}.html", 0.0,
                            command=shlex.join([sys.executable, str(notebook), "--", *args]))
        say(f"[{position}/{len(notebooks)}] {name} ...")
        begin = time.perf_counter()
        result = run_notebook(notebook, args, timeout_s=timeout_s,
                              progress=lambda line, _name=name: say(f"    {_name}: {line}"))
        page.duration_s = round(time.perf_counter() - begin, 2)
        page.status, page.verdict, page.error = result["status"], result["verdict"], result["error"]
        page.level = result.get("level", "error" if page.status == "failed" else "ok")
        (out / page.page).write_text(notebook_page(name, result, record, page.command), encoding="utf-8")
        pages.append(page)
        first_error = page.error.strip().splitlines()[0] if page.error.strip() else ""
        say(f"[{position}/{len(notebooks)}] {name}: {page.status} in {page.duration_s:.1f} s: {page.verdict}"
            + (f" ({first_error})" if first_error else ""))
    record["duration_s"] = round(time.perf_counter() - clock, 2)
    record["pages"] = [asdict(p) for p in pages]
    index = out / "index.html"
    index.write_text(index_page(pages, record), encoding="utf-8")
    report_json = out / "report.json"
    report_json.write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
    return ReportResult(out, index, report_json, pages)
