"""Offline HTML report: run the notebooks headless and render what they show into our own pages.

`marimo export html` loads marimo's frontend from a CDN, so its page is blank offline. A report is
evidence a person attaches to a bug, so it must open anywhere: each notebook runs in a child
process (`app.run()` with the knobs as its command-line arguments, exactly as
`python notebooks/X.py -- --dataset ROOT` runs it), and its outputs are rendered here: altair
charts to SVG with vl-convert, tables to HTML, images to inline PNG, markdown as HTML. No script,
style, font or image is fetched: the pages hold everything.

`report.json` records what a rerun needs: the command, package and FFmpeg versions, a fingerprint
of the dataset (meta files' contents, every file's size, the byte index format), every knob, the
start time and the duration. A notebook that fails leaves a partial report that says which and why.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import html
import importlib.metadata
import io
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lerobot_inspect.errors import OptionError

__all__ = [
    "NOTEBOOKS",
    "NOTEBOOK_DIR",
    "NotebookPage",
    "ReportResult",
    "add_demo_parser",
    "add_report_parser",
    "build_report",
    "check_notebook_dir",
    "dataset_fingerprint",
    "knob_args",
    "package_versions",
    "render_outputs",
]

NOTEBOOKS = ("audit", "padding", "frames", "mixing", "resume", "fetches")
NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
TINY_FIXTURE = Path(__file__).resolve().parents[1] / "data_fixtures" / "tiny"
# knob name (report.json, build_report) -> notebook command-line flag (mo.cli_args key)
KNOBS = {
    "seed": "seed", "pool_size": "pool-size", "batch_size": "batch-size", "workers": "workers",
    "world_size": "world-size", "delta_timestamps": "delta-timestamps", "pipeline": "pipeline",
    "resume_step": "resume-step", "episode": "episode", "shift_episode": "shift-episode",
    "batches": "batches",
}
MAX_TABLE_ROWS = 200
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


# ---------------------------------------------------------------------------------------- knobs
def knob_args(root: str, knobs: Mapping[str, Any]) -> list[str]:
    """Notebook command-line arguments for a dataset root and knobs (`--dataset ROOT --seed 3`)."""
    unknown = sorted(set(knobs) - set(KNOBS))
    if unknown:
        raise OptionError(f"unknown report knob(s) {unknown}; choose among {sorted(KNOBS)}")
    # `--flag=value`: marimo's argument parser would read a separate "-1" as a flag of its own.
    args = [f"--dataset={root}"]
    for name, value in knobs.items():
        if value is None:
            continue
        text = json.dumps(value) if isinstance(value, dict | list) else str(value)
        args.append(f"--{KNOBS[name]}={text}")
    return args


# ---------------------------------------------------------------------------------------- rendering
_SVG_NS = re.compile(r'\s+xmlns(:xlink)?="[^"]*"')


def _chart_svg(chart: Any) -> str:
    import vl_convert

    svg = vl_convert.vegalite_to_svg(chart.to_json())
    # Inline SVG in HTML needs no namespace declarations; dropping them keeps the page free of URLs.
    return _SVG_NS.sub("", svg)


def _png_data_url(image: Any) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _external_links_removed(markup: str) -> str:
    """Markdown may link to the web; keep the text, drop the link, so the page never fetches."""
    return re.sub(r'\s(href|src)="(?!data:|#)[^"]*"', "", markup)


def render_outputs(outputs: Sequence[Any]) -> list[str]:
    """HTML blocks for a notebook's cell outputs, in order; UI elements (interactive only) are skipped."""
    import altair as alt
    import pandas as pd
    from PIL import Image

    blocks = []
    for output in outputs:
        if output is None:
            continue
        if isinstance(output, alt.TopLevelMixin):
            blocks.append(f'<figure class="chart">{_chart_svg(output)}</figure>')
        elif isinstance(output, pd.DataFrame):
            shown = output.head(MAX_TABLE_ROWS)
            note = (f'<p class="note">first {MAX_TABLE_ROWS} of {len(output)} rows</p>'
                    if len(output) > MAX_TABLE_ROWS else "")
            blocks.append(f'<div class="table">{shown.to_html(index=False, border=0, na_rep="")}</div>{note}')
        elif isinstance(output, Image.Image):
            blocks.append(f'<figure class="image"><img alt="frames" src="{_png_data_url(output)}"></figure>')
        elif hasattr(output, "text") and isinstance(getattr(output, "text", None), str):
            text = output.text
            if "<marimo-" in text:  # widgets and layouts of widgets: only meaningful live
                continue
            blocks.append(f'<div class="md">{_external_links_removed(text)}</div>')
        elif isinstance(output, str):
            blocks.append(f"<pre>{html.escape(output)}</pre>")
    return blocks


def _run_notebook_here(notebook: Path, args: list[str]) -> dict[str, Any]:
    """Child-process side: run a notebook as `python notebook.py -- ARGS` would, render its outputs."""
    import importlib.util

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


def _child_main(notebook: str, out: str, args: list[str]) -> int:
    try:
        result = _run_notebook_here(Path(notebook), args)
    except BaseException as exc:  # report any failure of the notebook, whatever raised it
        result = {"status": "failed", "verdict": "failed", "blocks": [],
                  "error": f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}"}
    Path(out).write_text(json.dumps(result))
    return 0 if result["status"] != "failed" else 1


# ---------------------------------------------------------------------------------------- provenance
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
    from lerobot_inspect.format.meta import open_fs

    fs, root_path = open_fs(root)
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


# ---------------------------------------------------------------------------------------- pages
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2630;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px 32px;background:#fff;min-height:100vh}
h1{font-size:22px;margin:0 0 6px} h2{font-size:17px;margin:24px 0 8px}
.verdict{font-size:16px;padding:10px 14px;border-radius:6px;margin:12px 0;background:#eef5ee;
  border-left:5px solid #4c9a5a}
.verdict.failed,.verdict.error{background:#fbeeee;border-color:#c0392b}
.verdict.warning{background:#fdf6e7;border-color:#e69f00} .verdict.unavailable{background:#fdf6e7;border-color:#e69f00}
.meta{font-size:12px;color:#55606b} .meta code{font-size:11px}
details{margin:10px 0} summary{cursor:pointer;color:#34495e}
table{border-collapse:collapse;font-size:12px;margin:8px 0}
th,td{padding:3px 8px;border-bottom:1px solid #e3e6ea;text-align:left;vertical-align:top;max-width:520px;
  overflow-wrap:anywhere}
th{background:#f0f2f5}
.table{overflow-x:auto;max-height:520px;overflow-y:auto}
figure{margin:12px 0} figure.image img{image-rendering:pixelated;max-width:100%;border:1px solid #ddd}
pre{background:#f4f5f7;padding:10px;overflow-x:auto;font-size:12px}
.md pre{background:#f4f5f7} .note{color:#777;font-size:12px}
.status-ok{color:#2e7d32;font-weight:600} .status-failed{color:#c0392b;font-weight:600}
.status-unavailable{color:#b7791f;font-weight:600} .level-error{color:#c0392b} .level-warning{color:#b7791f}
nav a{color:#2c5d8a}
"""


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
            f"<body><main>{body}</main></body></html>\n")


def _provenance(record: Mapping[str, Any]) -> str:
    knobs = ", ".join(f"{k}={v}" for k, v in record["knobs"].items()) or "defaults"
    versions = ", ".join(f"{k} {v}" for k, v in record["versions"].items() if v)
    return (f'<details class="meta"><summary>How this was made</summary>'
            f"<p>command: <code>{html.escape(record['command'])}</code></p>"
            f"<p>dataset: <code>{html.escape(record['dataset'])}</code>, fingerprint "
            f"<code>{record['fingerprint'].get('sha256', '')[:16]}</code></p>"
            f"<p>seed and knobs: {html.escape(knobs)}</p><p>versions: {html.escape(versions)}</p>"
            f"<p>started {html.escape(record['started'])}</p></details>")


def _notebook_page(name: str, result: Mapping[str, Any], record: Mapping[str, Any], page: NotebookPage) -> str:
    status = result["status"] if result["status"] != "ok" else result.get("level", "ok")
    error = (f"<h2>Why it failed</h2><pre>{html.escape(result['error'])}</pre>" if result.get("error") else "")
    body = (f'<nav><a href="index.html">&larr; report index</a></nav>'
            f"<h1>{html.escape(name)}</h1>"
            f'<div class="verdict {status}">{html.escape(result["verdict"])}</div>'
            f"{_provenance(record)}"
            f'<p class="meta">rerun: <code>{html.escape(page.command)}</code></p>'
            f"{error}{''.join(result['blocks'])}")
    return _page(f"{name}: lerobot_inspect report", body)


def _index_page(pages: Sequence[NotebookPage], record: Mapping[str, Any]) -> str:
    rows = "".join(
        f'<tr><td><a href="{html.escape(p.page)}">{html.escape(p.name)}</a></td>'
        f'<td class="status-{p.status}">{p.status}</td><td class="level-{p.level}">{html.escape(p.verdict)}</td>'
        f"<td>{p.duration_s:.1f} s</td></tr>" for p in pages)
    failed = [p.name for p in pages if p.status == "failed"]
    summary = (f'<div class="verdict failed">{len(failed)} notebook(s) failed: {html.escape(", ".join(failed))}; '
               "their pages say why</div>" if failed else
               f'<div class="verdict">{len(pages)} notebook(s) ran</div>')
    body = (f"<h1>lerobot_inspect report</h1><p class=\"meta\">{html.escape(record['dataset'])}</p>{summary}"
            f"<table><tr><th>notebook</th><th>status</th><th>verdict</th><th>time</th></tr>{rows}</table>"
            f"{_provenance(record)}<p class=\"meta\">Everything in these pages is inline; they open offline. "
            "report.json holds the same provenance for scripts.</p>")
    return _page("lerobot_inspect report", body)


# ---------------------------------------------------------------------------------------- driver
def _default_command(root: str, out_dir: Path, notebooks: Sequence[str], knobs: Mapping[str, Any]) -> str:
    parts = ["lerobot-inspect", "report", str(root), "--out", str(out_dir), "--notebooks", ",".join(notebooks)]
    for name, value in knobs.items():
        if value is not None:
            parts += [f"--{KNOBS[name]}", json.dumps(value) if isinstance(value, dict | list) else str(value)]
    return shlex.join(parts)


def build_report(
    root: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    notebooks: Sequence[str] = NOTEBOOKS,
    knobs: Mapping[str, Any] | None = None,
    command: str | None = None,
    progress: Callable[[str], None] | None = print,
    timeout_s: float = 900,
    notebook_dir: str | os.PathLike = NOTEBOOK_DIR,
) -> ReportResult:
    """Run each notebook headless on `root` with `knobs`; write `<name>.html`, index.html, report.json.

    Each notebook runs in its own process (a crash or a hung decoder cannot take the others down);
    a failure is recorded with its traceback and the rest still run."""
    knobs = dict(knobs or {})
    bad = [n for n in notebooks if n not in NOTEBOOKS]
    if bad:
        raise OptionError(f"notebooks={list(notebooks)}: unknown {bad}; choose among {list(NOTEBOOKS)}")
    args = knob_args(str(root), knobs)
    notebook_dir = Path(notebook_dir)
    check_notebook_dir(notebook_dir, notebooks)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC)
    clock = time.perf_counter()
    say = progress or (lambda _message: None)
    record: dict[str, Any] = {
        "command": command or _default_command(str(root), out, notebooks, knobs),
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
        notebook = notebook_dir / f"{name}.py"
        page = NotebookPage(name, "failed", "", f"{name}.html", 0.0,
                            command=shlex.join([sys.executable, str(notebook), "--", *args]))
        say(f"[{position}/{len(notebooks)}] {name} ...")
        begin = time.perf_counter()
        result = _run_child(notebook, args, timeout_s=timeout_s)
        page.duration_s = round(time.perf_counter() - begin, 2)
        page.status, page.verdict, page.error = result["status"], result["verdict"], result["error"]
        page.level = result.get("level", "error" if page.status == "failed" else "ok")
        (out / page.page).write_text(_notebook_page(name, result, record, page), encoding="utf-8")
        pages.append(page)
        first_error = page.error.strip().splitlines()[0] if page.error.strip() else ""
        say(f"[{position}/{len(notebooks)}] {name}: {page.status} in {page.duration_s:.1f} s: {page.verdict}"
            + (f" ({first_error})" if first_error else ""))
    record["duration_s"] = round(time.perf_counter() - clock, 2)
    record["pages"] = [asdict(p) for p in pages]
    index = out / "index.html"
    index.write_text(_index_page(pages, record), encoding="utf-8")
    report_json = out / "report.json"
    report_json.write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
    return ReportResult(out, index, report_json, pages)


def check_notebook_dir(notebook_dir: Path, notebooks: Sequence[str]) -> None:
    """Refuse up front when the notebooks are not there, instead of one failed page per notebook.

    The notebooks live in the repository's `notebooks/` next to the package (they are marimo files,
    not package modules), so an installed wheel without a checkout has none."""
    missing = [name for name in notebooks if not (notebook_dir / f"{name}.py").is_file()]
    if not missing:
        return
    where = (f"{notebook_dir} does not exist" if not notebook_dir.is_dir()
             else f"{notebook_dir} lacks {', '.join(f'{m}.py' for m in missing)}")
    raise OptionError(
        f"cannot run notebooks {missing}: {where}. The report runs the marimo notebooks of a lerobot_inspect "
        "source checkout; run it from a clone (the default is <checkout>/notebooks next to the package) or "
        "pass --notebook-dir / notebook_dir= pointing at that folder")


def _run_child(notebook: Path, args: list[str], *, timeout_s: float) -> dict[str, Any]:
    if not notebook.exists():
        return {"status": "failed", "verdict": "notebook missing", "blocks": [],
                "error": f"{notebook} does not exist; the report runs the notebooks of a source checkout"}
    with tempfile.TemporaryDirectory(prefix="lerobot_inspect_report_") as tmp:
        result_path = Path(tmp) / "result.json"
        command = [sys.executable, "-m", "lerobot_inspect.report", "--render-notebook", str(notebook),
                   str(result_path), "--", *args]
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s,
                                  cwd=str(notebook.parent))
        except subprocess.TimeoutExpired:
            return {"status": "failed", "verdict": "timed out", "blocks": [],
                    "error": f"{notebook.name} ran longer than {timeout_s:.0f} s; rerun it alone with the "
                             "command above to see where it spends the time"}
        if result_path.exists():
            return json.loads(result_path.read_text())
        tail = "\n".join((proc.stderr or "").strip().splitlines()[-30:])
        return {"status": "failed", "verdict": "crashed", "blocks": [],
                "error": f"the notebook process exited with code {proc.returncode} before writing a result\n{tail}"}


# ---------------------------------------------------------------------------------------- CLI
def _add_knob_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--notebooks", default=",".join(NOTEBOOKS),
                        help=f"comma-separated subset of {','.join(NOTEBOOKS)}")
    parser.add_argument("--seed", type=int, default=0, help="shuffle seed for mixing/resume")
    parser.add_argument("--pool-size", type=int, default=None, help="streaming episode pool size")
    parser.add_argument("--batch-size", type=int, default=None, help="batch size")
    parser.add_argument("--workers", type=int, default=None, help="DataLoader workers")
    parser.add_argument("--world-size", type=int, default=None, help="simulated ranks")
    parser.add_argument("--delta-timestamps", default=None, help='JSON, e.g. \'{"action": [0.0, 0.0333]}\'')
    parser.add_argument("--pipeline", default=None, help="pool or datasets (resume: pool,datasets)")
    parser.add_argument("--resume-step", type=int, default=None, help="step at which resume is checked")
    parser.add_argument("--episode", type=int, default=None, help="episode shown in per-episode views")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per notebook")
    parser.add_argument("--notebook-dir", default=str(NOTEBOOK_DIR),
                        help="folder holding the notebooks (default: notebooks/ of this checkout)")


def _knobs_from(args: argparse.Namespace) -> dict[str, Any]:
    knobs = {name: getattr(args, name, None) for name in KNOBS}
    if knobs.get("delta_timestamps"):
        try:
            knobs["delta_timestamps"] = json.loads(knobs["delta_timestamps"])
        except json.JSONDecodeError as exc:
            raise OptionError(f"--delta-timestamps is not JSON ({exc}); "
                              'write it like \'{"action": [0.0, 0.0333]}\'') from exc
    return {k: v for k, v in knobs.items() if v is not None}


def _finish(result: ReportResult) -> int:
    print(f"report: {result.index}")
    failed = [p for p in result.pages if p.status == "failed"]
    for page in failed:
        print(f"FAILED {page.name}: {page.error.strip().splitlines()[0] if page.error.strip() else page.verdict}",
              file=sys.stderr)
    return 1 if failed else 0


def _run_report(args: argparse.Namespace) -> int:
    notebooks = [n.strip() for n in args.notebooks.split(",") if n.strip()]
    result = build_report(args.root, args.out, notebooks=notebooks, knobs=_knobs_from(args),
                          command=shlex.join(["lerobot-inspect", *sys.argv[1:]]) if sys.argv[1:] else None,
                          timeout_s=args.timeout, notebook_dir=args.notebook_dir)
    return _finish(result)


def _run_demo(args: argparse.Namespace) -> int:
    root = TINY_FIXTURE
    if not (root / "meta" / "info.json").exists():
        from data_fixtures import cached_dataset

        root = cached_dataset(episodes=5, length_range=(20, 40), episodes_per_file=2)
    knobs = _knobs_from(args)
    knobs.setdefault("shift_episode", 0)  # the frames page shows a one-frame shift being caught
    notebooks = [n.strip() for n in args.notebooks.split(",") if n.strip()]
    result = build_report(str(root), args.out, notebooks=notebooks, knobs=knobs, timeout_s=args.timeout,
                          notebook_dir=args.notebook_dir,
                          command=shlex.join(["lerobot-inspect", *sys.argv[1:]]) if sys.argv[1:] else None)
    return _finish(result)


def add_report_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """`lerobot-inspect report ROOT --out DIR [--notebooks ...] [--seed ...]`."""
    parser = subparsers.add_parser(
        "report", help="run the notebooks on a dataset and write an offline HTML report",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run each notebook headless and write DIR/index.html, one self-contained page per "
                    "notebook and DIR/report.json (command, versions, dataset fingerprint, knobs). Exit 1 "
                    "when a notebook failed; the report still says which and why.\n\n"
                    "example:\n  lerobot-inspect report data_fixtures/tiny --out /tmp/report --notebooks audit,padding")
    parser.add_argument("root", help="dataset root: a local path or any fsspec URL")
    parser.add_argument("--out", required=True, help="output directory")
    _add_knob_arguments(parser)
    parser.set_defaults(func=_run_report)
    return parser


def add_demo_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """`lerobot-inspect demo --out DIR`: the report on the committed tiny fixture."""
    parser = subparsers.add_parser(
        "demo", help="write the report for the committed tiny fixture and print where index.html is",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Runs `report` on data_fixtures/tiny (the frames page shifts one episode's video "
                    "timestamps on a temporary copy to show the check catching it).\n\n"
                    "example:\n  lerobot-inspect demo --out /tmp/lerobot-inspect-demo")
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "lerobot-inspect-demo"),
                        help="output directory")
    _add_knob_arguments(parser)
    parser.add_argument("--shift-episode", type=int, default=None,
                        help="episode whose video timestamps the frames page shifts (-1: none)")
    parser.set_defaults(func=_run_demo)
    return parser


if __name__ == "__main__":  # internal: the child process of build_report
    if len(sys.argv) >= 4 and sys.argv[1] == "--render-notebook":
        rest = sys.argv[4:]
        sys.exit(_child_main(sys.argv[2], sys.argv[3], rest[1:] if rest[:1] == ["--"] else rest))
    print("usage: lerobot-inspect report ROOT --out DIR (this module is not a command of its own)", file=sys.stderr)
    sys.exit(2)
