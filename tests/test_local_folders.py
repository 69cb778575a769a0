"""A checkpoint in a local folder runs wherever a user could run it (issue 22): each miniature is saved with
`save_pretrained` (thinker and processor) and run by its path, with no name-based shortcut, through the CLI, the
Engine, the explorer's /run (gradio_client) and the evaluation harness.

References: the family's token block (28 px Qwen2.5-Omni, 32 px Qwen3-Omni) and the paper's frame budget, which a
folder gets (128-144 tokens per frame pair); the CLI's own record of the same clip for the explorer's answer.
"""

from __future__ import annotations

import json

import pytest
from gradio_client import Client, handle_file

from app.server import SERVER
from seats_core.cli import cli
from seats_core.data import synth
from seats_core.data.benchmark_folders import write_benchmark
from seats_core.prune.config import SeatsConfig
from seats_core.run.pipeline import Engine
from tests.helpers import launch_app, mini, mini_qwen3

QUESTION = "Which shape moves while the tone plays?"
BLOCK = {"mini": 28, "mini-qwen3": 32}
BUILD = {"mini": mini, "mini-qwen3": mini_qwen3}
PAPER_TOKENS = (128, 144)  # per frame pair: the budget of any checkpoint that is not a built-in miniature


@pytest.fixture(scope="module", params=["mini-qwen3", "mini"])
def folder(request, tmp_path_factory):
    """(name of the miniature it was saved from, its folder)."""
    model, proc = BUILD[request.param]("sdpa")
    path = tmp_path_factory.mktemp(request.param.replace("-", "_") + "_ckpt")
    model.save_pretrained(path)
    proc.save_pretrained(path)
    return request.param, str(path)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return synth.make_demo_clip(tmp_path_factory.mktemp("clip") / "c.mp4", seconds=2, seed=3)["path"]


def _check_geometry(record: dict, block: int) -> None:
    g = record["geometry"]
    w, h = g["frame_size"]
    assert g["block_px"] == block and w % block == 0 and h % block == 0  # whole tokens per frame
    assert g["grid"][1:] == [h // block, w // block]
    assert PAPER_TOKENS[0] <= g["grid"][1] * g["grid"][2] <= PAPER_TOKENS[1]


@pytest.fixture(scope="module")
def cli_record(folder, clip, tmp_path_factory):
    name, path = folder
    out = tmp_path_factory.mktemp("cli") / "run.json"
    argv = [
        "run",
        clip,
        "--question",
        QUESTION,
        "--model",
        path,
        "--retention",
        "R25",
        "--max-new-tokens",
        "2",
    ]
    assert cli([*argv, "--json", str(out), "--device", "cpu"]) == 0
    return json.loads(out.read_text())


def test_the_cli_runs_a_folder_in_its_familys_geometry(folder, cli_record):
    name, path = folder
    assert cli_record["model"] == path and cli_record["family"] == (
        "qwen3_omni" if "qwen3" in name else "qwen2_5_omni"
    )
    _check_geometry(cli_record, BLOCK[name])


def test_the_explorer_runs_a_folder_as_the_cli_does(folder, clip, cli_record, monkeypatch):
    """The explorer serving the folder (`python app.py --model FOLDER`), called as an API client: the same
    geometry and the same kept tokens as the CLI for the same clip and settings."""
    name, path = folder
    monkeypatch.setenv("SEATS_MODEL", path)
    served = (SERVER.model, SERVER.deployment)  # app.py configures the process's one server: restored after
    demo = launch_app("seats_app_folder_" + name.replace("-", "_"))
    try:
        answer, record = Client(demo.local_url, verbose=False).predict(
            handle_file(clip), QUESTION, "seats", "R25", 2, api_name="/run"
        )
    finally:
        demo.close()
        SERVER.configure(*served)
    assert record["model"] == path
    _check_geometry(record, BLOCK[name])
    assert record["geometry"] == cli_record["geometry"]
    assert record["tokens"]["survives_to"] == cli_record["tokens"]["survives_to"]
    assert answer == cli_record["answer"]


def test_engine_and_eval_harness_run_a_folder(folder, clip, tmp_path):
    name, path = folder
    engine = Engine(path, device="cpu")
    assert not engine.model.is_mini and engine.media().factor == BLOCK[name]
    record = engine.run(engine.prepare(clip, QUESTION), SeatsConfig.make("seats", "R25"), max_new_tokens=1)
    _check_geometry(record.to_dict(), BLOCK[name])
    assert record.config["temperature"] == (0.3 if "qwen3" in name else 0.1)  # the family's, from the folder
    data = tmp_path / "ws"
    write_benchmark("worldsense", data, [clip])
    out = tmp_path / "out"
    argv = ["eval", "--data", str(data), "--benchmark", "worldsense", "--model", path, "--methods", "seats"]
    assert cli([*argv, "--retention", "R25", "--out", str(out), "--limit", "1", "--device", "cpu"]) == 0
    (line,) = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    assert line["model"] == path and line["geometry"]["block_px"] == BLOCK[name]
