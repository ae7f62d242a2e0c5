import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Dataset audit")

with app.setup:

    import html

    import marimo as mo
    import pandas as pd

    from lerobot_inspect import charts
    from lerobot_inspect.probes.audit import AuditReport, DecodeCheck, audit_dataset, decode_check, format_report
    from lerobot_inspect.report.knobs import notebook_knobs
    from lerobot_inspect.report.progress import progress_bar


@app.function
def summary_text(report) -> str:
    """What the dataset holds, without the findings (the page lists those as tables, problems first)."""
    text = format_report(AuditReport(report.root, report.summary, [], report.decode))
    return "\n".join(line for line in text.splitlines() if not line.startswith(("findings ", "verdict ")))


@app.function
def problem_summary(findings: pd.DataFrame) -> pd.DataFrame:
    """One row per (severity, code): how many findings, which episodes (first 12), one message and its
    fix. Errors first, then warnings, then info; most findings first within a severity."""
    columns = ["severity", "code", "findings", "episodes", "example", "fix"]
    if findings.empty:
        return pd.DataFrame(columns=columns)
    rank = {"error": 0, "warning": 1, "info": 2}
    rows = []
    for (severity, code), group in findings.groupby(["severity", "code"], sort=False):
        episodes = sorted({int(e) for e in group["episode"].dropna()})
        shown = ", ".join(map(str, episodes[:12])) + (f" ... ({len(episodes)} episodes)" if len(episodes) > 12 else "")
        rows.append({"severity": severity, "code": code, "findings": len(group), "episodes": shown or "-",
                     "example": group["message"].iloc[0], "fix": group["fix"].iloc[0]})
    table = pd.DataFrame(rows, columns=columns)
    table["_rank"] = table["severity"].map(rank).fillna(3)
    return table.sort_values(["_rank", "findings"], ascending=[True, False]).drop(columns="_rank")



@app.cell
def _():
    mo.md("""
    # Dataset audit

    **What this shows:** what the dataset holds (episodes, frames, cameras, files) and everything
    wrong with it: metadata checks, then the first, middle and last frame of every episode and
    camera decoded through the loader. **How to read it:** problems first, one row per kind of
    finding with the episodes it touches and the fix; then how many episodes are healthy; a red
    cell in the decode grid names an episode (or, on large datasets, a range of episodes) and
    camera whose video spans disagree with the MP4.
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
    with mo.status.spinner(title="Reading metadata and MP4 headers", remove_on_exit=True):
        report = audit_dataset(dataset_root.value)
    # What the dataset holds; its findings are the tables below. Dataset strings, shown as text.
    mo.Html(f"<pre>{html.escape(summary_text(report))}</pre>")
    return (report,)


@app.function
def full_pass(root: str, summary: dict):
    """Every frame of every MP4 decoded once, in order (the audit's `decode_pass(mode="full")`): the
    same timestamp, frame-count and shared-frame checks as the loader check at the sequential decode
    ceiling, instead of a random access per checked frame (minutes on 10,000 episodes). Rows for the
    grid: an (episode, camera) is failed when an error finding names it."""
    from lerobot_inspect.format import DatasetMeta
    from lerobot_inspect.probes.decode_check import decode_pass

    meta = DatasetMeta.open(root)
    files = sum(int(camera.get("files") or 0) for camera in summary["cameras"] if camera["kind"] == "video")
    with progress_bar(total=files, title=f"Decoding every frame of {files} MP4 file(s) in order") as bar:
        result = decode_pass(meta, mode="full", progress=lambda _path: bar.update())
    failed = {(f.episode, f.camera) for f in result.findings if f.severity == "error" and f.episode is not None}
    failed_everywhere = {f.episode for f in result.findings
                         if f.severity == "error" and f.episode is not None and f.camera is None}
    rows = [{"episode_index": episode, "camera": camera,
             "ok": (episode, camera) not in failed and episode not in failed_everywhere}
            for episode in range(meta.num_episodes) for camera in meta.video_keys]
    return DecodeCheck(rows, result.findings)


@app.cell
def _(decode, report):
    # Without the decode pass the verdict and the tables come from metadata alone. Up to
    # LOADER_CHECK_EPISODES episodes the loader itself decodes first/middle/last frames; beyond, the
    # sequential full pass checks the same at a fraction of the time.
    LOADER_CHECK_EPISODES = 500
    decode_how = "skipped"
    if decode.value and report.summary:
        _episodes = int(report.summary["episodes"])
        if _episodes <= LOADER_CHECK_EPISODES:
            decode_how = "first, middle and last frame of every episode and camera, through the loader"
            with progress_bar(total=_episodes, title="Decoding first/middle/last frames") as _bar:
                decoded = decode_check(report.root, progress=lambda _episode: _bar.update())
        else:
            decode_how = (f"every frame of every MP4 in order (more than {LOADER_CHECK_EPISODES} episodes: the "
                          "sequential pass makes the loader check's timestamp, frame-count and shared-frame checks)")
            decoded = full_pass(report.root, report.summary)
    else:
        decoded = DecodeCheck([], [])
    return decode_how, decoded


@app.cell
def _(decode_how, decoded, report):
    _all = report.findings + decoded.findings
    findings = pd.DataFrame([f.to_dict() for f in _all],
                            columns=["severity", "code", "message", "fix", "file", "episode", "camera"])
    _rank = findings["severity"].map({"error": 0, "warning": 1, "info": 2}).fillna(3)
    findings = findings.assign(_rank=_rank).sort_values(["_rank", "episode"], kind="stable").drop(columns="_rank")
    counts = findings["severity"].value_counts()
    _rows = decoded.table()
    _cells = _rows.groupby(["episode_index", "camera"])["ok"].all() if len(_rows) else pd.Series(dtype=bool)
    _episodes = int(report.summary.get("episodes", 0))
    _bad_episodes = {int(e) for e in findings.loc[findings["severity"] == "error", "episode"].dropna()}
    _bad_episodes |= {int(e) for (e, _camera), ok in _cells.items() if not ok}
    healthy = _episodes - len(_bad_episodes)
    verdict = (f"{int(counts.get('error', 0))} errors, {int(counts.get('warning', 0))} warnings; "
               f"{healthy} of {_episodes} episodes have no error"
               + (f" and decoded cleanly on every camera ({int(_cells.sum())} of {len(_cells)} episode-cameras)"
                  if len(_cells) else ""))
    verdict_level = "error" if counts.get("error", 0) else "warning" if counts.get("warning", 0) else "ok"
    mo.md(f"**Verdict:** {verdict}\n\nDecode check: {decode_how}.\n\n" + ("**Problems by kind**, errors first (one row per finding code; "
                                            "every finding is listed at the bottom):" if len(findings) else ""))
    return findings, verdict, verdict_level


@app.cell
def _(findings):
    problems = problem_summary(findings)
    problems if len(problems) else mo.md("No findings: nothing to fix.")
    return (problems,)


@app.cell
def _(decoded):
    mo.stop(not decoded.rows, mo.md("Decode check skipped."))
    chart = charts.decode_grid(decoded.table())
    chart
    return (chart,)


@app.cell
def _(findings):
    table = findings
    table if len(table) else None
    return (table,)


if __name__ == "__main__":
    app.run()
