"""Each notebook's knobs, declared once: the notebooks take their defaults from here and the report
turns the same table into its command-line options and each notebook's arguments.

A knob is one setting a person turns in a notebook (seed, pool size, ...). Its `flag` is the
notebook's command-line argument (`python notebooks/mixing.py -- --pool-size 8`, read with
`mo.cli_args()`) and the `lerobot-inspect report` option of the same name; `defaults` says which
notebooks read it and what each uses when nobody sets it.

    knobs = notebook_knobs("mixing", mo.cli_args())      # in a notebook: {"dataset": ..., "seed": 0, ...}
    knob_args("/data/ds", {"seed": 3})                    # for a notebook run: ["--dataset=/data/ds", "--seed=3"]
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lerobot_inspect._resources import tiny_root
from lerobot_inspect.errors import OptionError

__all__ = ["KNOBS", "NOTEBOOKS", "Knob", "knob_args", "notebook_knobs"]

NOTEBOOKS = ("audit", "padding", "frames", "mixing", "resume", "fetches")


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise OptionError(f"{value!r} is not a yes/no value; write true or false")


@dataclass(frozen=True)
class Knob:
    """One notebook setting: its name in `build_report(knobs=...)` and report.json, how to parse it
    from a command line, what it does, and the notebooks that read it with their defaults (None:
    the notebook decides from the data, e.g. the first episode)."""

    name: str
    parse: Callable[[Any], Any]
    help: str
    defaults: Mapping[str, Any]

    @property
    def flag(self) -> str:
        """Command-line spelling: `--pool-size` for pool_size."""
        return self.name.replace("_", "-")

    def describe_defaults(self) -> str:
        """Each notebook's default, for --help: 'mixing 4, resume 3'."""
        return ", ".join(f"{name} {'auto' if value is None else value}" for name, value in self.defaults.items())


KNOBS: tuple[Knob, ...] = (
    Knob("seed", int, "shuffle and sampling seed", {"frames": 0, "mixing": 0, "resume": 0, "fetches": 0}),
    Knob("pipeline", str, "streaming pipeline: pool or datasets (resume takes a comma-separated list)",
         {"frames": "pool", "mixing": "pool", "resume": "pool,datasets"}),
    # The mixing page shows the library's default loader (StreamingDataset pool_size=32, batch 32;
    # test_cli pins the two together) next to LeRobot's default reservoir (1000 frames); the resume
    # page only needs a pool, so a small one keeps it quick.
    Knob("pool_size", int, "streaming episode pool size", {"mixing": 32, "resume": 3}),
    Knob("batch_size", int, "batch size", {"mixing": 32}),
    Knob("workers", int, "DataLoader workers", {"mixing": 0}),
    Knob("world_size", int, "simulated ranks (the page shows rank 0)", {"mixing": 1}),
    Knob("batches", int, "batches to draw (auto: enough for about 8 turnovers of the episode pool, "
         "32 to 1,000 batches)", {"mixing": None}),
    Knob("buffer_size", int, "LeRobot reservoir buffer (frames) the mixing page compares with "
         "(LeRobot's default: 1000)", {"mixing": 1000}),
    Knob("resume_step", int, "samples before the stream is stopped and resumed", {"resume": 40}),
    Knob("resume_episodes", int, "episodes the resume page streams, evenly spaced (all when fewer)",
         {"resume": 200}),
    Knob("delta_timestamps", str, 'JSON, e.g. \'{"action": [0.0, 0.0333]}\' (auto: a typical policy window)',
         {"padding": None}),
    Knob("episode", int, "episode shown in per-episode views (auto: the first, or the first wrong one)",
         {"padding": None, "frames": None}),
    Knob("frames_episodes", int, "episodes the frames page checks, evenly spaced (all when fewer)",
         {"frames": 60}),
    Knob("fetch_episodes", int, "episodes the fetches page reads, evenly spaced (all when fewer)",
         {"fetches": 50}),
    Knob("shift_episode", int, "episode whose video timestamps the frames page shifts by one frame on a "
         "temporary copy, to show the check catching it (-1: none)", {"frames": -1}),
    Knob("decode", _boolean, "decode the first, middle and last frame of every episode and camera",
         {"audit": True}),
)
_BY_NAME = {knob.name: knob for knob in KNOBS}


def notebook_knobs(notebook: str, cli_args: Mapping[str, Any]) -> dict[str, Any]:
    """The knob values a notebook starts from: its command line (`mo.cli_args()`) over its defaults,
    plus `dataset` (the committed tiny fixture when none is given)."""
    if notebook not in NOTEBOOKS:
        raise OptionError(f"notebook={notebook!r}; choose among {NOTEBOOKS}")
    values: dict[str, Any] = {"dataset": str(cli_args.get("dataset") or tiny_root())}
    for knob in KNOBS:
        if notebook in knob.defaults:
            raw = cli_args.get(knob.flag, knob.defaults[notebook])
            values[knob.name] = None if raw is None or raw == "" else knob.parse(raw)
    return values


def knob_args(root: str, knobs: Mapping[str, Any]) -> list[str]:
    """Notebook command-line arguments for a dataset root and knobs (`--dataset=ROOT --seed=3`)."""
    unknown = sorted(set(knobs) - set(_BY_NAME))
    if unknown:
        raise OptionError(f"unknown report knob(s) {unknown}; choose among {sorted(_BY_NAME)}")
    # `--flag=value`: marimo's argument parser would read a separate "-1" as a flag of its own.
    args = [f"--dataset={root}"]
    for name, value in knobs.items():
        if value is not None:
            args.append(f"--{_BY_NAME[name].flag}={knob_text(value)}")
    return args


def knob_text(value: Any) -> str:
    """A knob value as its command line writes it (JSON for dicts and lists)."""
    return json.dumps(value) if isinstance(value, dict | list) else str(value)
