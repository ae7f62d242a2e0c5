"""`lerobot-inspect`: every subcommand's arguments, defaults and examples, in one place.

Each `_add_<name>` declares one subcommand (its `--help` shows the defaults and examples, one per
line) and points it at a handler in `cli.commands`. The handlers import what they need when they
run, so `--help` and a metadata-only `audit` never import torch.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import textwrap
from collections.abc import Sequence
from pathlib import Path

from lerobot_inspect.cli import commands

__all__ = ["build_parser", "main"]


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the examples' line breaks and shows defaults, except where there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def _paragraphs(text: str, width: int = 100) -> str:
    """Wrap prose paragraphs (the formatter keeps line breaks as written); indented blocks stay as they are."""
    return "\n\n".join(block if block.startswith("  ") or "\n  " in block else textwrap.fill(block, width)
                       for block in text.split("\n\n"))


def _subcommand(subparsers: argparse._SubParsersAction, name: str, *, help: str, description: str,
                examples: Sequence[str]) -> argparse.ArgumentParser:
    return subparsers.add_parser(name, help=help, description=_paragraphs(description),
                                 epilog=_examples(*examples), formatter_class=_Formatter)


def _add_audit(subparsers: argparse._SubParsersAction) -> None:
    parser = _subcommand(
        subparsers, "audit", help="summarise a dataset and list what is wrong with it",
        description="Print a summary (episodes, frames, cameras with codec/resolution/GOP, files) and every "
                    "finding; exit 1 when any finding is an error. Without --decode only metadata and MP4 "
                    "headers are read.",
        examples=["lerobot-inspect audit data_fixtures/tiny",
                  "lerobot-inspect audit data_fixtures/tiny --decode",
                  "lerobot-inspect audit data_fixtures/tiny --decode full --json",
                  "lerobot-inspect audit http://127.0.0.1:8000/my_dataset --json"])
    parser.add_argument("root", metavar="ROOT", help="dataset root: a local path or any fsspec URL")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--decode", nargs="?", const="sampled", default=None, choices=("sampled", "full"),
                        help="also read the video. 'sampled' (the default when --decode is given alone): the "
                             "first, middle and last frame of every episode and camera through the loader "
                             "(timestamps, shifted spans, shared frames) plus a short sequential run per "
                             "episode for frozen frames. 'full': every frame of every MP4 once, in order, near "
                             "the decode ceiling (frame counts, first-frame times, frozen spans); decoded "
                             "frames/s are reported")
    parser.set_defaults(func=commands.run_audit)


def _add_index(subparsers: argparse._SubParsersAction) -> None:
    parser = _subcommand(
        subparsers, "index", help="build or show the MP4 byte index that lets remote readers fetch one episode's bytes",
        description="The byte index records where each (episode, camera) lives inside its MP4, so a remote "
                    "reader fetches the header and that episode's bytes instead of the whole file.",
        examples=["lerobot-inspect index build /data/ds --threads 16",
                  "lerobot-inspect index build http://127.0.0.1:8000/ds --out /tmp/ds_index",
                  "lerobot-inspect index show /data/ds"])
    commands_ = parser.add_subparsers(dest="index_command", required=True, metavar="{build,show}")
    build = _subcommand(
        commands_, "build", help="parse every MP4 header and write meta/byte_index/",
        description="Parse every MP4 header of ROOT through range reads and write ROOT/meta/byte_index/ "
                    "(files, episodes, frames .parquet). Interrupted builds resume where they stopped.",
        examples=["lerobot-inspect index build data_fixtures/tiny",
                  "lerobot-inspect index build /data/ds --threads 16 --no-progress",
                  "lerobot-inspect index build http://127.0.0.1:8000/ds --out /tmp/ds_index"])
    build.add_argument("root", metavar="ROOT", help="dataset root: a local path or any fsspec URL")
    build.add_argument("--threads", type=int, default=8, help="files parsed in parallel")
    build.add_argument("--out", default=None,
                       help="write the index here instead of ROOT/meta/byte_index (for read-only roots such as http)")
    build.add_argument("--no-progress", action="store_true", help="no progress bar")
    build.set_defaults(func=commands.run_index_build)
    show = _subcommand(
        commands_, "show", help="summarise a saved byte index: files, episodes, bytes",
        description="Print, per video file, its size, episodes, header bytes and the episodes' spans "
                    "against the byte floor, then totals.",
        examples=["lerobot-inspect index show data_fixtures/tiny",
                  "lerobot-inspect index show http://127.0.0.1:8000/ds --index /tmp/ds_index"])
    show.add_argument("root", metavar="ROOT", help="dataset root: a local path or any fsspec URL")
    show.add_argument("--index", default=None, help="read the index from this directory instead")
    show.set_defaults(func=commands.run_index_show)


def _add_knob_arguments(parser: argparse.ArgumentParser) -> None:
    """The notebooks to run and their knobs, from the one knob table the notebooks read too."""
    from lerobot_inspect.report.knobs import KNOBS, NOTEBOOKS

    parser.add_argument("--notebooks", default=",".join(NOTEBOOKS), help="comma-separated subset of the notebooks")
    knobs = parser.add_argument_group("notebook knobs", "unset knobs take each notebook's own default (listed)")
    for knob in KNOBS:
        # seed is always recorded in report.json, so it has one default for every notebook
        default = 0 if knob.name == "seed" else None
        knobs.add_argument(f"--{knob.flag}", dest=knob.name, type=knob.parse, default=default,
                           help=f"{knob.help} [{knob.describe_defaults()}]")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per notebook")
    parser.add_argument("--notebook-dir", default=None,
                        help="folder holding the notebooks (default: the notebooks the package carries)")


def _add_report(subparsers: argparse._SubParsersAction) -> None:
    parser = _subcommand(
        subparsers, "report", help="run the notebooks on a dataset and write an offline HTML report",
        description="Run each notebook headless and write DIR/index.html, one self-contained page per notebook "
                    "and DIR/report.json (command, versions, dataset fingerprint, knobs). Exit 1 when a notebook "
                    "failed; the report still says which and why.",
        examples=["lerobot-inspect report data_fixtures/tiny --out /tmp/report",
                  "lerobot-inspect report /data/ds --out /tmp/report --notebooks audit,padding",
                  "lerobot-inspect report /data/ds --out /tmp/report --seed 3 --pool-size 16 --batch-size 32"])
    parser.add_argument("root", metavar="ROOT", help="dataset root: a local path or any fsspec URL")
    parser.add_argument("--out", required=True, help="output directory")
    _add_knob_arguments(parser)
    parser.set_defaults(func=commands.run_report)


def _add_demo(subparsers: argparse._SubParsersAction) -> None:
    parser = _subcommand(
        subparsers, "demo", help="write the report for the bundled tiny fixture and print where index.html is",
        description="Run `report` on the tiny fixture the package carries. The frames page shifts episode 0's "
                    "video timestamps by one frame on a temporary copy to show the check catching it "
                    "(--shift-episode -1: no shift).",
        examples=["lerobot-inspect demo",
                  "lerobot-inspect demo --out /tmp/lerobot-inspect-demo",
                  "lerobot-inspect demo --notebooks audit,frames --shift-episode 2"])
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "lerobot-inspect-demo"),
                        help="output directory")
    _add_knob_arguments(parser)
    parser.set_defaults(func=commands.run_demo)


def _add_bench(subparsers: argparse._SubParsersAction) -> None:
    from lerobot_inspect.bench.configs import CONFIGS, SCALE_CONFIGS

    parser = _subcommand(
        subparsers, "bench", help="measure the loaders side by side on one dataset and write JSON",
        description="Run each loader configuration in its own process, one after the other, on the same data, "
                    "and report samples/s, decoded frames/s, ratio to the decode ceiling, bytes over the byte "
                    "floor, time to first batch, peak RSS and shuffle randomness.\n\nconfigurations:\n"
                    + "\n".join(f"  {name:28} {config.description}" for name, config in CONFIGS.items()),
        examples=["python -m data_fixtures /tmp/ds200 --episodes 200 --cameras 2   # a dataset to bench (repo)",
                  "lerobot-inspect bench /tmp/ds200 --json reports/bench.json --samples 2000",
                  "lerobot-inspect bench /tmp/ds200 --configs decode_ceiling,stream_pool_w0",
                  "lerobot-inspect bench /tmp/ds1k --scale /tmp/ds10k --json reports/scale.json"])
    parser.add_argument("root", metavar="ROOT", help="dataset root: a local path or any fsspec URL")
    parser.add_argument("--json", dest="json_out", default=None,
                        help="write the results to this JSON file (default: print them)")
    parser.add_argument("--configs", default=None, help="comma-separated subset of configurations (default: all)")
    parser.add_argument("--samples", type=int, default=2000, help="samples per configuration")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size")
    parser.add_argument("--seed", type=int, default=0, help="shuffle seed")
    parser.add_argument("--scale", metavar="LARGE_ROOT", default=None,
                        help="cost growth instead: run the streaming configurations "
                             f"({', '.join(SCALE_CONFIGS)}) on ROOT and on LARGE_ROOT (e.g. 1,000 vs 10,000 "
                             "episodes) and report large/small ratios of RSS and samples/s")
    parser.set_defaults(func=commands.run_bench)


SUBCOMMANDS = (_add_audit, _add_index, _add_report, _add_demo, _add_bench)


def build_parser() -> argparse.ArgumentParser:
    """The `lerobot-inspect` parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="lerobot-inspect", formatter_class=_Formatter,
        description=_paragraphs("Load, audit and debug LeRobot v3 datasets. `lerobot-inspect COMMAND --help` "
                                "shows each command's options, defaults and examples."),
        epilog=_examples("lerobot-inspect audit data_fixtures/tiny",
                         "lerobot-inspect index build ROOT",
                         "lerobot-inspect report ROOT --out reports/x",
                         "lerobot-inspect demo --out reports/demo",
                         "lerobot-inspect bench ROOT --json reports/bench.json"),
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from lerobot_inspect.errors import LeRobotInspectError

    try:
        return int(args.func(args) or 0)
    except LeRobotInspectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
