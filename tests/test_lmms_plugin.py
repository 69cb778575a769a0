"""The lmms-eval plugin: registers `seats_qwen2_5_omni` and answers a synthetic sample on the miniature.

lmms-eval is optional and not installed here (its requirements would replace the pinned av and add ~70 packages),
so unless a real `lmms_eval` is importable the test writes a minimal stand-in of the lmms-eval API the plugin
touches -- the `lmms` base class with create_from_arg_string, `Instance.args`, the manifest registry of
lmms-eval 0.7 -- and drives the plugin through it the way lmms-eval's evaluator does. The answer must equal a
direct Engine run with the same method and retention.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from seats_core import synth
from seats_core.config import SeatsConfig
from seats_core.integrations import lmms_eval_plugin as plugin
from seats_core.pipeline import InputError

SHIM = {
    "lmms_eval/__init__.py": "",
    "lmms_eval/api/__init__.py": "",
    "lmms_eval/api/instance.py": """
        from dataclasses import dataclass, field

        @dataclass
        class Instance:
            request_type: str
            arguments: tuple
            idx: int
            metadata: dict = field(default_factory=dict)

            @property
            def args(self):
                return self.arguments
    """,
    "lmms_eval/api/model.py": """
        import abc

        def _value(v):
            for cast in (int, float):
                try:
                    return cast(v)
                except ValueError:
                    pass
            return v

        class lmms(abc.ABC):
            is_simple = True

            def __init__(self):
                self._rank, self._world_size, self.task_dict = 0, 1, {}

            @classmethod
            def create_from_arg_string(cls, arg_string, additional_config=None):
                args = dict(kv.split("=", 1) for kv in arg_string.split(",") if kv)
                extra = {k: v for k, v in (additional_config or {}).items() if v is not None}
                return cls(**{k: _value(v) for k, v in args.items()}, **extra)

            @abc.abstractmethod
            def generate_until(self, requests): ...

            @abc.abstractmethod
            def loglikelihood(self, requests): ...

            @abc.abstractmethod
            def generate_until_multi_round(self, requests): ...
    """,
    "lmms_eval/models/__init__.py": """
        from lmms_eval.models.registry_v2 import ModelRegistryV2

        MODEL_REGISTRY_V2 = ModelRegistryV2()
    """,
    "lmms_eval/models/registry_v2.py": """
        import importlib
        from dataclasses import dataclass

        @dataclass(frozen=True)
        class ModelManifest:
            model_id: str
            simple_class_path: str = None
            chat_class_path: str = None
            aliases: tuple = ()

        class ModelRegistryV2:
            def __init__(self):
                self.manifests = {}

            def register_manifest(self, manifest, *, overwrite=False):
                if manifest.model_id in self.manifests and not overwrite:
                    raise ValueError(manifest.model_id)
                self.manifests[manifest.model_id] = manifest

            def get_model_class(self, name, force_simple=False):
                from lmms_eval.api.model import lmms

                module, cls = self.manifests[name].simple_class_path.rsplit(".", 1)
                found = getattr(importlib.import_module(module), cls)
                assert issubclass(found, lmms) and found.is_simple
                return found
    """,
}


def _has_real_lmms_eval() -> bool:
    try:
        import lmms_eval.api.model  # noqa: F401
        import lmms_eval.models  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture
def lmms_api(tmp_path, monkeypatch):
    """The real lmms-eval when importable, else the stand-in above; the plugin's class cache is reset."""
    if not _has_real_lmms_eval():
        for rel, text in SHIM.items():
            path = tmp_path / "shim" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
        monkeypatch.syspath_prepend(str(tmp_path / "shim"))
        for name in [m for m in sys.modules if m == "lmms_eval" or m.startswith("lmms_eval.")]:
            monkeypatch.delitem(sys.modules, name)
    plugin._model_class.cache_clear()
    yield
    plugin._model_class.cache_clear()
    for name in [m for m in sys.modules if m == "lmms_eval" or m.startswith("lmms_eval.")]:
        sys.modules.pop(name, None)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("lmms") / "doc0.mp4"
    return synth.make_demo_clip(path, seconds=4, size=(64, 48), fps=4, seed=5)["path"]


def test_importing_seats_core_needs_no_lmms_eval():
    code = (
        "import sys, seats_core, seats_core.evaluate, seats_core.integrations.lmms_eval_plugin as p; "
        "assert not [m for m in sys.modules if m.startswith('lmms_eval')], 'lmms_eval was imported'; "
        "print(p.MODEL_NAME)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "seats_qwen2_5_omni"


def test_plugin_registers_and_answers_one_sample_on_the_miniature(lmms_api, clip):
    from lmms_eval.api.instance import Instance
    from lmms_eval.models import MODEL_REGISTRY_V2

    cls = plugin.register()
    assert MODEL_REGISTRY_V2.get_model_class(plugin.MODEL_NAME) is cls
    lm = cls.create_from_arg_string(
        "pretrained=mini,method=seats,retention=R10,max_new_tokens=3", {"batch_size": 1, "device": "cpu"}
    )
    doc = {"video": clip, "question": "Which tone plays first?"}
    lm.task_dict = {"synthetic": {"test": [doc]}}
    context = "Which tone plays first?\nA. low\nB. high\nAnswer with the option's letter from the given choices directly."
    request = Instance(
        request_type="generate_until",
        arguments=(
            context,
            {"max_new_tokens": 64, "until": ["\n\n"]},
            lambda d: [d["video"]],
            0,
            "synthetic",
            "test",
        ),
        idx=0,
        metadata={"task": "synthetic", "doc_id": 0, "repeats": 1},
    )
    (reply,) = lm.generate_until([request])

    engine = lm.answerer.engine  # reference: the engine driven directly, same method, retention and budget
    expected = engine.run(engine.prepare(clip, context), SeatsConfig.make("seats", "R10"), max_new_tokens=3)
    assert isinstance(reply, str)
    assert reply == plugin.cut_at_stops(expected["answer"], ["\n\n"])
    assert expected["new_tokens"] <= 3

    # a doc without a video is answered with "" (scored wrong by the task) instead of ending the run
    bad = Instance(
        request_type="generate_until",
        arguments=(context, {}, lambda d: [], 0, "synthetic", "test"),
        idx=1,
        metadata={"task": "synthetic", "doc_id": 0, "repeats": 1},
    )
    assert lm.generate_until([bad]) == [""]


def test_plugin_refuses_bad_model_args_before_loading(lmms_api):
    cls = plugin.register()
    with pytest.raises(ValueError, match="unknown model_args"):
        cls.create_from_arg_string("pretrained=mini,methd=seats")
    with pytest.raises(ValueError, match="batch 1"):
        cls.create_from_arg_string("pretrained=mini", {"batch_size": 2})


@pytest.mark.parametrize(
    "value, parsed", [("R10", "R10"), ("0.06:0.35", (0.06, 0.35)), ("0.2/0.5", (0.2, 0.5))]
)
def test_retention_argument(value, parsed):
    assert plugin.parse_retention_arg(value) == parsed


def test_stop_strings_and_video_choice():
    assert plugin.cut_at_stops("B.\n\nBecause", ["\n\n", "Because"]) == "B."
    assert plugin.cut_at_stops("B", None) == "B"
    assert plugin.first_video(["a.png", "/x/clip.MP4"]) == "/x/clip.MP4"
    with pytest.raises(InputError, match="video files"):
        plugin.first_video([{"array": [0.0], "sampling_rate": 16000}])


def test_answerer_log_records_cost(tmp_path, clip):
    """SeatsAnswerer with a log_path writes one line per request with the prefill cost."""

    class FakeEngine:
        def prepare(self, video, context):
            return (video, context)

        def run(self, prep, config, max_new_tokens):
            return {
                "answer": "C",
                "flops": {"prefill": 2e12, "prefill_full": 8e12},
                "timing_ms": {"llm_prefill": 12.5},
                "retention_measured": {"video": 0.1, "audio": 0.4, "overall": 0.2},
            }

    log = tmp_path / "log.jsonl"
    a = plugin.SeatsAnswerer(method="random", retention="R25", log_path=str(log), engine=FakeEngine())
    assert a.answer("q", clip, {"max_new_tokens": 4}, tag={"task": "t", "doc_id": 7}) == "C"
    (line,) = [json.loads(x) for x in log.read_text().splitlines()]
    assert line["task"] == "t" and line["doc_id"] == 7 and line["method"] == "random"
    assert line["tflops"] == 2.0 and line["tflops_full"] == 8.0 and line["prefill_ms"] == 12.5
