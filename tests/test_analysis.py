"""The dependency analysis (`seats_core.run.analysis`) against independent references on the miniature.

References: a plain thinker forward (full-run log-probs), the stock text model run on the text-only prompt
embeddings (knockout of both modalities at layer 0), a Pruner prefill with a Stage-III drop at layer k (knockout
of both from layer k), and eager attention weights (`output_attentions`) for the recomputed attention rows.
"""

from __future__ import annotations

import json

import pytest
import torch

from seats_core.cli import cli
from seats_core.data import synth
from seats_core.models.adapter import OmniAdapter
from seats_core.prune.attach import Drop, Pruner
from seats_core.prune.config import SeatsConfig
from seats_core.prune.layout import TEXT, VIDEO, TokenIds, build_layout
from seats_core.run import analysis as A
from seats_core.run.pipeline import Engine

QUESTION = "What colour is the square?"
ATOL = 1e-4  # fp32 on CPU: same math in a different order


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> str:
    """2 s with audio: two frame pairs and one window keep the O(L^2) knockout cheap on a CPU."""
    path = tmp_path_factory.mktemp("analysis") / "tiny.mp4"
    return synth.make_demo_clip(path, seconds=2, seed=3)["path"]


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine("mini", device="cpu")


@pytest.fixture(scope="module")
def prep(engine, tiny_clip):
    return engine.prepare(tiny_clip, QUESTION)


@pytest.fixture(scope="module")
def progress_calls() -> list:
    return []


@pytest.fixture(scope="module")
def result(engine, prep, progress_calls) -> dict:
    return A.analyze(engine, prep, progress=lambda f, msg: progress_calls.append((f, msg)))


def _layout(ad: OmniAdapter, inputs: dict):
    spg = float(inputs["video_second_per_grid"].reshape(-1)[0])
    return build_layout(inputs["input_ids"][0], ad.token_ids, inputs["video_grid_thw"], spg)


@torch.inference_mode()
def _plain_logprobs(engine, prep) -> torch.Tensor:
    """log-softmax of the last position's logits of a stock thinker forward (no hooks)."""
    out = engine.model.thinker(**prep.inputs, use_audio_in_video=True, use_cache=False)
    return torch.log_softmax(out.logits[0, -1].float(), -1)


def _kl(p_log: torch.Tensor, q_log: torch.Tensor) -> float:
    return float((p_log.exp() * (p_log - q_log)).sum())


def test_json_structure_and_invariants(result, engine, prep):
    L = engine.num_layers
    assert result["num_layers"] == L
    json.dumps(result)  # JSON-ready
    att = result["attention"]
    W = result["num_windows"]
    assert len(att["share"]) == L and all(len(s) == 3 for s in att["share"])
    for s in att["share"]:
        assert sum(s) == pytest.approx(1.0, abs=1e-5)
        assert all(x >= 0 for x in s)
    for key, share_index in (("video_windows", 1), ("audio_windows", 2)):
        assert len(att[key]) == L and all(len(w) == W for w in att[key])
        for layer in range(L):  # windows partition their modality
            assert sum(att[key][layer]) == pytest.approx(att["share"][layer][share_index], abs=1e-6)
    full = _plain_logprobs(engine, prep)
    assert result["answer_token_id"] == int(full.argmax())
    for mode in ("video", "audio", "both"):
        curve = result["knockout"][mode]
        assert len(curve["kl"]) == L + 1 and len(curve["answer_logprob"]) == L + 1
        assert curve["kl"][L] == 0.0
        assert curve["answer_logprob"][L] == pytest.approx(float(full[result["answer_token_id"]]), abs=ATOL)
        assert all(k >= 0 for k in curve["kl"])
        assert max(curve["kl"][:L]) > 0  # removing media changes the answer distribution somewhere
    counts = result["token_counts"]
    assert result["knockout"]["both"]["kept_tokens"] == counts["text"]
    assert result["knockout"]["video"]["kept_tokens"] == counts["text"] + counts["audio"]


def test_progress_reaches_one(result, progress_calls):
    fractions = [f for f, _ in progress_calls]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert all(isinstance(msg, str) for _, msg in progress_calls)


def test_attention_shares_hand_computed():
    """Uniform attention over a hand-made layout: every share is a token count over S."""
    ids = TokenIds(video=1, audio=2, image=3)
    # text x3, 4 video tokens (grid 4x2x2 -> one merged token per second), 60 audio tokens, text x2
    input_ids = torch.tensor([0, 0, 0] + [1] * 4 + [2] * 60 + [0, 0])
    layout = build_layout(input_ids, ids, torch.tensor([[4, 2, 2]]), 1.0)
    S = input_ids.numel()  # 69
    probs = torch.full((2, S), 1.0 / S)
    shares = A.attention_shares(probs, layout)
    assert shares["share"] == pytest.approx([5 / S, 4 / S, 60 / S])
    assert shares["video_windows"] == pytest.approx([2 / S, 2 / S])  # seconds 0-1 | 2-3
    assert shares["audio_windows"] == pytest.approx([50 / S, 10 / S])  # 25 tokens/s, 2 s windows


def test_question_rows_are_text_after_the_media(result, engine, prep):
    ids = prep.inputs["input_ids"][0]
    layout = _layout(engine.adapter, prep.inputs)
    rows = torch.tensor(result["question_positions"])
    assert (layout.modality[rows] == TEXT).all()
    assert int(rows.min()) > int(layout.nontext.nonzero().max())
    assert int(rows.max()) == ids.numel() - 1
    tok = engine.model.processor.tokenizer
    text = tok.decode(ids[rows])
    assert QUESTION in text and "vision_eos" not in text and "audio_eos" not in text


@torch.inference_mode()
def test_both_at_layer0_equals_text_only_prompt(result, engine, prep):
    """Reference: the stock text model on the text positions of the prompt embeddings (original positions)."""
    ad, thinker = engine.adapter, engine.model.thinker
    seen = {}

    def grab(module, args, kwargs):
        seen.update(embeds=kwargs["inputs_embeds"], pos=kwargs["position_ids"])

    handle = ad.text_model.register_forward_pre_hook(grab, with_kwargs=True)
    try:
        full = torch.log_softmax(
            thinker(**prep.inputs, use_audio_in_video=True, use_cache=False).logits[0, -1].float(), -1
        )
    finally:
        handle.remove()
    text = (_layout(ad, prep.inputs).modality == TEXT).nonzero().squeeze(-1)
    hidden = ad.text_model(
        inputs_embeds=seen["embeds"][:, text], position_ids=seen["pos"][..., text], use_cache=False
    ).last_hidden_state
    ref = torch.log_softmax(thinker.lm_head(hidden[:, -1]).float()[0], -1)
    answer = result["answer_token_id"]
    assert result["knockout"]["both"]["answer_logprob"][0] == pytest.approx(float(ref[answer]), abs=ATOL)
    assert result["knockout"]["both"]["kl"][0] == pytest.approx(_kl(full, ref), abs=ATOL)


@pytest.mark.parametrize("k", [1, 17])
@torch.inference_mode()
def test_both_matches_pruner_stage3(result, engine, prep, k):
    """Knocking out both modalities from layer k == a Pruner prefill that keeps only text from layer k."""
    thinker = engine.model.thinker
    full = _plain_logprobs(engine, prep)
    with Pruner(thinker, SeatsConfig.make("full", "R10"), plan=[Drop(k, "stage3", 0.0, 0.0)]) as pruner:
        out = thinker(**prep.inputs, use_audio_in_video=True, use_cache=False)
    assert pruner.trace.layer_counts()[k]["video"] == 0 and pruner.trace.layer_counts()[k - 1]["video"] > 0
    ref = torch.log_softmax(out.logits[0, -1].float(), -1)
    curve = result["knockout"]["both"]
    assert curve["answer_logprob"][k] == pytest.approx(float(ref[result["answer_token_id"]]), abs=ATOL)
    assert curve["kl"][k] == pytest.approx(_kl(full, ref), abs=ATOL)


@pytest.fixture(scope="module")
def eager(tiny_clip):
    engine = Engine("mini", device="cpu", attn="eager")  # same seeded weights as the SDPA engine
    return engine, engine.prepare(tiny_clip, QUESTION)


@torch.inference_mode()
def test_attention_rows_equal_eager_weights(eager):
    engine, prep = eager
    ad = engine.adapter
    out = engine.model.thinker(
        **prep.inputs, use_audio_in_video=True, use_cache=False, output_attentions=True
    )
    cap = A.capture_prefill(ad, prep.inputs, use_audio_in_video=True)
    layout = _layout(ad, prep.inputs)
    rows = A.question_rows(layout, prep.inputs["input_ids"], ad.media_delimiter_ids)
    for layer in (0, 13, engine.num_layers - 1):
        ref = out.attentions[layer][0, :, rows].float().mean(0)  # (R, S) head mean of the eager weights
        mine = A.attention_rows(ad, cap, layer, rows)
        torch.testing.assert_close(mine, ref, atol=1e-6, rtol=1e-5)
        shares = A.attention_shares(mine, layout)
        video = ref[:, layout.modality == VIDEO].sum(-1).mean()
        assert shares["share"][1] == pytest.approx(float(video), abs=1e-6)


@torch.inference_mode()
def test_eager_and_sdpa_knockouts_agree(eager, engine, prep):
    """run_layers' explicit causal mask (eager) and SDPA's causal path give the same continuation."""
    eng_e, prep_e = eager
    prep_s = prep
    ad_e, ad_s = eng_e.adapter, engine.adapter
    cap_e = A.capture_prefill(ad_e, prep_e.inputs, use_audio_in_video=True)
    cap_s = A.capture_prefill(ad_s, prep_s.inputs, use_audio_in_video=True)
    keep = (_layout(ad_s, prep_s.inputs).modality != VIDEO).nonzero().squeeze(-1)
    for k in (0, 9):
        torch.testing.assert_close(
            A.continue_from(ad_e, cap_e, k, keep), A.continue_from(ad_s, cap_s, k, keep), atol=ATOL, rtol=0
        )


def test_cli_writes_json(tmp_path, tiny_clip, capsys):
    out = tmp_path / "analysis.json"
    assert cli(["analyze", tiny_clip, "--question", QUESTION, "--device", "cpu", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["num_layers"] == 28 and set(data["knockout"]) == {"video", "audio", "both"}
    assert "layer" in capsys.readouterr().out


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    missing = tmp_path / "nope.mp4"
    assert cli(["analyze", str(missing), "--question", QUESTION]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err
