"""The explorer as a black box: app.py's `demo` launched in-process, driven through gradio_client's /run endpoint
and, as a hostile client would, through plain HTTP calls of every event with forged inputs.

References: the CLI's own --json record of the same clip and settings for /run; for the forged calls, a secret
clip whose bytes and frames must never come back, and a victim session whose run must stay its own.
"""

from __future__ import annotations

import json
import secrets

import pytest
from gradio_client import Client, handle_file

from app.server import SERVER
from seats_core.cli import cli
from seats_core.data import synth
from tests.helpers import dependencies, fn_indices, http_event, http_upload, launch_app

QUESTION = "Which shape moves while the tone plays?"
NEW_TOKENS = 2
CONCURRENT = 10
JOB_TIMEOUT_S = 600
ADVANCED = [1.4, "", None, 0.1, "same", True, True, True, 2, 0.05, 0]  # the panel's defaults, in widget order


@pytest.fixture(scope="module")
def server():
    demo = launch_app("seats_app_main")
    yield demo
    demo.close()


@pytest.fixture(scope="module")
def client(server):
    return Client(server.local_url, verbose=False)


@pytest.fixture(scope="module")
def fns(server):
    return fn_indices(server.local_url)


def _check_args(box, clip, question=QUESTION, n_new=NEW_TOKENS, seed=0, max_new=None):
    adv = ADVANCED[:-1] + [seed]
    return [box, clip, question, "mini", "seats", "R10", "none", n_new if max_new is None else max_new, *adv]


def test_run_endpoint_returns_the_cli_json(client, clip_short_av, tmp_path, capsys):
    answer, result = client.predict(
        handle_file(clip_short_av), QUESTION, "seats", "R10", NEW_TOKENS, api_name="/run"
    )
    out = tmp_path / "cli.json"
    argv = ["run", clip_short_av, "--question", QUESTION, "--retention", "R10", "--max-new-tokens", "2"]
    assert cli([*argv, "--json", str(out)]) == 0
    capsys.readouterr()
    reference = json.loads(out.read_text())
    assert answer == reference["answer"] == result["answer"]
    assert set(result) == set(reference)
    assert isinstance(result["clip"], dict)  # not replaced by a downloaded file
    same = ("duration_s", "frames", "frame_size", "fps", "has_audio", "source_size", "rotation")
    assert {k: result["clip"][k] for k in same} == {k: reference["clip"][k] for k in same}
    assert result["clip"]["name"].endswith(".mp4")
    assert result["geometry"] == reference["geometry"] and result["tokens"] == reference["tokens"]
    assert result["retention_measured"] == reference["retention_measured"]


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


def _press_run(url, fns, box, clip, session_hash, **kw):
    """The page's Run button: the checking step, then (on success) the model step."""
    checked = http_event(url, fns["on_check"], _check_args(box, clip, **kw), session_hash)
    if not checked["success"]:
        return checked
    return http_event(url, fns["on_run"], [box], session_hash)


def test_seed_2_70_and_nan_tokens_get_one_line_then_the_next_request_is_served(
    server, fns, clip_short_av, caplog, capfd
):
    url, session = server.local_url, secrets.token_hex(8)
    clip = http_upload(url, clip_short_av)
    capfd.readouterr()
    bad = (({"seed": 2**70}, "seed must be a whole number"), ({"max_new": float("nan")}, "finite"))
    for kw, needle in bad:
        with caplog.at_level("WARNING", logger="seats_explorer"):
            reply = _press_run(url, fns, {}, clip, session, **kw)
        assert not reply["success"] and needle in reply["output"]["error"]
        assert "\n" not in reply["output"]["error"]
    refusals = [r.getMessage() for r in caplog.records if r.name == "seats_explorer"]
    assert len(refusals) == 2 and all(m.startswith("refused: ") for m in refusals)  # one line per request
    assert "Traceback" not in capfd.readouterr().err
    served = _press_run(url, fns, {}, clip, session)
    assert served["success"], served["raw"][-400:]
    assert "seats-card" in json.dumps(served["output"]["data"])


def test_forged_http_inputs_are_refused_and_leak_nothing(server, fns, clip_short_av, tmp_path):
    url = server.local_url
    # A victim session with a finished run (its clip uploaded the ordinary way).
    victim_hash = secrets.token_hex(8)
    assert _press_run(url, fns, {}, http_upload(url, clip_short_av), victim_hash)["success"]
    victim = next(s for s in list(SERVER.sessions._sessions.values()) if s.view is not None)
    # A secret clip nobody uploaded, and another file no one should read.
    secret = synth.make_demo_clip(tmp_path / "secret.mp4", seconds=2, seed=11)["path"]
    secret_bytes = open(secret, "rb").read()
    forged_file = {"path": secret, "meta": {"_type": "gradio.FileData"}, "orig_name": "clip.mp4"}
    passwd = {"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}, "orig_name": "clip.mp4"}
    stolen = {"id": victim.id}  # another session's id, in the slot of the page's own state
    attacks = {
        "on_check": [_check_args(stolen, forged_file), _check_args({}, passwd)],
        "on_run": [[stolen], [{"id": "made-up-run"}]],
        "on_example": [[stolen, forged_file, QUESTION]],
        "on_explore": [
            [stolen, "method", 1, "waveform", "last"],
            [{}, "../../victim", 1, "waveform", "last"],
        ],
        "on_analyze": [[stolen, "mini"], [{}, "./my-local-model"]],
        "on_export": [[stolen], [{"id": "made-up"}]],
        "run": [[forged_file, QUESTION, "seats", "R10", 1], [passwd, QUESTION, "seats", "R10", 1]],
    }
    for name, calls in attacks.items():
        for data in calls:
            reply = http_event(url, fns[name], data, secrets.token_hex(8))
            assert not reply["success"], (name, reply["raw"][-300:])
            raw = reply["raw"]
            assert "file=" not in raw and "seats-card" not in raw and "data:image" not in raw, name
            assert secret_bytes[200:264].hex() not in raw and "root:x:0" not in raw, name
    # The victim's own session is untouched and still served.
    assert victim.view is not None and victim.records["method"]["answer"] is not None
    again = http_event(url, fns["on_explore"], [{}, "method", 2, "waveform", "last"], victim_hash)
    assert again["success"] and again["output"]["data"][0] is not None


def test_api_run_refuses_nan_and_huge_tokens_in_one_line(server, fns, clip_short_av):
    url, session = server.local_url, secrets.token_hex(8)
    clip = http_upload(url, clip_short_av)
    for value in (float("nan"), float("inf"), 2**70):
        reply = http_event(url, fns["run"], [clip, QUESTION, "seats", "R10", value], session)
        error = reply["output"]["error"]  # ours, or Gradio's slider check (values above its max)
        assert not reply["success"] and "\n" not in error
        assert error.startswith("max new tokens must be") or "greater than maximum value" in error
    served = http_event(url, fns["run"], [clip, QUESTION, "seats", "R10", 1], session)
    assert served["success"] and served["output"]["data"][1]["version"] == 1


def test_events_that_replace_the_results_are_never_dropped(server):
    """Run pressed during a run, or an example clicked while another loads: gradio's default ("once") drops the
    second trigger, leaving its question above the first one's answers; "always_last" runs it afterwards."""
    modes = {d["api_name"]: d["trigger_mode"] for d in dependencies(server.local_url)}
    assert modes["on_run"] == modes["on_example"] == "always_last"
    assert modes["on_check"] == "once"  # the check itself is quick; a double click checks once
