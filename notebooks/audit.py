import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Dataset audit")

with app.setup:

    import html

    import marimo as mo
    import pandas as pd

    from lerobot_inspect import charts
    from lerobot_inspect.probes.audit import audit_dataset, decode_check, format_report
    from lerobot_inspect.report.knobs import notebook_knobs



@app.cell
def _():
    mo.md("""
    # Dataset audit

    **What this shows:** what the dataset holds (episodes, frames, cameras, files) and everything
    wrong with it: metadata checks, then the first, middle and last frame of every episode and
    camera decoded through the loader. **How to read it:** errors first; a red cell in the decode
    grid names an episode and camera whose video spans disagree with the MP4.
    """)
    return


@app.cell
def _():
    args = mo.cli_args()
    _knobs = notebook_knobs("audit", args)
    dataset_root = mo.ui.text(value=_knobs["dataset"], label="dataset root", full_width=True)
    decode = mo.ui.checkbox(value=_knobs["decode"], label="decode first/middle/last frames")
    run = mo.ui.run_button(label="Run the audit")
    mo.vstack([dataset_root, mo.hstack([decode, run], justify="start")])
    return args, dataset_root, decode, run


@app.cell
def _(args, dataset_root, run):
    mo.stop(not (run.value or "dataset" in args), mo.md("Press **Run the audit**."))
    report = audit_dataset(dataset_root.value)
    mo.Html(f"<pre>{html.escape(format_report(report))}</pre>")  # dataset strings, shown as text
    return (report,)


@app.cell
def _(decode, report):
    mo.stop(not decode.value or not report.summary, mo.md("Decode check skipped."))
    _episodes = int(report.summary["episodes"])
    with mo.status.progress_bar(total=_episodes, title="Decoding frames") as _bar:
        decoded = decode_check(report.root, progress=lambda _episode: _bar.update())
    return (decoded,)


@app.cell
def _(decoded, report):
    findings = pd.DataFrame([f.to_dict() for f in report.findings + decoded.findings],
                            columns=["severity", "code", "message", "fix", "file", "episode", "camera"])
    counts = findings["severity"].value_counts()
    verdict = f"{int(counts.get('error', 0))} errors, {int(counts.get('warning', 0))} warnings"
    verdict_level = "error" if counts.get("error", 0) else "warning" if counts.get("warning", 0) else "ok"
    mo.md(f"**Verdict:** {verdict}")
    return findings, verdict, verdict_level


@app.cell
def _(decoded):
    chart = charts.decode_grid(decoded.table())
    chart
    return (chart,)


@app.cell
def _(findings):
    table = findings
    table
    return (table,)


if __name__ == "__main__":
    app.run()
