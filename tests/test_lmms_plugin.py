"""The lmms-eval plugin against the real lmms-eval (requirements-eval.txt; the tests that need it skip without it).

In process: the `lmms_eval.models` entry point declared in pyproject.toml is found by lmms-eval's own registry,
and the model built the way lmms-eval's evaluator builds it answers real `Instance` requests on the miniature
exactly as the Engine does, skips lmms-eval's padding copies, and writes a per-rank cost log. The upstream task
behaviours docs/EVAL.md warns about are checked on upstream's own code. Full `python -m lmms_eval` runs, one
process and two, are in test_lmms_real.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from seats_core.data import synth
from seats_core.evaluation import lmms_eval_plugin as plugin
from seats_core.evaluation.harness import EVAL_MAX_SECONDS
from seats_core.prune.config import SeatsConfig
from seats_core.run.media import MediaConfig
from seats_core.run.pipeline import InputError

ROOT = Path(__file__).resolve().parents[1]
CONTEXT = "Which tone plays first?\nA. low\nB. high\nAnswer with the option's letter from the given choices directly."


def write_entry_points(folder: Path) -> Path:
    """The project's entry points from pyproject.toml as installed metadata (a dist-info folder) under `folder`,
    which importlib.metadata then finds on sys.path as it finds an installed package's."""
    tomllib = pytest.importorskip("tomllib")
    groups = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    info = folder / "seats_explorer-0.0.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: seats-explorer\nVersion: 0.0.0\n")
    text = "".join(f"[{g}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) for g, eps in groups.items())
    (info / "entry_points.txt").write_text(text)
    return folder


@pytest.fixture(scope="module")
def lmms():
    return pytest.importorskip(
        "lmms_eval", reason="the evaluation extras are not installed (requirements-eval.txt)"
    )


@pytest.fixture(scope="module")
def engine():
    from seats_core.run.pipeline import Engine

    return Engine("mini", device="cpu")


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[str]:
    folder = tmp_path_factory.mktemp("lmms")
    return [
        synth.make_demo_clip(folder / f"doc{k}.mp4", seconds=4, size=(64, 48), fps=4, seed=5 + k)["path"]
        for k in range(2)
    ]


def test_importing_seats_core_needs_no_lmms_eval():
    code = (
        "import sys, seats_core, seats_core.evaluation.harness, seats_core.evaluation.lmms_eval_plugin as p, "
        "seats_core.evaluation.lmms_tasks; "
        "assert not [m for m in sys.modules if m.startswith('lmms_eval')], 'lmms_eval was imported'; "
        "print(p.MODEL_NAME)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "seats_qwen2_5_omni"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_eval_lock_is_complete(lmms):
    """requirements-eval.txt is installed with --no-deps: `pip check` may name lmms-eval's own unmet requirements
    (left out on purpose) but no unmet requirement of another package of the lock, and no package the lock moved
    (python-dateutil, filelock) that another package needs at another version."""
    lines = (ROOT / "requirements-eval.txt").read_text().splitlines()
    locked = {_canonical(re.split(r"[=<>!~ ;#]", x.strip())[0]) for x in lines if x.strip() and x[0] != "#"}
    assert {"lmms-eval", "filelock", "python-dateutil"} <= locked
    proc = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=300)
    unmet = []
    for line in proc.stdout.splitlines():
        who, moved = _canonical(line.split()[0]), re.search(r"but you have (\S+)", line)
        if who != "lmms-eval" and (who in locked or (moved and _canonical(moved.group(1)) in locked)):
            unmet.append(line)
    assert not unmet, "\n".join(unmet)


def test_entry_point_registers_the_plugin_with_lmms_evals_registry(lmms, tmp_path, monkeypatch):
    from lmms_eval.api.model import lmms as base
    from lmms_eval.models.registry_v2 import ModelRegistryV2

    monkeypatch.syspath_prepend(str(write_entry_points(tmp_path)))
    registry = ModelRegistryV2()
    registry.load_entrypoint_manifests()  # what `import lmms_eval.models` does at start-up
    cls = registry.get_model_class(plugin.MODEL_NAME)
    assert cls is plugin.SeatsQwen25Omni and issubclass(cls, base) and cls.is_simple


def _request(instance_cls, doc_id: int, metadata: dict | None = None):
    args = (CONTEXT, {"max_new_tokens": 64, "until": ["\n\n"]}, lambda d: d["visuals"], doc_id, "t", "test")
    meta = {"task": "t", "doc_id": doc_id, "repeats": 1, **(metadata or {})}
    return instance_cls(request_type="generate_until", arguments=args, idx=0, metadata=meta)


def test_plugin_answers_like_the_engine_and_logs_each_doc_once_per_rank(
    lmms, engine, clips, tmp_path, monkeypatch
):
    from lmms_eval.api.instance import Instance

    monkeypatch.setenv("RANK", "1")  # as accelerate / torchrun set them for the second of two ranks
    monkeypatch.setenv("WORLD_SIZE", "2")
    cls = plugin.register()
    log = tmp_path / "cost.jsonl"
    lm = cls.create_from_arg_string(  # as lmms-eval's evaluator calls it (max_batch_size included)
        f"pretrained=mini,method=seats,retention=R10,max_new_tokens=3,log_path={log}",
        {"batch_size": 1, "max_batch_size": None, "device": "cpu", "engine": engine},
    )
    lm.task_dict = {"t": {"test": [{"visuals": [c]} for c in clips] + [{"visuals": []}]}}
    requests = [_request(Instance, 0), _request(Instance, 1), _request(Instance, 1, {plugin.PADDING: True})]
    requests.append(_request(Instance, 2))  # a doc without a video: answered "" and reported, the run goes on
    replies = lm.generate_until(requests)

    media = engine.media(MediaConfig(max_seconds=EVAL_MAX_SECONDS))
    config = SeatsConfig.make("seats", "R10")
    expected = [engine.run(engine.prepare(c, CONTEXT, media), config, max_new_tokens=3) for c in clips]
    assert replies == [plugin.cut_at_stops(r.answer, ["\n\n"]) for r in expected] + ["", ""]
    assert not log.exists()
    lines = [json.loads(x) for x in (tmp_path / "cost.rank1.jsonl").read_text().splitlines()]
    assert [(x["rank"], x["task"], x["doc_id"]) for x in lines] == [
        (1, "t", 0),
        (1, "t", 1),
    ]  # padding not logged
    for line, record in zip(lines, expected):
        assert line["reply"] == plugin.cut_at_stops(record.answer, ["\n\n"])
        assert line["tflops"] == pytest.approx(record.flops["prefill"] / 1e12)
        assert line["method"] == "seats" and line["retention"] == record.retention


def test_plugin_refuses_bad_model_args_before_loading(lmms):
    cls = plugin.register()
    with pytest.raises(ValueError, match="unknown model_args"):
        cls.create_from_arg_string("pretrained=mini,methd=seats")
    with pytest.raises(ValueError, match="batch 1"):
        cls.create_from_arg_string("pretrained=mini", {"batch_size": 2})


def test_upstream_task_behaviours_the_docs_warn_about(lmms):
    """Upstream worldsense scores a reply naming no option as "A"; upstream videomme ends the process on a missing
    video (docs/EVAL.md, "Scoring in lmms-eval")."""
    pytest.importorskip("cv2", reason="upstream task code imports cv2 (opencv-python-headless)")
    from lmms_eval.tasks.videomme import utils as videomme
    from lmms_eval.tasks.worldsense import utils as worldsense

    options = {"A": "red", "B": "green", "C": "blue", "D": "yellow"}
    assert worldsense.parse_multi_choice_response("", list(options), options) == "A"
    assert worldsense.parse_multi_choice_response("I cannot tell.", list(options), options) == "A"
    with pytest.raises(SystemExit):
        videomme.videomme_doc_to_visual({"videoID": "no-such-video"})


@pytest.mark.parametrize(
    "value, parsed", [("R10", "R10"), ("0.06:0.35", (0.06, 0.35)), ("0.2/0.5", (0.2, 0.5))]
)
def test_retention_argument(value, parsed):
    assert plugin.parse_retention_arg(value) == parsed


def test_stop_strings_video_choice_and_rank_log_names():
    assert plugin.cut_at_stops("B.\n\nBecause", ["\n\n", "Because"]) == "B."
    assert plugin.cut_at_stops("B", None) == "B"
    assert plugin.first_video(["a.png", "/x/clip.MP4"]) == "/x/clip.MP4"
    with pytest.raises(InputError, match="video files"):
        plugin.first_video([{"array": [0.0], "sampling_rate": 16000}])
    assert plugin.rank_log_path("runs/cost.jsonl", 0, 1) == Path("runs/cost.jsonl")
    assert plugin.rank_log_path("runs/cost.jsonl", 3, 8) == Path("runs/cost.rank3.jsonl")
