"""`seats_core.speed.bench`: the fake prompt matches the stock processor, and a tiny run's rows are self-consistent.

References: the processor's own media block for a real decoded clip; the FLOP formula of SEATS_SPEC §6 written
out here from the config; the KV-cache size from the cache layout (layers x tokens x K and V x kv width).
"""

from __future__ import annotations

import json

import pytest
import torch

from seats_core.cli import cli
from seats_core.models.adapter import OmniAdapter
from seats_core.models.family import family_of
from seats_core.models.qwen2_5_omni.shapes import thinker_config
from seats_core.prune.layout import build_layout
from seats_core.run.pipeline import Engine
from seats_core.speed import bench as B

FP32_BYTES = 4


def test_media_block_matches_processor(clip_short_av):
    engine = Engine("mini", device="cpu")
    inputs = engine.prepare(clip_short_av, "What happens?").inputs
    ids = inputs["input_ids"][0].tolist()
    cfg = engine.model.thinker.config
    start, end = ids.index(cfg.vision_start_token_id), ids.index(cfg.vision_end_token_id)
    mel = int(inputs["feature_attention_mask"].sum())
    tokens = B.media_token_ids(cfg)
    mine = B.media_block(
        tokens,
        tuple(inputs["video_grid_thw"][0].tolist()),
        engine.adapter,
        engine.adapter.audio_output_length(mel),
        float(inputs["video_second_per_grid"][0]),
    )
    assert mine == ids[start : end + 1]


def test_shape_config_reduction_keeps_ids_valid():
    cfg, notes = B.shape_config("7b", layers=4, encoder_layers=2, vocab=1000)
    tc = cfg.text_config
    assert tc.num_hidden_layers == 4 and len(tc.layer_types) == 4
    assert cfg.vision_config.depth == 2 and cfg.audio_config.encoder_layers == 2
    special = [getattr(cfg, f) for f in family_of(cfg).special_id_fields] + [tc.pad_token_id, tc.eos_token_id]
    assert all(0 <= i < 1000 for i in special) and len(set(special)) == len(special)
    assert tc.vocab_size == 1000 and len(notes) == 4
    full, none = B.shape_config("7b")
    assert none == [] and full.text_config.num_hidden_layers == 28


def test_fake_inputs_have_the_real_layout():
    cfg, _ = B.shape_config("mini")
    thinker = B.build_thinker(cfg, torch.device("cpu"), torch.float32)
    inputs = B.fake_inputs(thinker, seconds=6, side=224)
    ad = OmniAdapter(thinker)
    layout = build_layout(inputs["input_ids"][0], ad.token_ids, inputs["video_grid_thw"], 1.0)
    counts = layout.counts()
    assert inputs["video_grid_thw"][0].tolist() == [6, 16, 16]  # 12 frames at 2 fps, 224 / 14 patches
    assert counts["video"] == 6 * 8 * 8 and counts["audio"] == 6 * 25  # 25 audio tokens per second
    assert counts["text"] == B.FILLER_BEFORE + B.FILLER_AFTER + 4  # + vision/audio bos/eos
    assert layout.num_windows == 3


def _formula_flops(text_config, tokens_per_layer) -> int:
    """SEATS_SPEC §6 written out: 2SD^2 + 2SD*Dkv + 2S^2D + 3SDI per layer, + D*V for the last position."""
    D, Dff, V = text_config.hidden_size, text_config.intermediate_size, text_config.vocab_size
    Dkv = text_config.num_key_value_heads * (D // text_config.num_attention_heads)
    return (
        sum(2 * S * D * D + 2 * S * D * Dkv + 2 * S * S * D + 3 * S * D * Dff for S in tokens_per_layer)
        + D * V
    )


@pytest.fixture(scope="module")
def bench_json(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    argv = ["bench", "--shapes", "mini", "--seconds", "4", "--side", "224"]
    argv += ["--repeats", "2", "--warmup", "0", "--device", "cpu", "--json", str(out)]
    assert cli(argv) == 0
    return json.loads(out.read_text())


def test_bench_rows_are_consistent(bench_json):
    res = bench_json["shapes"]["mini"]
    L = res["num_layers"]
    assert L == 28 and res["reduced"] == []
    tc = thinker_config("mini").text_config
    rows = {r["name"]: r for r in res["rows"]}
    full = rows["full"]
    kinds = {r["kind"] for r in res["rows"]}
    assert {"full", "ideal", "seats", "random", "divprune-om", "visionzip-om", "fastv-om"} <= kinds
    kv_width = 2 * tc.num_key_value_heads * (tc.hidden_size // tc.num_attention_heads) * FP32_BYTES  # K and V
    for r in res["rows"]:
        assert len(r["tokens_per_layer"]) == L
        assert r["flops"] == _formula_flops(tc, r["tokens_per_layer"])
        assert r["flops_ratio"] == pytest.approx(full["flops"] / r["flops"])
        # every layer's cache ends with the tokens alive in the last layer (prune_kv) -- or all of them
        assert r["kv_bytes"] == L * r["tokens_per_layer"][-1] * kv_width
        assert r["kv_ratio"] == pytest.approx(r["kv_bytes"] / full["kv_bytes"])
        for stage in ("vision_encoder", "audio_encoder", "llm_prefill", "selection", "ttft"):
            ms = r["ms"][stage]
            assert len(ms["all"]) == 2 and ms["min"] <= ms["median"] <= ms["max"]
        assert r["ms"]["ttft"]["median"] >= r["ms"]["llm_prefill"]["median"] > 0
        for key in ("llm_speedup", "ttft_speedup", "ttft_speedup_vs_stock", "selection_pct", "encoders_ms"):
            assert r[key] >= 0
    assert full["llm_speedup"] == 1.0 and full["flops_ratio"] == 1.0 and full["selection_pct"] == 0.0
    assert rows["full (stock enc)"]["fast_encoder"] is False and full["fast_encoder"] is True
    assert [s["name"] for s in res["skipped"]] == ["fastv-om R10"]  # 2 full layers of 28 already exceed R10


def test_ideal_ceiling_keeps_ten_percent(bench_json):
    res = bench_json["shapes"]["mini"]
    ideal = next(r for r in res["rows"] if r["kind"] == "ideal")
    n = ideal["nontext_full"]
    for m in ("video", "audio"):
        assert ideal["layer0"][m] == max(1, int(B.IDEAL_KEEP * n[m] + 0.5))
    assert ideal["layer0"]["text"] == n["text"]
    assert len(set(ideal["tokens_per_layer"])) == 1  # chosen once before the LLM, nothing later
    seats = next(r for r in res["rows"] if r["name"] == "seats R10")
    assert seats["tokens_per_layer"][-1] == n["text"]  # Stage III: text only at the end


def test_bench_bad_shape_is_one_line(capsys):
    assert cli(["bench", "--shapes", "9b"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err
