"""The offline report: every page written, no external URL anywhere, full provenance, honest failures."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from _nb_support import demo_root

from lerobot_inspect.errors import OptionError
from lerobot_inspect.report import NOTEBOOKS, build_report, knob_args

REQUIRED = {"command", "dataset", "fingerprint", "seed", "knobs", "notebooks", "versions", "started",
            "duration_s", "pages"}
VERSIONS = {"lerobot_inspect", "torch", "torchcodec", "ffmpeg", "datasets", "pyarrow", "marimo"}


def external_references(page: str) -> list[str]:
    """Every URL the page could fetch or link to that is not inline data, an anchor or a relative file."""
    page = re.sub(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]+", "data:", page)  # base64 may hold "//"
    found = re.findall(r"(?:https?:)?//[^\s\"'<>)]+", page)
    for attribute in re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", page):
        if not (attribute.startswith(("data:", "#")) or re.fullmatch(r"[\w.-]+\.html", attribute)):
            found.append(attribute)
    return found


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return build_report(demo_root(), out, notebooks=["audit", "padding"], knobs={"seed": 3, "episode": 1},
                        progress=None)


def test_report_writes_every_page_offline(report):
    assert report.ok, [(p.name, p.error) for p in report.pages]
    names = sorted(p.name for p in report.out_dir.glob("*.html"))
    assert names == ["audit.html", "index.html", "padding.html"]
    for page in report.out_dir.glob("*.html"):
        text = page.read_text()
        assert external_references(text) == [], page.name
    padding = (report.out_dir / "padding.html").read_text()
    assert padding.count("<svg") >= 2 and "pads only at episode edges" in padding
    index = report.index.read_text()
    assert 'href="audit.html"' in index and "0 errors, 0 warnings" in index


def test_report_json_has_every_field(report):
    record = json.loads(report.report_json.read_text())
    assert set(record) >= REQUIRED
    assert set(record["versions"]) >= VERSIONS and record["versions"]["marimo"]
    assert record["seed"] == 3 and record["knobs"] == {"seed": 3, "episode": 1}
    assert len(record["fingerprint"]["sha256"]) == 64 and record["fingerprint"]["files"] > 5
    assert [p["name"] for p in record["pages"]] == ["audit", "padding"]
    assert "--episode 1" in record["command"]


def test_external_reference_scan_catches_urls():
    assert external_references('<img src="https://cdn.example/x.js">')
    assert external_references('<script src="//cdn.example/x.js"></script>')
    assert external_references('<a href="/abs/path.css">')
    assert not external_references('<img src="data:image/png;base64,AAA"> <a href="audit.html">')
    assert not external_references('<img src="data:image/png;base64,iVBOR///v370EQZ+/AA==">')
    assert external_references('<img src="data:image/png;base64,AAA"> <img src="http://x.example/a.png">')


def test_failing_notebook_gives_partial_report(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    (notebooks / "audit.py").write_text(
        "import marimo\napp = marimo.App()\n\n@app.cell\ndef _():\n"
        "    raise RuntimeError('probe exploded on episode 7')\n    return\n")
    shutil.copy(Path(__file__).resolve().parents[1] / "notebooks" / "padding.py", notebooks / "padding.py")
    result = build_report(demo_root(), tmp_path / "out", notebooks=["audit"], progress=None,
                          notebook_dir=notebooks)
    assert not result.ok
    page = result.pages[0]
    assert page.status == "failed" and "probe exploded on episode 7" in page.error
    assert "probe exploded on episode 7" in (tmp_path / "out" / "audit.html").read_text()
    assert "1 notebook(s) failed: audit" in result.index.read_text()


def test_missing_notebook_folder_is_refused_clearly(tmp_path):
    with pytest.raises(OptionError, match=r"does not exist.*source checkout.*--notebook-dir"):
        build_report(demo_root(), tmp_path / "out", notebooks=["audit"], progress=None,
                     notebook_dir=tmp_path / "no-notebooks")
    assert not (tmp_path / "out").exists(), "nothing is written before the check"
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "audit.py").write_text("import marimo\napp = marimo.App()\n")
    with pytest.raises(OptionError, match=r"lacks padding\.py"):
        build_report(demo_root(), tmp_path / "out", notebooks=["audit", "padding"], progress=None,
                     notebook_dir=tmp_path / "partial")


def test_knob_args_survive_marimo_parsing():
    from marimo._cli.parse_args import parse_args

    args = knob_args("/data/x", {"shift_episode": -1, "delta_timestamps": {"action": [-0.1, 0.0]}, "seed": 3})
    parsed = parse_args(args)
    assert parsed["shift-episode"] == -1 and parsed["seed"] == 3 and parsed["dataset"] == "/data/x"
    assert json.loads(parsed["delta-timestamps"]) == {"action": [-0.1, 0.0]}


def _chromium(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    """Headless Chromium with every background network feature off (the pages must need none)."""
    return subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                           "--disable-component-update", "--disable-sync", "--no-first-run",
                           "--disable-default-apps", "--disable-extensions", "--dns-prefetch-disable",
                           "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
                           f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=180, check=True)


@pytest.mark.slow
def test_demo_all_notebooks_render_in_chromium_offline(tmp_path):
    """Every page opens from disk with networking disabled; its charts are drawn SVG; screenshots
    are kept (and copied to /tmp/report_shots) for a person to look at."""
    out = tmp_path / "report"
    result = build_report(demo_root(), out, notebooks=NOTEBOOKS, knobs={"shift_episode": 0, "seed": 3},
                          progress=None)
    assert all(p.status == "ok" for p in result.pages), [(p.name, p.status, p.error) for p in result.pages]
    for page in out.glob("*.html"):
        assert external_references(page.read_text()) == [], page.name
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    for name in ["index", *NOTEBOOKS]:
        page = (out / f"{name}.html").as_uri()
        dom = _chromium(chromium, tmp_path / "profile", "--dump-dom", page).stdout
        if name != "index":
            svgs = re.findall(r"<svg\b.*?</svg>", dom, flags=re.S)
            assert svgs, f"{name}: no chart rendered"
            assert all(re.search(r"<(path|rect|line|text)\b", svg) for svg in svgs), f"{name}: an empty chart"
        assert "lerobot_inspect report" in dom
        shot = shots / f"{name}.png"
        _chromium(chromium, tmp_path / "profile", "--window-size=1200,2400", "--hide-scrollbars",
                  f"--screenshot={shot}", page)
        assert shot.stat().st_size > 10_000, name
    keep = Path(tempfile.gettempdir()) / "report_shots"
    shutil.rmtree(keep, ignore_errors=True)
    shutil.copytree(shots, keep)
    shutil.copytree(out, keep / "report")


def page_tables(page: Path) -> list[str]:
    """The tables and chart specs a page shows: what a rerun must reproduce (timings live elsewhere)."""
    text = page.read_text()
    return re.findall(r"<table.*?</table>", text, flags=re.S) + re.findall(r"<svg.*?</svg>", text, flags=re.S)


def test_rerunning_the_recorded_command_reproduces_the_tables(report, tmp_path):
    import shlex
    import sys

    record = json.loads(report.report_json.read_text())
    argv = shlex.split(record["command"])
    assert argv[:2] == ["lerobot-inspect", "report"]
    argv[argv.index("--out") + 1] = str(tmp_path / "again")
    done = subprocess.run([sys.executable, "-m", "lerobot_inspect.cli", *argv[1:]], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    again = json.loads((tmp_path / "again" / "report.json").read_text())
    assert again["fingerprint"] == record["fingerprint"] and again["knobs"] == record["knobs"]
    for name in ("audit.html", "padding.html"):
        first, second = page_tables(report.out_dir / name), page_tables(tmp_path / "again" / name)
        assert first and first == second, f"{name}: the rerun shows different tables"
