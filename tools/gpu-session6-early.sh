#!/usr/bin/env bash
# Session 6, first device call (after the wheels are staged): three diagnoses that need the H100 image's torch 2.11.
#   graph   benchmarks/ort_cuda_graph_probe.py: why ONNX Runtime's CUDA-graph replay timed slower (session 5)
#   unit    the CUDA-only tests as they stand (baseline for this session's changes)
#   blip2   the BLIP-2 stage-export test under torch 2.11 with the image's transformers and with the lock's 5.24.0
#           (session 5: lm_decode lost its KV-cache inputs there): torch or transformers?
set -uo pipefail
OUT=${OUT:-gpu_results}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
exec > >(tee "$OUT/log_early.txt") 2>&1
export PYTHONUNBUFFERED=1
$PY -c "import torch, onnxruntime as o, transformers as t; print(torch.__version__, torch.cuda.get_device_name(0), o.__version__, t.__version__)"
COMMON=(-p no:cacheprovider -o addopts= -rfEs -q)
timeout 150 $PY benchmarks/ort_cuda_graph_probe.py --json "$OUT/ort_cuda_graph_probe.json" | tail -n 25
timeout 60 $PY benchmarks/ort_cuda_graph_probe.py --shape 1,5,120,192 --json "$OUT/ort_cuda_graph_probe_small.json" \
  | grep -E '^(plain|runner|fresh|after)'
timeout 150 $PY -m pytest "${COMMON[@]}" tests/backends/test_onnxruntime_cuda.py tests/backends/test_tensorrt_cuda.py
BT=tests/models/blip2/test_model.py
echo "== blip2, image transformers"; timeout 120 $PY -m pytest "${COMMON[@]}" -p pytester -x "$BT" 2>&1 | tail -n 40
mkdir -p /tmp/tf524 && $PY -m pip install -q --no-index --no-deps --target /tmp/tf524 .whl/transformers-5.24.0-*.whl
echo "== blip2, transformers 5.24.0"; PYTHONPATH=/tmp/tf524:$PYTHONPATH timeout 120 $PY -m pytest "${COMMON[@]}" -p pytester -x "$BT" 2>&1 | tail -n 40
