"""Offline HTML report: run the notebooks headless and render what they show into our own pages.

`marimo export html` loads marimo's frontend from a CDN, so its page is blank offline. A report is
evidence a person attaches to a bug, so it must open anywhere. The work is split by role:

    knobs       each notebook's settings, declared once: the notebooks' defaults, the report's options
    run         one notebook in a child process (`app.run()` with the knobs as its command line)
    render      cell outputs -> HTML (charts as SVG via vl-convert, tables, inline PNG), the pages
    provenance  package and FFmpeg versions, the dataset's fingerprint
    build       the driver: every notebook -> <name>.html, index.html, report.json

`report.json` records what a rerun needs: the command, versions, the dataset fingerprint, every
knob, the start time and the duration. A notebook that fails leaves a partial report that says
which and why. The `report` and `demo` subcommands live with the other subcommands in `cli`.
"""

from lerobot_inspect.report.build import NotebookPage, ReportResult, build_report, check_notebook_dir
from lerobot_inspect.report.knobs import KNOBS, NOTEBOOKS, Knob, knob_args, notebook_knobs
from lerobot_inspect.report.provenance import dataset_fingerprint, package_versions
from lerobot_inspect.report.render import render_outputs

__all__ = [
    "KNOBS",
    "NOTEBOOKS",
    "Knob",
    "NotebookPage",
    "ReportResult",
    "build_report",
    "check_notebook_dir",
    "dataset_fingerprint",
    "knob_args",
    "notebook_knobs",
    "package_versions",
    "render_outputs",
]
