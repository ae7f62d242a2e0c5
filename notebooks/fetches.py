import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Byte-range fetches")

with app.setup:
    import marimo as mo

    from lerobot_inspect import charts
    from lerobot_inspect.format import DatasetMeta
    from lerobot_inspect.probes.fetches import fetch_table
    from lerobot_inspect.probes.frames import sample_episodes
    from lerobot_inspect.report.knobs import notebook_knobs




@app.cell
def _():
    mo.md("""
    # Byte-range fetches

    **What this shows:** every byte range the loader reads to decode a sample of frames, and per
    episode the bytes read against the floor (the bytes of the samples its decoder needs, plus the
    MP4 header the first time the run touches that file).
    **How to read it:** bars near their tick mean the loader reads only what it needs; bars far
    above it mean whole files or neighbours' bytes are fetched (costly over the network). On
    large datasets the page reads an even spread of episodes (`fetch episodes`, default 50) and
    charts the ones read furthest above their floor.
    """)
    return


@app.cell
def _():
    args = mo.cli_args()
    _knobs = notebook_knobs("fetches", args)
    dataset_root = mo.ui.text(value=_knobs["dataset"], label="dataset root", full_width=True)
    seed = mo.ui.number(start=0, stop=2**31 - 1, value=_knobs["seed"], label="seed")
    fetch_episodes = mo.ui.number(start=1, stop=100000, value=_knobs["fetch_episodes"], label="episodes to read")
    run = mo.ui.run_button(label="Measure fetches")
    mo.vstack([dataset_root, mo.hstack([seed, fetch_episodes, run], justify="start")])
    return args, dataset_root, fetch_episodes, run, seed


@app.cell
def _(args, dataset_root, fetch_episodes, run, seed):
    unavailable = ""  # every probe this page needs ships with the package
    mo.stop(not (run.value or "dataset" in args), mo.md("Press **Measure fetches**."))
    _all = DatasetMeta.open(dataset_root.value).num_episodes
    _chosen = sample_episodes(range(_all), int(fetch_episodes.value))
    with mo.status.spinner(title=f"Decoding 3 frames of each of {len(_chosen)} episodes through the byte index",
                           remove_on_exit=True):
        fetches, per_episode = fetch_table(dataset_root.value, seed=int(seed.value), episodes=_chosen)
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
    _sampled = (f"Read 3 seeded frames of {len(_chosen)} of {_all} episodes, evenly spaced. " if len(_chosen) < _all
                else f"Read 3 seeded frames of each of the {_all} episodes. ")
    mo.md(f"**Verdict:** {verdict}.  \n{_sampled}The dataset was {_where}. Loading the byte index cost "
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
    # Worst first: the (episode, camera) reads furthest above their floor.
    worst = per_episode.assign(over_floor_bytes=per_episode["bytes_read"] - per_episode["floor_bytes"]).sort_values(
        "over_floor_bytes", ascending=False, kind="stable")
    worst
    return (worst,)


if __name__ == "__main__":
    app.run()
