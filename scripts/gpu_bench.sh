#!/usr/bin/env bash
# The prepared GPU run for issue 3 (parts 3 and 4): one command sequence for a lent H100/H200, < 8 minutes.
#
#   bash scripts/gpu_bench.sh            # from the repository root; results go to $OUT (default out/gpu)
#
# 1. `seats_core.speed.bench` at the real Qwen2.5-Omni-3B and -7B thinker shapes (random weights, bf16, SDPA), a 30 s
#    clip at 448x448, 2 fps, with audio (~8.5k prompt tokens at 7B): full vs SEATS vs baselines at R10/R25 plus
#    the ideal 10% ceiling; table on stdout, all rows in bench_gpu.json.
# 2. `seats_core.speed.encoder` at the 7B vision shape, same clip: stock vs fast_vision encoder.
#
# Installs nothing from the network. It needs transformers >= 5.23 (the version this tree is written against;
# the device image has shipped older ones): if a `.whl/` folder with the transformers 5.23.0 wheel was carried
# (pure Python; its other requirements are already on the image), it is installed into /tmp/site first.
# Both tools run as `python3 -m seats_core.<module>` so that nothing imports the media stack (PyAV).
set -uo pipefail
OUT=${OUT:-out/gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
python3 -c "import torch, transformers; print('torch', torch.__version__, '| transformers', transformers.__version__, \
'|', torch.cuda.get_device_name() if torch.cuda.is_available() else 'NO CUDA')" 2>&1 | tee "$OUT/env.txt"
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv >>"$OUT/env.txt" 2>&1

# ~1-3 min: two model builds (3B, 7B), 12 variants x (1 warm-up + 3 timed) prefills each.
timeout 360 python3 -m seats_core.speed.bench --shapes 3b,7b --seconds 30 --side 448 --device cuda --dtype bf16 \
  --repeats 3 --warmup 1 --verbose --json "$OUT/bench_gpu.json" 2>&1 | tee "$OUT/bench_gpu.txt"
echo "bench exit: ${PIPESTATUS[0]}" | tee -a "$OUT/bench_gpu.txt"

# ~30 s: the vision encoder alone, stock vs fast, interleaved.
timeout 150 python3 -m seats_core.speed.encoder --shape 7b --seconds 30 --side 448 --device cuda --dtype bf16 \
  --repeats 5 --warmup 2 2>&1 | tee "$OUT/bench_encoder_7b.txt"
echo "bench_encoder exit: ${PIPESTATUS[0]}" | tee -a "$OUT/bench_encoder_7b.txt"
