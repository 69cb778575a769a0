"""A Space always starts: app.py with SPACE_ID set, no GPU and no hub serves the miniature with a banner.

The Space is simulated in a subprocess (its own environment and a fresh import of app.py): SPACE_ID set,
CUDA hidden, HF_HUB_OFFLINE=1, an empty Hugging Face cache. It launches with prevent_thread_lock, reads the page's
/config, checks the banner and the model, and closes. The deployment rules themselves are tested as a pure
function (app.deploy.plan with injected probes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import deploy

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 300

SERVE = r"""
import json, socket, sys, urllib.request, importlib.util
with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
spec = importlib.util.spec_from_file_location("seats_space_app", "app.py")
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
mod.demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True)
try:
    config = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=60))
    page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=60).status
finally:
    mod.demo.close()
from app.server import SERVER
print("RESULT " + json.dumps({"config": config, "page": page, "model": SERVER.model,
                              "engines": list(SERVER.engines), "deployment": mod.DEPLOYMENT.__dict__}))
"""


@pytest.fixture(scope="module")
def space(tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("hf_home")
    env = {k: v for k, v in os.environ.items() if k != deploy.ENV_MODEL}
    env.update(
        SPACE_ID="someone/seats-explorer",
        CUDA_VISIBLE_DEVICES="",
        HF_HUB_OFFLINE="1",
        HF_HOME=str(home),
        GRADIO_ANALYTICS_ENABLED="False",
        OMP_NUM_THREADS="1",
    )
    proc = subprocess.run(
        [sys.executable, "-c", SERVE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def test_space_without_gpu_or_hub_serves_the_miniature_with_a_banner(space):
    assert space["page"] == 200
    assert space["model"] == deploy.MINI and space["engines"] == [deploy.MINI]  # loaded at start, once
    assert space["deployment"]["requested"] == deploy.SPACES_MODEL and space["deployment"]["shared"]
    banners = [
        c for c in space["config"]["components"] if c.get("props", {}).get("elem_id") == deploy.BANNER_ID
    ]
    assert len(banners) == 1
    text = banners[0]["props"]["value"]
    assert "miniature" in text and "no GPU" in text
    first = space["config"]["layout"]["children"][0]["id"]
    assert first == banners[0]["id"], "the banner must be the first thing on the page"


def _plan(env, gpu, cached=False, hub=True, argv=None):
    return deploy.plan(
        argv or [], env, has_gpu=lambda: gpu, cached=lambda name: cached, hub_reachable=lambda: hub
    )


SPACE = {"SPACE_ID": "a/b"}


@pytest.mark.parametrize(
    ("env", "gpu", "cached", "hub", "model", "banner"),
    [
        (SPACE, True, False, True, deploy.SPACES_MODEL, None),  # GPU Space: the 7B (downloaded or preloaded)
        (SPACE, True, True, False, deploy.SPACES_MODEL, None),  # preloaded, hub down: still the 7B
        (SPACE, False, True, True, deploy.MINI, "no GPU"),  # CPU Space: never the 7B in fp32
        (SPACE, True, False, False, deploy.MINI, "unreachable"),  # not cached, no hub
        ({**SPACE, deploy.ENV_MODEL: "mini"}, True, True, True, deploy.MINI, "asks for the miniature"),
        ({}, False, False, False, deploy.MINI, None),  # local CPU: the miniature, no banner
        ({}, True, True, False, deploy.SPACES_MODEL, None),  # local GPU with a cached 7B
        ({}, True, False, True, deploy.MINI, None),  # local GPU, nothing cached: no surprise download
    ],
)
def test_plan(env, gpu, cached, hub, model, banner):
    d = _plan(env, gpu, cached, hub)
    assert d.model == model
    assert (d.banner is None) if banner is None else (banner in d.banner)
    assert d.shared == bool(env.get("SPACE_ID"))


def test_flag_and_env_choose_the_model_and_allowed_models_pin_a_shared_one():
    d = _plan({deploy.ENV_MODEL: "Qwen/Qwen2.5-Omni-3B"}, True, True)
    assert d.model == "Qwen/Qwen2.5-Omni-3B" and not d.shared
    assert deploy.allowed_models(d)[0] == d.model and deploy.MINI in deploy.allowed_models(d)
    d = _plan({deploy.ENV_MODEL: "Qwen/Qwen2.5-Omni-3B"}, True, True, argv=["--model", "mini"])
    assert d.model == deploy.MINI
    shared = _plan(SPACE, True, True)
    assert deploy.allowed_models(shared) == [deploy.SPACES_MODEL]
    assert deploy.check_model(shared, None) == deploy.SPACES_MODEL
    with pytest.raises(ValueError, match="serves Qwen/Qwen2.5-Omni-7B only"):
        deploy.check_model(shared, deploy.MINI)


def test_a_model_that_fails_to_load_falls_back_to_the_miniature():
    loaded = []

    def load(name):
        if name != deploy.MINI:
            raise RuntimeError("CUDA out of memory.\nTried to allocate 2 GiB")
        loaded.append(name)

    d = deploy.load_or_fallback(_plan(SPACE, True, True), load)
    assert d.model == deploy.MINI and loaded == [deploy.MINI]
    assert "CUDA out of memory." in d.banner and "Tried" not in d.banner

    import gradio as gr

    def refuse(name):  # work.get_engine wraps ModelLoadError in gr.Error
        if name != deploy.MINI:
            raise gr.Error("cannot download 'x': the Hugging Face hub is unreachable")

    d = deploy.load_or_fallback(_plan(SPACE, True, True), refuse)
    assert "(cannot download 'x': the Hugging Face hub is unreachable)" in d.banner


def test_gpu_decorator_is_the_identity_without_spaces():
    def f(x):
        return x

    assert deploy.gpu_decorator(None)(f) is f
    assert deploy.import_spaces({}) is None
