"""The fetch probe measures real range requests: bytes match the server's count, headers are fetched
once per file, every (episode, camera) costs its span, and a seed reproduces the table."""

from __future__ import annotations

import pytest

from lerobot_inspect.errors import OptionError
from lerobot_inspect.format import DatasetMeta
from lerobot_inspect.io.loopback import serve_directory
from lerobot_inspect.probes.fetches import FETCH_COLUMNS, PER_EPISODE_COLUMNS, fetch_table
from lerobot_inspect.video.index_io import load_or_build_index


@pytest.fixture(scope="module")
def measured(tiny_root):
    return fetch_table(str(tiny_root), seed=5)


def test_fetch_bytes_are_what_the_server_sent(measured):
    fetches, per_episode = measured
    assert list(fetches.columns) == FETCH_COLUMNS and list(per_episode.columns) == PER_EPISODE_COLUMNS
    assert fetches.attrs["served_url"].startswith("http://127.0.0.1:")
    total = int(fetches["bytes_fetched"].sum())
    assert total > 0 and total == fetches.attrs["server_video_bytes"] == int(per_episode["bytes_read"].sum())
    assert int(fetches["requests"].sum()) == fetches.attrs["server_video_requests"]
    assert fetches.attrs["index_bytes"] > 0 and fetches.attrs["index_requests"] > 0
    # hits cost nothing on the wire; misses cost their size
    hits = fetches[fetches["cache_hit"]]
    assert (hits["requests"] == 0).all() and (hits["bytes_fetched"] == 0).all()
    misses = fetches[~fetches["cache_hit"]]
    assert (misses["bytes_fetched"] == misses["size_bytes"]).all() and (misses["requests"] >= 1).all()


def test_each_episode_reads_its_span_and_each_file_header_once(measured, tiny_root):
    fetches, per_episode = measured
    meta = DatasetMeta.open(str(tiny_root))
    index = load_or_build_index(meta, verify_sizes=False)
    assert len(per_episode) == meta.num_episodes * len(meta.video_keys)
    for row in per_episode.itertuples():
        entry = index.episode(row.episode_index, row.camera)
        assert row.span_bytes == entry.span_stop - entry.span_start
        assert row.span_bytes_read == row.span_bytes, "a span was not fetched exactly once"
        assert row.bytes_read == row.header_bytes_read + row.span_bytes_read
        assert row.bytes_read >= row.floor_bytes >= row.sample_bytes > 0
    spans = fetches[fetches["kind"] == "span"]
    assert not spans["cache_hit"].any() and len(spans) == len(per_episode)
    headers = fetches[fetches["kind"] == "header"]
    fetched_once = headers[~headers["cache_hit"]].groupby(["file", "start", "stop"]).size()
    assert (fetched_once == 1).all()
    # a file holding two episodes: the second episode's header lookups are hits
    assert headers["cache_hit"].any()
    first_touch = per_episode.drop_duplicates("file")
    assert (first_touch["header_bytes_read"] > 0).all()
    assert (per_episode.drop(first_touch.index)["header_bytes_read"] == 0).all()
    assert fetches.attrs["floor_bytes_total"] == int(per_episode["floor_bytes"].sum())


def test_seed_reproduces_and_changes_the_order(measured, tiny_root):
    fetches, per_episode = measured
    again, again_per_episode = fetch_table(str(tiny_root), seed=5, cache_bytes=0)
    assert again_per_episode["episode_index"].tolist() == per_episode["episode_index"].tolist()
    # without a cache every header lookup goes to the network again
    assert not again["cache_hit"].any()
    assert int(again["requests"].sum()) > int(fetches["requests"].sum())
    other, _ = fetch_table(str(tiny_root), seed=6, episodes=[0, 1, 2, 3, 4], cameras=["observation.images.wrist"])
    assert set(other["camera"]) == {"observation.images.wrist"}
    orders = {tuple(fetch_table(str(tiny_root), seed=s, cameras=["observation.images.wrist"])[1]["episode_index"])
              for s in (6, 7, 8)}
    assert len(orders) > 1, "the seed does not change the episode order"


def test_remote_url_is_read_as_given(tiny_root):
    with serve_directory(tiny_root) as server:
        fetches, per_episode = fetch_table(server.url, episodes=[2], serve_local=True)
        sent = server.stats()
    assert fetches.attrs["served_url"] is None and fetches.attrs["server_video_bytes"] == 0
    assert set(per_episode["episode_index"]) == {2}
    video_sent = sum(e["bytes_sent"] for p, e in sent["paths"].items() if p.endswith(".mp4"))
    assert video_sent >= int(fetches["bytes_fetched"].sum()) > 0


@pytest.mark.parametrize("options", [{"seed": -1}, {"episodes": [99]}, {"episodes": []}, {"cameras": ["nope"]},
                                     {"frames_per_episode": 0}])
def test_bad_options_are_refused(tiny_root, options):
    with pytest.raises(OptionError):
        fetch_table(str(tiny_root), **options)
