"""The second family on its miniature (mini-qwen3: real Qwen3OmniMoe classes, 48 layers, DeepStack, MoE).

Each test compares against an independent reference: the plain model, a masked-key reference, the model's own
get_rope_index, FlopCounterMode.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from seats_core.method import PRESETS_QWEN3
from seats_core.models.family import Qwen3OmniAdapter, UnsupportedModel, get_adapter
from seats_core.prune.attach import Drop, Pruner
from seats_core.prune.config import SeatsConfig
from seats_core.prune.layout import AUDIO, TEXT, VIDEO, build_layout
from seats_core.run.flops import LLMDims, flops_by_layer, prefill_flops
from tests.helpers import hook_count, masked_reference, mini_qwen3, random_inputs

GEN = dict(max_new_tokens=4, do_sample=False, output_scores=True, return_dict_in_generate=True)
SIDE = 128  # 4 x 4 LLM tokens per frame pair at 32 px per token
COUNTER_FLOPS_PER_MAC = 2


def _inputs(proc, seconds=4, seed=0, audio=True):
    return random_inputs(proc, seconds=seconds, side=SIDE, audio=audio, seed=seed)


def _generate(model, inputs, has_audio=True):
    with torch.inference_mode():
        return model.generate(**inputs, use_audio_in_video=has_audio, **GEN)


def test_adapter_reads_the_qwen3_layout_from_the_config():
    model, _ = mini_qwen3("sdpa")
    ad = get_adapter(model)
    assert isinstance(ad, Qwen3OmniAdapter) and ad.num_layers == 48 and ad.deepstack_layers == 3
    m = ad.media_layout
    assert (m.positions_per_second, m.audio_tokens_per_second, m.token_block_px) == (13, 13, 32)
    assert (m.temporal_patch, m.audio_pool, m.seconds_per_chunk) == (2, 1, None)
    cfg = SeatsConfig.make("seats", "R10").resolve(ad)
    assert cfg.retention == PRESETS_QWEN3["R10"] and cfg.drop_layers == (27, 31, 35) and cfg.late_layer == 40


def test_unknown_family_names_itself_and_the_version():
    import transformers

    class Fake(torch.nn.Module):
        config = type("C", (), {"model_type": "llava_next"})()

    with pytest.raises(UnsupportedModel, match="llava_next") as e:
        get_adapter(Fake())
    assert transformers.__version__ in str(e.value)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_keep_all_hooks_are_identical_and_restored(attn):
    model, proc = mini_qwen3(attn)
    inputs = _inputs(proc)
    before = hook_count(model)
    ref = _generate(model, inputs)
    # drops inside the DeepStack layers (1, 2) and after them, all keeping everything
    plan = [Drop(0, "stage1", 1.0, 1.0), Drop(1, "stage2", 1.0, 1.0), Drop(2, "fastv", 1.0, 1.0)]
    plan.append(Drop(30, "stage2", 1.0, 1.0))
    with Pruner(model, SeatsConfig(), plan=plan) as pruner:
        assert hook_count(model) > before
        out = _generate(model, inputs)
    assert torch.equal(out.sequences, ref.sequences)
    for a, b in zip(out.scores, ref.scores):
        assert torch.equal(a, b)
    assert (pruner.trace.survives_to == 48).all()
    assert hook_count(model) == before
    again = _generate(model, inputs)
    assert torch.equal(again.sequences, ref.sequences)
    for a, b in zip(again.scores, ref.scores):
        assert torch.equal(a, b)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("method,retention", [("seats", "R10"), ("fastv-om", "R25"), ("divprune-om", "R15")])
def test_pruned_generate_equals_masked_reference(attn, method, retention):
    """DeepStack rows follow the survivors: the masked reference adds DeepStack to every visual token as stock
    does, and the survivors' states only match if the pruned run added the right rows to the right tokens."""
    model, proc = mini_qwen3(attn)
    inputs = _inputs(proc, seed=1)
    with Pruner(model, SeatsConfig.make(method, retention)) as pruner:
        out = _generate(model, inputs)
    trace = pruner.trace
    assert any(e["after"]["video"] < e["before"]["video"] for e in trace.events)
    L = trace.num_layers
    prefill_keep = [trace.survives_to > layer for layer in range(L)]
    final = trace.survives_to >= L
    with masked_reference(model, prefill_keep, [final] * L):
        ref = _generate(model, inputs)
    assert torch.equal(out.sequences, ref.sequences)
    for a, b in zip(out.scores, ref.scores):
        torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-4)


def test_fastv_drop_inside_deepstack_layers_differs_from_stock_only_by_the_dropped_tokens():
    """FastV's drop at K = 2 (before decoder layer 2, whose input still gets DeepStack row 1 added)."""
    model, proc = mini_qwen3("sdpa")
    inputs = _inputs(proc, seed=2)
    with torch.inference_mode(), Pruner(model, SeatsConfig.make("fastv-om", "R35")) as pruner:
        model(**inputs, use_audio_in_video=True)
    (event,) = pruner.trace.events
    assert event["layer"] == 2 and event["after"]["video"] < event["before"]["video"]


@pytest.mark.parametrize("audio", [True, False])
def test_layout_matches_rope_index(audio):
    model, proc = mini_qwen3("sdpa")
    seconds = 5
    inputs = _inputs(proc, seconds=seconds, audio=audio)
    ad = get_adapter(model)
    spg = ad.inputs_seconds_per_grid(inputs)
    lay = build_layout(
        inputs["input_ids"][0], ad.token_ids, inputs["video_grid_thw"], spg, **ad.layout_kwargs(spg)
    )
    lengths = inputs["feature_attention_mask"].sum(-1) if audio else None
    pos, _ = model.model.get_rope_index(
        inputs["input_ids"],
        video_grid_thw=inputs["video_grid_thw"],
        attention_mask=inputs["attention_mask"],
        use_audio_in_video=audio,
        audio_seqlens=lengths,
        second_per_grids=inputs["video_second_per_grid"],
    )
    pos = pos[:, 0].long()  # (3, S)
    v, a = lay.modality == VIDEO, lay.modality == AUDIO
    start = pos[0, v].min()
    assert torch.equal(pos[0, v] - start, (lay.t[v].double() * spg * 13).long())  # 13 positions per second
    assert torch.equal(pos[1, v] - start, lay.row[v])
    assert torch.equal(pos[2, v] - start, lay.col[v])
    gt, gh, gw = inputs["video_grid_thw"][0].tolist()
    assert lay.grid_hw == (gh // 2, gw // 2) == (SIDE // 32, SIDE // 32)
    # windows: one per temporal grid (the processor interleaves per frame pair)
    assert torch.equal((pos[0, v] - start) // 13, lay.window[v])
    if audio:
        assert int(a.sum()) == 13 * seconds
        assert torch.equal(pos[0, a] - start, lay.audio_index[a])
        assert torch.equal((pos[0, a] - start) // 13, lay.window[a])
        idx = torch.arange(lay.length)
        for w in range(gt):  # each frame pair's video comes before its audio
            assert idx[v & (lay.window == w)].max() < idx[a & (lay.window == w)].min()
        assert torch.allclose(
            lay.end_s[a] - lay.start_s[a], torch.full((int(a.sum()),), 1 / 13, dtype=torch.float64)
        )
    else:
        assert not a.any()
    assert (lay.window[lay.modality == TEXT] == -1).all()


@pytest.mark.parametrize("seq_len", [9, 40])
def test_flops_match_flop_counter_with_moe_as_it_runs(seq_len):
    """Eager attention and eager experts: every counted term is one matmul FlopCounterMode sees. The experts
    loop runs each expert on the tokens routed to it, so the count is router + k active experts per token."""
    model, _ = mini_qwen3("eager")
    tc = model.config.text_config
    old = tc._experts_implementation
    tc._experts_implementation = "eager"
    try:
        dims = LLMDims.from_config(tc)
        assert dims.query_dim == 128 != dims.hidden and len(dims.moe_layers) == 48
        lm = model.model.language_model
        gen = torch.Generator().manual_seed(0)
        embeds = torch.randn(1, seq_len, dims.hidden, generator=gen)  # (B, S, D)
        positions = torch.arange(seq_len).view(1, 1, seq_len).expand(3, 1, seq_len)  # (3, B, S)
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            hidden = lm(inputs_embeds=embeds, position_ids=positions, use_cache=False).last_hidden_state
            model.lm_head(hidden[:, -1:])
    finally:
        tc._experts_implementation = old
    counts = counter.get_flop_counts()
    for i, expected in enumerate(flops_by_layer(dims, [seq_len] * dims.num_layers)):
        (key,) = [k for k in counts if k.endswith(f".layers.{i}")]
        assert sum(counts[key].values()) == COUNTER_FLOPS_PER_MAC * expected, key
    assert counter.get_total_flops() == COUNTER_FLOPS_PER_MAC * prefill_flops(
        dims, [seq_len] * dims.num_layers
    )


def test_30b_a3b_dims_count_active_experts_only():
    from seats_core.models.qwen2_5_omni.shapes import thinker_config

    dims = LLMDims.from_config(thinker_config("30b-a3b").text_config)
    assert (dims.hidden, dims.query_dim, dims.kv_dim, dims.num_layers) == (2048, 4096, 512, 48)
    assert (dims.num_experts, dims.experts_per_tok, dims.moe_intermediate) == (128, 8, 768)
    S, D = 1000, 2048
    per_layer = 2 * S * D * 4096 + 2 * S * D * 512 + 2 * S * S * 4096 + S * D * 128 + 3 * S * D * 768 * 8
    assert flops_by_layer(dims, [S] * 48) == [per_layer] * 48


# ---- black-box: the CLI contract and the bench table --------------------------------------------------------
def _cli_json(tmp_path, clip, model, method, retention, capsys) -> tuple[dict, str]:
    import json

    from seats_core.cli import cli

    out = tmp_path / f"{model}-{method}.json"
    argv = ["run", clip, "--question", "What colour is the square?", "--model", model, "--method", method]
    argv += ["--retention", retention, "--max-new-tokens", "2", "--json", str(out)]
    code = cli(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(out.read_text()), captured.out


def test_cli_run_keeps_the_json_contract(tmp_path, clip_av, capsys):
    from tests.test_cli import _check_consistent, _rows

    r3, printed = _cli_json(tmp_path, clip_av, "mini-qwen3", "seats", "R10", capsys)
    r2, _ = _cli_json(tmp_path, clip_av, "mini", "seats", "R10", capsys)
    assert set(r3) == set(r2)  # same keys as the Qwen2.5 path
    assert r3["num_layers"] == 48 and r3["family"] == "qwen3_omni" and r2["family"] == "qwen2_5_omni"
    assert "mean nothing" in printed and "mean nothing" in r3["disclaimer"] and r2["disclaimer"] is None
    assert tuple(r3["retention"]) == PRESETS_QWEN3["R10"]
    _check_consistent({**r3, "tokens": _rows(r3)}, tuple(r3["retention"]))
    assert [e["layer"] for e in r3["events"]] == [0, 27, 31, 35, 39]
    assert all(c["video"] == 0 and c["audio"] == 0 for c in r3["layers"][39:])  # text only from layer 40
    cols = r3["tokens"]
    video = [i for i, m in enumerate(cols["modality"]) if m == "video"]
    # one window per frame pair
    assert max(cols["window"][i] for i in video) == max(cols["t"][i] for i in video)
    assert r3["geometry"]["block_px"] == 32 and r3["geometry"]["audio_tokens_per_second"] == 13


def test_every_method_runs_on_mini_qwen3(clip_short_av):
    """The CLI's path (Engine.prepare + Engine.run) for every method of the registry, one engine."""
    from seats_core.prune.methods import METHOD_NAMES
    from seats_core.run.pipeline import Engine
    from tests.test_cli import _check_consistent, _rows

    engine = Engine("mini-qwen3", device="cpu")
    prep = engine.prepare(clip_short_av, "What happens?")
    for method in METHOD_NAMES:
        retention = "0.3,1.0" if method == "fastv" else "R25"
        r = engine.run(prep, SeatsConfig.make(method, retention), max_new_tokens=2).to_dict()
        r["tokens"] = _rows(r)
        assert r["method"] == method and r["num_layers"] == 48
        _check_consistent(r, (1.0, 1.0) if method == "full" else tuple(r["retention"]))


def test_bench_prints_the_mini_qwen3_table(capsys):
    from seats_core.cli import cli

    argv = ["bench", "--shapes", "mini-qwen3", "--seconds", "2", "--side", "64", "--repeats", "1"]
    assert cli([*argv, "--warmup", "0", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "== mini-qwen3 on CPU" in out and "48 decoder layers" in out
    for row in ("full", "seats R10", "fastv-om R25", "divprune-om R25", "visionzip-om R25", "random R10"):
        assert any(line.startswith(row) for line in out.splitlines()), row


# ---- loading ------------------------------------------------------------------------------------------------
def test_real_qwen3_ids_fail_like_the_qwen25_path_when_offline(monkeypatch):
    from seats_core.models.loader import ModelLoadError, checkpoint_family, load_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    messages = {}
    for name in (
        "Qwen/Qwen2.5-Omni-7B",
        "Qwen/Qwen3-Omni-30B-A3B-Instruct",
        "Qwen/Qwen3-Omni-30B-A3B-Thinking",
    ):
        with pytest.raises(ModelLoadError, match="unreachable") as e:
            load_model(name, device="cpu")
        messages[name] = str(e.value).replace(name, "NAME")
        assert "\n" not in str(e.value) and "--model mini" in str(e.value)
    assert len(set(messages.values())) == 1  # the same one line, whatever the family
    assert checkpoint_family("Qwen/Qwen3-Omni-30B-A3B-Thinking") is Qwen3OmniAdapter


def test_local_qwen3_folder_loads_through_the_checkpoint_path(tmp_path):
    from seats_core.models.loader import load_model
    from seats_core.run.pipeline import Engine

    model, proc = mini_qwen3("sdpa")
    model.save_pretrained(tmp_path)
    proc.save_pretrained(tmp_path)
    loaded = load_model(str(tmp_path), device="cpu")
    assert isinstance(get_adapter(loaded.thinker), Qwen3OmniAdapter) and not loaded.is_mini
    for (n1, p1), (n2, p2) in zip(model.state_dict().items(), loaded.thinker.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2)
    engine = Engine(loaded)
    media = engine.media()
    assert media.factor == 32  # the family's token block, the paper's 128-144 tokens per frame pair
    assert (media.min_pixels, media.max_pixels) == (128 * 32 * 32, 144 * 32 * 32)


@pytest.mark.parametrize("start", [0, 1, 2, 3, 30])
def test_analysis_replay_reinjects_deepstack(start):
    """Continuing from a captured layer input on every token must give the full run's answer distribution:
    from layers 0-2 the replay has to add the DeepStack rows itself, as the stock text model does."""
    from seats_core.run.analysis import capture_prefill, continue_from

    model, proc = mini_qwen3("sdpa")
    ad = get_adapter(model)
    inputs = _inputs(proc, seed=4)
    with torch.inference_mode():
        cap = capture_prefill(ad, inputs, use_audio_in_video=True)
        assert cap.extras is not None and len(cap.extras["embeds"]) == 3
        full = torch.log_softmax(ad.last_logits(cap.final).float(), dim=-1)
        replay = continue_from(ad, cap, start, torch.arange(cap.final.shape[1]))
    torch.testing.assert_close(replay, full, atol=1e-5, rtol=1e-5)


def test_30b_a3b_cpu_reduction_keeps_the_config_valid():
    from seats_core.speed import bench as B

    cfg, notes = B.shape_config(
        "30b-a3b", **{k: B.CPU_REDUCED[k] for k in ("layers", "encoder_layers", "vocab")}
    )
    tc, vc = cfg.text_config, cfg.vision_config
    assert tc.num_hidden_layers == 14 and cfg.audio_config.encoder_layers == 2
    assert vc.depth == 3 and vc.deepstack_visual_indexes == [0, 1, 2]  # DeepStack keeps its three taps
    special = [getattr(cfg, f) for f in Qwen3OmniAdapter.special_id_fields] + [
        tc.pad_token_id,
        tc.eos_token_id,
    ]
    assert all(0 <= i < B.CPU_REDUCED["vocab"] for i in special) and len(set(special)) == len(special)
    cfg2, notes2 = B.shape_config("30b-a3b", experts=B.CPU_REDUCED["experts"])
    assert cfg2.text_config.num_experts == 8 and cfg2.text_config.num_experts_per_tok == 8
    assert any("experts 8 of 128" in n for n in notes2) and len(notes) == 4
