"""`bench` on a CPU: real shapes reduced by default (the header says how), a progress line per variant on
stderr, the Stage-I statistic timed apart from selection, and full shapes only when asked (cost printed first)."""

from __future__ import annotations

import torch

from seats_core.cli import cli
from seats_core.models.adapter import OmniAdapter
from seats_core.speed import bench as B


def test_narrowed_shapes_keep_head_dims_and_projections():
    for shape in ("3b", "7b"):
        full, _ = B.shape_config(shape)
        cfg, notes = B.shape_config(shape, layers=14, encoder_layers=2, vocab=32768, width=8)
        tc, ftc = cfg.text_config, full.text_config
        assert tc.hidden_size // tc.num_attention_heads == ftc.hidden_size // ftc.num_attention_heads == 128
        assert tc.num_attention_heads % tc.num_key_value_heads == 0 and tc.num_key_value_heads >= 1
        assert tc.intermediate_size == ftc.intermediate_size // 8
        vc, ac = cfg.vision_config, cfg.audio_config
        assert (
            vc.hidden_size // vc.num_heads == full.vision_config.hidden_size // full.vision_config.num_heads
        )
        assert ac.d_model // ac.encoder_attention_heads == 64
        assert vc.out_hidden_size == ac.output_dim == tc.hidden_size  # the towers still feed the LLM
        assert any(n.startswith("widths / 8") for n in notes) and len(notes) == 5
    assert B.CPU_REDUCED["width"] > 1 and B.CPU_REDUCED["layers"] >= 13  # reduced by default on CPU


def test_reduced_7b_prefills_with_seats():
    cfg, _ = B.shape_config("7b", layers=14, encoder_layers=1, vocab=4096, width=8)
    thinker = B.build_thinker(cfg, torch.device("cpu"), torch.float32)
    inputs = B.fake_inputs(thinker, seconds=2, side=112)
    rows, _ = B.variants(thinker)
    seats = next(v for v in rows if v.name == "seats R10")
    B.measure(thinker, OmniAdapter(thinker), inputs, seats)
    assert seats.times["importance"][0] > 0 and seats.times["selection"][0] > 0
    assert seats.record["layer0"]["video"] < B.fake_inputs(thinker, 2, 112)["input_ids"].numel()


def test_progress_per_variant_and_statistic_column(capsys):
    argv = ["bench", "--shapes", "mini", "--seconds", "2", "--side", "112", "--repeats", "1", "--warmup", "0"]
    assert cli(argv + ["--device", "cpu"]) == 0
    out, err = capsys.readouterr()
    progress = [line for line in err.splitlines() if line.startswith("bench mini: round")]
    table = [
        line
        for line in out.splitlines()
        if line.startswith(("full", "ideal", "seats", "random", "div", "vis", "fastv", "omni"))
    ]
    table = [line for line in table if "skipped" not in line]
    assert len(progress) == len(table) > 5  # one line per variant measured
    assert "stat ms" in out


def test_full_shapes_print_the_cost_and_refuse_what_does_not_fit(capsys, monkeypatch):
    monkeypatch.setattr(B, "_available_memory", lambda: 2**30)
    assert cli(["bench", "--shapes", "3b", "--full-shapes", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "FULL shape on CPU" in err and "expected peak memory" in err and "min (" in err
    assert err.strip().splitlines()[-1].startswith("error: --full-shapes: 3b needs")
