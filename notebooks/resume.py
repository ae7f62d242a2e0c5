import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Resume")

with app.setup:
    import marimo as mo
    import pandas as pd

    from lerobot_inspect import charts
    from lerobot_inspect.loaders.streaming import open_stream
    from lerobot_inspect.probes.resume import resume_comparison
    from lerobot_inspect.report.knobs import notebook_knobs




@app.function
def step_status(pipeline: str, full: list, resumed: list, resume_step: int) -> pd.DataFrame:
    """One row per step of the resumed run: before resume / same / repeated / lost (vs uninterrupted)."""
    seen_before = set(full[:resume_step])
    remaining = set(full[resume_step:])
    rows = [{"pipeline": pipeline, "step": step, "index": index, "status": "before resume"}
            for step, index in enumerate(full[:resume_step])]
    delivered = set()
    for step, index in enumerate(resumed, start=resume_step):
        status = "repeated" if index in seen_before or index in delivered else "same"
        delivered.add(index)
        rows.append({"pipeline": pipeline, "step": step, "index": index, "status": status})
    lost = sorted(remaining - delivered)
    rows += [{"pipeline": pipeline, "step": full.index(index), "index": index, "status": "lost"} for index in lost]
    return pd.DataFrame(rows)


@app.cell
def _():
    mo.md("""
    # Resume

    **What this shows:** a stream stopped after `resume step` samples and resumed from
    `state_dict(samples_seen=...)`, compared with the uninterrupted stream, for our episode pool and
    the Hugging Face `datasets` pipeline. **How to read it:** green marks are the samples the
    uninterrupted run would have produced next; orange are samples trained twice, red samples never
    seen (the `datasets` pipeline drops its shuffle buffer on resume).
    """)
    return


@app.cell
def _():
    args = mo.cli_args()
    _knobs = notebook_knobs("resume", args)
    dataset_root = mo.ui.text(value=_knobs["dataset"], label="dataset root", full_width=True)
    seed = mo.ui.number(start=0, stop=2**31 - 1, value=_knobs["seed"], label="seed")
    pool_size = mo.ui.number(start=1, stop=4096, value=_knobs["pool_size"], label="pool size")
    resume_step = mo.ui.number(start=0, stop=10**9, value=_knobs["resume_step"], label="resume step (samples)")
    pipelines = mo.ui.multiselect(options=["pool", "datasets"], value=_knobs["pipeline"].split(","), label="pipelines")
    run = mo.ui.run_button(label="Run and resume")
    mo.vstack([dataset_root, mo.hstack([seed, pool_size, resume_step, pipelines], justify="start", wrap=True), run])
    return args, dataset_root, pipelines, pool_size, resume_step, run, seed


@app.cell
def _(args, dataset_root, pipelines, pool_size, resume_step, run, seed):
    unavailable = ""  # every probe this page needs ships with the package
    mo.stop(not (run.value or "dataset" in args), mo.md("Press **Run and resume**."))
    _options = dict(seed=int(seed.value), pool_size=int(pool_size.value), return_uint8=True)
    _k = int(resume_step.value)
    _tables, comparisons = [], {}
    with mo.status.progress_bar(total=len(pipelines.value), title="Streaming") as _bar:
        for _pipeline in pipelines.value:
            _full = [int(s["index"]) for s in open_stream(dataset_root.value, pipeline=_pipeline, **_options)]
            _stream = open_stream(dataset_root.value, pipeline=_pipeline, **_options)
            _stream.load_state_dict(_stream.state_dict(samples_seen=_k))
            _rest = [int(s["index"]) for s in _stream]
            comparisons[_pipeline] = resume_comparison(_full, _full[:_k], _rest)
            _tables.append(step_status(_pipeline, _full, _rest, _k))
            _bar.update()
    table = pd.concat(_tables, ignore_index=True)
    verdict = "; ".join(f"{name}: {'exact' if c.exact else f'{c.repeated} repeated, {c.lost} lost'}"
                        for name, c in comparisons.items())
    verdict_level = "ok" if comparisons.get("pool") is None or comparisons["pool"].exact else "error"
    mo.md(f"**Verdict:** {verdict}")
    return comparisons, table, unavailable, verdict, verdict_level


@app.cell
def _(resume_step, table):
    chart = charts.resume_overlap(table, resume_step=int(resume_step.value))
    chart
    return (chart,)


@app.cell
def _(comparisons):
    summary = pd.DataFrame([{"pipeline": name, **c.as_dict()} for name, c in comparisons.items()])
    summary
    return (summary,)


if __name__ == "__main__":
    app.run()
