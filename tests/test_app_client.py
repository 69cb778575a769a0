"""The explorer as a black box: app.py's `demo` launched in-process, driven through gradio_client's /run endpoint.

The reference for the API's answer and JSON is a direct Engine.run on the same clip (the CLI writes exactly that
dict with --json).
"""

from __future__ import annotations

import pytest
from gradio_client import Client, handle_file

from app import handlers
from seats_core.config import SeatsConfig

from .helpers import launch_app

QUESTION = "Which shape moves while the tone plays?"
NEW_TOKENS = 2
CONCURRENT = 10
JOB_TIMEOUT_S = 600


@pytest.fixture(scope="module")
def server():
    demo = launch_app("seats_app_main")
    yield demo
    demo.close()


@pytest.fixture(scope="module")
def client(server):
    return Client(server.local_url, verbose=False)


def test_run_endpoint_returns_the_cli_json(client, clip_short_av):
    answer, result = client.predict(
        handle_file(clip_short_av), QUESTION, "seats", "R10", NEW_TOKENS, api_name="/run"
    )
    engine = handlers.get_engine()
    direct = engine.run(
        engine.prepare(clip_short_av, QUESTION, handlers.media_for(handlers.MINI)),
        SeatsConfig.make("seats", "R10"),
        max_new_tokens=NEW_TOKENS,
    )
    assert answer == direct["answer"] == result["answer"]
    assert set(result) == set(direct)
    assert result["retention_measured"] == direct["retention_measured"]
    assert [t["survives_to"] for t in result["tokens"]] == [t["survives_to"] for t in direct["tokens"]]


def test_bad_upload_then_good_one(client, bad_files, clip_short_av):
    with pytest.raises(Exception, match="cannot be decoded"):
        client.predict(
            handle_file(bad_files["corrupt"]), QUESTION, "seats", "R10", NEW_TOKENS, api_name="/run"
        )
    with pytest.raises(Exception, match="question is empty"):
        client.predict(handle_file(clip_short_av), "", "seats", "R10", NEW_TOKENS, api_name="/run")
    answer, result = client.predict(
        handle_file(clip_short_av), QUESTION, "random", "0.2,0.5", NEW_TOKENS, api_name="/run"
    )
    assert result["method"] == "random" and result["retention"] == [0.2, 0.5]


def test_ten_concurrent_requests_all_answered(server, clip_short_av):
    clients = [Client(server.local_url, verbose=False) for _ in range(2)]  # two sessions sharing the queue
    jobs = [
        clients[i % 2].submit(handle_file(clip_short_av), QUESTION, "seats", "R10", 1, api_name="/run")
        for i in range(CONCURRENT)
    ]
    results = [job.result(timeout=JOB_TIMEOUT_S) for job in jobs]
    assert len(results) == CONCURRENT
    first = results[0][1]["tokens"]
    assert all(r[1]["tokens"] == first for r in results)  # one model, one job at a time: identical runs
