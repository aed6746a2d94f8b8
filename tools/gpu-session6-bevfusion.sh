#!/usr/bin/env bash
# One device call for issue 14 (session 6): both BEVFusion variants' demo specs -- bevfusion_lidar (one main-body
# graph with autoware::GetIndicePairsImplicitGemm / ImplicitGemm) and bevfusion_camera_lidar (image_backbone +
# main_body with autoware::QuickCumsumCuda as well) -- on pytorch@cuda:0 and onnx@cuda:0 under the auto and fp16
# policies, on each family's small split (FRAMES frames): export, verification (matched boxes vs PyTorch),
# accuracy (BEV mAP) and latency. The custom ops run through the onnxruntime-extensions Python reference kernels
# (on the CPU, inside the CUDA session), so onnx latency measures the reference, not Autoware's plugins.
# Needs onnxruntime-extensions importable next to onnxruntime-gpu (checked first: without it the custom-op graphs
# cannot run and the onnx cases fail saying so). Writes log.txt and results.tgz (reports, benchmark JSON) to $OUT.
set -uo pipefail
OUT=${OUT:-gpu_results}
PY=${PYTHON:-python3}
WD=${WORK:-/tmp/gpu_work6}
FAMILIES=${FAMILIES:-bevfusion_lidar bevfusion_camera_lidar}
mkdir -p "$OUT" "$WD/results"
exec > >(tee "$OUT/log.txt") 2>&1
export PYTHONUNBUFFERED=1
$PY -c "import torch, onnxruntime as o; print(torch.__version__, torch.cuda.get_device_name(0), o.__version__, o.get_available_providers())"
$PY -c "import onnxruntime_extensions as e; print('onnxruntime-extensions', e.__version__)" \
  || echo "onnxruntime-extensions missing: the custom-op graphs cannot run in ONNX Runtime here"
grep -m1 'model name' /proc/cpuinfo
COMMON=(-p no:cacheprovider -o addopts= -rfEs -q)
declare -A rc
source "$(dirname "$0")/gpu-common.sh"  # small_split
for spec in $FAMILIES; do
  kv=$(small_split "$spec") || { rc[$spec]=data; continue; }
  timeout 105 $PY -m pytest "${COMMON[@]}" --deploy-config="deploy_specs/$spec.py" \
      --deploy-backends pytorch@cuda:0,onnx@cuda:0 --deploy-work-dir "$WD/$spec" \
      --deploy-cfg-options "$kv" "precision.policies=['auto','fp16']" "benchmark.rounds=5" \
      --benchmark-json="$WD/results/bench_$spec.json"; rc[$spec]=$?
  cp "$WD/$spec/deploy_report.json" "$WD/results/report_$spec.json" 2>/dev/null
  cp "$WD/$spec/deploy_report.md" "$WD/results/report_$spec.md" 2>/dev/null
done
for k in "${!rc[@]}"; do echo "exit code $k=${rc[$k]}"; done
tar -C "$WD" -czf "$OUT/results.tgz" results
