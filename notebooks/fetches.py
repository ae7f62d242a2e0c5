import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Byte-range fetches")

with app.setup:
    import marimo as mo

    from lerobot_inspect import charts
    from lerobot_inspect.probes.fetches import fetch_table
    from lerobot_inspect.report.knobs import notebook_knobs




@app.cell
def _():
    mo.md("""
    # Byte-range fetches

    **What this shows:** every byte range the loader reads to decode a sample of frames, and per
    episode the bytes read against the floor (the bytes of the samples its decoder needs, plus the
    MP4 header the first time the run touches that file).
    **How to read it:** bars near their tick mean the loader reads only what it needs; bars far
    above it mean whole files or neighbours' bytes are fetched (costly over the network).
    """)
    return


@app.cell
def _():
    args = mo.cli_args()
    _knobs = notebook_knobs("fetches", args)
    dataset_root = mo.ui.text(value=_knobs["dataset"], label="dataset root", full_width=True)
    seed = mo.ui.number(start=0, stop=2**31 - 1, value=_knobs["seed"], label="seed")
    run = mo.ui.run_button(label="Measure fetches")
    mo.vstack([dataset_root, mo.hstack([seed, run], justify="start")])
    return args, dataset_root, run, seed


@app.cell
def _(args, dataset_root, run, seed):
    unavailable = ""  # every probe this page needs ships with the package
    mo.stop(not (run.value or "dataset" in args), mo.md("Press **Measure fetches**."))
    with mo.status.spinner(title="Decoding through the byte index"):
        fetches, per_episode = fetch_table(dataset_root.value, seed=int(seed.value))
    _fetched = int(fetches["bytes_fetched"].sum())
    _ratio = _fetched / max(fetches.attrs["floor_bytes_total"], 1)
    _network = fetches[~fetches["cache_hit"]]
    verdict = (f"{len(_network)} range requests, {_fetched / 1024:.0f} KiB = {_ratio:.2f}x the byte floor; "
               f"{int(fetches['cache_hit'].sum())} of {len(fetches)} lookups were cache hits")
    verdict_level = "ok" if _ratio < 2 else "warning"
    _served = fetches.attrs["served_url"]
    _where = (f"served over loopback HTTP (127.0.0.1) for this run; the server counted "
              f"{fetches.attrs['server_video_bytes']} video bytes in {fetches.attrs['server_video_requests']} requests"
              if _served else "read from the URL as given")
    mo.md(f"**Verdict:** {verdict}.  \nThe dataset was {_where}. Loading the byte index cost "
          f"{fetches.attrs['index_bytes'] / 1024:.0f} KiB in {fetches.attrs['index_requests']} requests (once per run).")
    return fetches, per_episode, unavailable, verdict, verdict_level


@app.cell
def _(fetches):
    chart = charts.fetch_size_histogram(fetches)
    chart
    return (chart,)


@app.cell
def _(per_episode):
    floor_chart = charts.bytes_vs_floor(per_episode)
    floor_chart
    return (floor_chart,)


@app.cell
def _(per_episode):
    per_episode
    return


if __name__ == "__main__":
    app.run()
