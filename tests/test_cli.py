"""The `lerobot-inspect` command line: every subcommand documents itself (defaults, examples one per
line), and neither `--help` nor a metadata-only `audit` imports torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SUBCOMMANDS = [["audit"], ["index"], ["index", "build"], ["index", "show"], ["report"], ["demo"], ["bench"]]


def _help(*command: str) -> str:
    done = subprocess.run([sys.executable, "-m", "lerobot_inspect.cli", *command, "--help"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("command", SUBCOMMANDS, ids=[" ".join(c) for c in SUBCOMMANDS])
def test_every_subcommand_has_help_with_examples_one_per_line(command):
    text = _help(*command)
    assert "examples:\n" in text, text
    examples = text.split("examples:\n", 1)[1].strip().splitlines()
    assert len(examples) >= 2 and all(line.strip() for line in examples), text
    for line in examples:
        runs = line.strip().split("#")[0]
        assert runs.count("lerobot-inspect ") + runs.count("python -m data_fixtures") == 1, \
            f"one example per line: {line!r}"


def test_help_shows_defaults():
    assert "(default: 8)" in _help("index", "build")  # --threads
    assert "(default: 2000)" in _help("bench")  # --samples
    report = _help("report")
    assert "mixing 32, resume 3" in report, "each notebook's own pool_size default is listed"
    assert "(default: 900" in report  # --timeout


def test_the_mixing_page_defaults_to_the_library_default_loader():
    from lerobot_inspect.loaders.streaming import DEFAULT_POOL_SIZE
    from lerobot_inspect.report.knobs import KNOBS

    knobs = {knob.name: knob.defaults for knob in KNOBS}
    assert knobs["pool_size"]["mixing"] == DEFAULT_POOL_SIZE and knobs["batch_size"]["mixing"] == 32


def test_report_options_come_from_the_notebooks_knob_table():
    from lerobot_inspect.cli import build_parser
    from lerobot_inspect.report.knobs import KNOBS

    args = build_parser().parse_args(["report", "ROOT", "--out", "x", "--pool-size", "5", "--decode", "false"])
    assert args.pool_size == 5 and args.decode is False and args.seed == 0
    assert {knob.name for knob in KNOBS} <= set(vars(args))


def _imports_after(code: str) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter and report whether torch got imported."""
    script = f"import sys\n{code}\nprint('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO)


def test_help_does_not_import_torch():
    done = _imports_after(
        "import contextlib, io\nfrom lerobot_inspect.cli import main\n"
        "for argv in (['--help'], ['report', '--help'], ['bench', '--help']):\n"
        "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "        main(argv)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "NO-TORCH"


def test_metadata_only_audit_does_not_import_torch(tiny_root):
    done = _imports_after(
        f"import contextlib, io\nfrom lerobot_inspect.cli import main\n"
        f"with contextlib.redirect_stdout(io.StringIO()):\n    code = main(['audit', {str(tiny_root)!r}])\n"
        "assert code == 0, code")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "NO-TORCH"
