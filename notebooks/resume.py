import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Resume")

with app.setup:
    import marimo as mo
    import pandas as pd

    from lerobot_inspect import charts
    from lerobot_inspect.format import DatasetMeta
    from lerobot_inspect.loaders.streaming import open_stream
    from lerobot_inspect.probes.frames import sample_episodes
    from lerobot_inspect.probes.resume import resume_comparison
    from lerobot_inspect.report.knobs import notebook_knobs
    from lerobot_inspect.report.progress import progress_bar




@app.function
def step_status(pipeline: str, full: list, resumed: list, resume_step: int) -> pd.DataFrame:
    """One row per step of the resumed run: before resume / same / repeated / lost (vs uninterrupted).
    A lost sample sits at the step where the uninterrupted run yields it."""
    seen_before = set(full[:resume_step])
    step_of = {index: step for step, index in enumerate(full)}
    steps = list(range(resume_step)) + list(range(resume_step, resume_step + len(resumed)))
    indices = list(full[:resume_step]) + list(resumed)
    statuses = ["before resume"] * resume_step
    delivered = set()
    for index in resumed:
        statuses.append("repeated" if index in seen_before or index in delivered else "same")
        delivered.add(index)
    lost = sorted(set(full[resume_step:]) - delivered)
    steps += [step_of[index] for index in lost]
    indices += lost
    statuses += ["lost"] * len(lost)
    return pd.DataFrame({"pipeline": pipeline, "step": steps, "index": indices, "status": statuses})


@app.cell
def _():
    mo.md("""
    # Resume

    **What this shows:** a stream stopped after `resume step` samples and resumed from
    `state_dict(samples_seen=...)`, compared with the uninterrupted stream, for our episode pool and
    the Hugging Face `datasets` pipeline. **How to read it:** green marks are the samples the
    uninterrupted run would have produced next; orange are samples trained twice, red samples never
    seen (the `datasets` pipeline drops its shuffle buffer on resume). The first chart draws the
    steps around the checkpoint one tick each; the second bins the whole run (every sample of one
    epoch, read without decoding video: the order does not depend on pixels). On large datasets
    the stream runs over an even spread of `resume episodes` (default 200): an epoch of 10,000
    episodes streamed four times would take most of an hour, and the resume logic is the same.
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
    resume_episodes = mo.ui.number(start=1, stop=10**6, value=_knobs["resume_episodes"], label="episodes streamed")
    pipelines = mo.ui.multiselect(options=["pool", "datasets"], value=_knobs["pipeline"].split(","), label="pipelines")
    run = mo.ui.run_button(label="Run and resume")
    mo.vstack([dataset_root, mo.hstack([seed, pool_size, resume_step, resume_episodes, pipelines], justify="start", wrap=True), run])
    return args, dataset_root, pipelines, pool_size, resume_episodes, resume_step, run, seed


@app.cell
def _(args, dataset_root, pipelines, pool_size, resume_episodes, resume_step, run, seed):
    unavailable = ""  # every probe this page needs ships with the package
    mo.stop(not (run.value or "dataset" in args), mo.md("Press **Run and resume**."))
    # Indices only: the order is the same without decoding video, and an epoch of a 10k-episode
    # dataset decoded four times would take most of an hour.
    _meta = DatasetMeta.open(dataset_root.value)
    _streamed = sample_episodes(range(_meta.num_episodes), int(resume_episodes.value))
    # `load_dataset(...).reshard()` opens one shard per episode of the WHOLE dataset before its first
    # sample, whatever the episode selection (over 5 minutes at 10,000 episodes on 2 cores): on large
    # datasets the default leaves the datasets pipeline out and says so; asking for it runs it.
    _DATASETS_MAX = 1000
    _run_pipelines = list(pipelines.value)
    _left_out = ""
    if ("pipeline" not in args and "datasets" in _run_pipelines and len(_run_pipelines) > 1
            and _meta.num_episodes > _DATASETS_MAX):
        _run_pipelines.remove("datasets")
        _left_out = (f"the `datasets` pipeline is left out by default above {_DATASETS_MAX:,} episodes "
                    f"(its reshard opens all {_meta.num_episodes:,} episodes before the first sample, minutes here); "
                    "pass `--pipeline pool,datasets` to run it")
    _options = dict(seed=int(seed.value), pool_size=int(pool_size.value), decode_video=False, episodes=_streamed)
    _k = int(resume_step.value)
    _epoch = int(_meta.lengths[_streamed].sum())
    _tables, comparisons = [], {}
    with progress_bar(total=2 * _epoch * len(_run_pipelines),
                      title=f"Streaming {_epoch} samples per run, uninterrupted and resumed, per pipeline") as _bar:
        for _pipeline in _run_pipelines:
            _full = []
            for _sample in open_stream(dataset_root.value, pipeline=_pipeline, **_options):
                _full.append(int(_sample["index"]))
                _bar.update()
            _stream = open_stream(dataset_root.value, pipeline=_pipeline, **_options)
            _stream.load_state_dict(_stream.state_dict(samples_seen=_k))
            _rest = []
            for _sample in _stream:
                _rest.append(int(_sample["index"]))
                _bar.update()
            _bar.update(increment=max(0, 2 * _epoch - len(_full) - len(_rest)))
            comparisons[_pipeline] = resume_comparison(_full, _full[:_k], _rest)
            _tables.append(step_status(_pipeline, _full, _rest, _k))
    table = pd.concat(_tables, ignore_index=True)
    verdict = "; ".join(f"{name}: {'exact' if c.exact else f'{c.repeated} repeated, {c.lost} lost'}"
                        for name, c in comparisons.items()) + (f"; {_left_out}".replace("`", "") if _left_out else "")
    verdict_level = "ok" if comparisons.get("pool") is None or comparisons["pool"].exact else "error"
    _over = (f"{len(_streamed)} of {_meta.num_episodes} episodes, evenly spaced" if len(_streamed) < _meta.num_episodes
             else f"all {_meta.num_episodes} episodes")
    mo.md(f"**Verdict:** {verdict}.  \nOne epoch over {_over}: {len(_full)} samples per pipeline, stopped after "
          f"{_k} and resumed from `state_dict(samples_seen={_k})`.")
    return comparisons, table, unavailable, verdict, verdict_level


@app.cell
def _(resume_step, table):
    chart = charts.resume_overlap(table, resume_step=int(resume_step.value))
    chart
    return (chart,)


@app.cell
def _(table):
    overview_chart = charts.resume_overview(table)
    overview_chart
    return (overview_chart,)


@app.cell
def _(comparisons):
    summary = pd.DataFrame([{"pipeline": name, **c.as_dict()} for name, c in comparisons.items()])
    summary
    return (summary,)


if __name__ == "__main__":
    app.run()
