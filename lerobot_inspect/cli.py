"""`lerobot-inspect`: audit, fixture, index, report, demo and bench subcommands.

Each subcommand lives in a small `_add_<name>` function that declares its arguments (with an
example in the help) and points `func` at its handler; handlers import heavy modules lazily so
`--help` stays instant.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from lerobot_inspect.errors import LeRobotInspectError

__all__ = ["main"]


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


def _add_audit(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "audit", formatter_class=_Formatter,
        help="summarise a dataset and list what is wrong with it",
        description="Print a summary (episodes, frames, cameras with codec/resolution/GOP, files) and "
                    "every finding; exit 1 when any finding is an error.\n\n"
                    "example:\n  lerobot-inspect audit data_fixtures/tiny\n"
                    "  lerobot-inspect audit data_fixtures/tiny --decode\n"
                    "  lerobot-inspect audit http://127.0.0.1:8000/my_dataset --json",
    )
    parser.add_argument("root", help="dataset root: a local path or any fsspec URL")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--decode", action="store_true",
                        help="also decode the first, middle and last frame of every episode and camera and check "
                             "their timestamps and that neighbouring episodes do not share frames")
    parser.set_defaults(func=_run_audit)


def _run_audit(args: argparse.Namespace) -> int:
    from lerobot_inspect.probes.audit import audit_dataset, format_report

    report = audit_dataset(args.root, decode=args.decode)
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
    return 0 if report.ok else 1


def _add_fixture(subparsers: argparse._SubParsersAction) -> None:
    from data_fixtures import add_fixture_parser

    add_fixture_parser(subparsers)


def _add_bench(subparsers: argparse._SubParsersAction) -> None:
    from lerobot_inspect.bench import CONFIGS

    parser = subparsers.add_parser(
        "bench", formatter_class=_Formatter,
        help="measure the loaders side by side on one dataset and write JSON",
        description="Run each loader configuration in its own process, one after the other, on the same "
                    "data, and report samples/s, decoded frames/s, ratio to the decode ceiling, bytes over "
                    "the byte floor, time to first batch, peak RSS and shuffle randomness.\n\n"
                    "configurations: " + ", ".join(CONFIGS) + "\n\n"
                    "example:\n  lerobot-inspect fixture /tmp/ds200 --episodes 200 --cameras 2\n"
                    "  lerobot-inspect bench /tmp/ds200 --json reports/bench.json --samples 2000\n"
                    "  lerobot-inspect bench /tmp/ds1k --scale /tmp/ds10k --json reports/scale.json",
    )
    parser.add_argument("root", help="dataset root: a local path or any fsspec URL")
    parser.add_argument("--json", dest="json_out", default=None, help="write the results to this JSON file")
    parser.add_argument("--configs", default=None, help="comma-separated subset of configurations")
    parser.add_argument("--samples", type=int, default=2000, help="samples per configuration")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", metavar="LARGE_ROOT", default=None,
                        help="cost growth instead: run the streaming configurations on ROOT and on LARGE_ROOT "
                             "(e.g. 1,000 vs 10,000 episodes) and report large/small ratios of RSS and samples/s")
    parser.set_defaults(func=_run_bench)


def _run_bench(args: argparse.Namespace) -> int:
    from lerobot_inspect.bench import SCALE_CONFIGS, run_bench, run_scale, write_json

    configs = args.configs.split(",") if args.configs else None
    progress = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    if args.scale:
        report = run_scale(args.root, args.scale, configs=configs or SCALE_CONFIGS, samples=args.samples,
                           batch_size=args.batch_size, seed=args.seed, progress=progress)
        results = {**report["small"]["configs"], **report["large"]["configs"]}
    else:
        report = run_bench(args.root, configs=configs, samples=args.samples, batch_size=args.batch_size,
                           seed=args.seed, progress=progress)
        results = report["configs"]
    text = json.dumps(report, indent=2)
    if args.json_out:
        write_json(report, args.json_out)
        print(f"wrote {args.json_out}", file=sys.stderr)
    else:
        print(text)
    failed = [name for name, result in results.items() if "error" in result]
    return 1 if failed else 0


def _add_index(subparsers: argparse._SubParsersAction) -> None:
    from lerobot_inspect.index_cli import add_index_parser

    add_index_parser(subparsers)


def _add_report(subparsers: argparse._SubParsersAction) -> None:
    from lerobot_inspect.report import add_demo_parser, add_report_parser

    add_report_parser(subparsers)
    add_demo_parser(subparsers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lerobot-inspect", formatter_class=_Formatter,
        description="Load, audit and debug LeRobot v3 datasets.\n\n"
                    "example:\n  lerobot-inspect audit data_fixtures/tiny",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_audit, _add_fixture, _add_index, _add_report, _add_bench):
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except LeRobotInspectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
