#!/usr/bin/env bash
# One device call's worth of GPU work for session 5 (2026-11-25, afternoon):
#   unit     the CUDA-only tests: device tensors through ONNX Runtime, pinned phases, CUDA graphs, lidar host on CUDA
#   copies   benchmarks/ort_host_copies.py: pageable vs pinned host copies, CUDA graph replay (issue 16 s.1)
#   e2e      full-size CenterPoint end to end with the host code on the GPU and tensors between the stages, vs the
#            stages' compute (issue 16 goal: <= 1.5x), plus the calibration spec with benchmark.cuda_graph
#   families every new family's demo spec on pytorch@cuda:0 and onnx@cuda:0 (auto, fp16), on its small split
# Needs the staged wheels on PYTHONPATH; writes log.txt and results.tgz (reports, benchmark JSON) into $OUT.
set -uo pipefail
OUT=${OUT:-gpu_results}
PY=${PYTHON:-python3}
WD=${WORK:-/tmp/gpu_work5}
PARTS=${PARTS:-unit copies e2e families}
FAMILIES=${FAMILIES:-swin bevfusion_lidar centerpoint_convnextpc frnet streampetr blip2}
mkdir -p "$OUT" "$WD/results"
exec > >(tee "$OUT/log.txt") 2>&1
export PYTHONUNBUFFERED=1
$PY -c "import torch, onnxruntime as o; print(torch.__version__, torch.cuda.get_device_name(0), o.__version__, o.get_available_providers())"
grep -m1 'model name' /proc/cpuinfo
COMMON=(-p no:cacheprovider -o addopts= -rfEs -q)
declare -A rc
source "$(dirname "$0")/gpu-common.sh"  # small_split
if [[ " $PARTS " == *" unit "* ]]; then
  $PY -m pytest "${COMMON[@]}" tests/backends/test_onnxruntime_cuda.py tests/backends/test_tensorrt_cuda.py \
      tests/models/lidar_common/test_host_torch.py; rc[unit]=$?
fi
if [[ " $PARTS " == *" copies "* ]]; then
  $PY benchmarks/ort_host_copies.py --json "$WD/results/ort_host_copies.json"; rc[copies]=$?
fi
if [[ " $PARTS " == *" e2e "* ]]; then
  [ -f data/synthetic/lidar/info_val.pkl ] || $PY -m pytest_autoware_deploy.models.lidar_common.synthetic \
      --out data/synthetic/lidar --splits val >/dev/null
  $PY -m pytest "${COMMON[@]}" --deploy-config=deploy_specs/centerpoint_full.py \
      --deploy-backends onnx@cuda:0,pytorch@cuda:0 --deploy-work-dir "$WD/cp_full" -k "latency" \
      --deploy-cfg-options "benchmark.cuda_graph=True" "evaluation.num_samples=4" \
      --benchmark-json="$WD/results/bench_centerpoint_full.json"; rc[e2e_cp]=$?
  cp "$WD/cp_full/deploy_report.json" "$WD/results/report_centerpoint_full.json"
  kv=$(small_split calibration_status_classification)
  $PY -m pytest "${COMMON[@]}" --deploy-config=deploy_specs/calibration_status_classification.py \
      --deploy-backends onnx@cuda:0,pytorch@cuda:0 --deploy-work-dir "$WD/calib" -k "latency" \
      --deploy-cfg-options "$kv" "benchmark.cuda_graph=True" \
      --benchmark-json="$WD/results/bench_calibration.json"; rc[e2e_calib]=$?
  cp "$WD/calib/deploy_report.json" "$WD/results/report_calibration.json"
fi
if [[ " $PARTS " == *" families "* ]]; then
  for spec in $FAMILIES; do
    [ -f "deploy_specs/$spec.py" ] || { echo "no deploy_specs/$spec.py"; continue; }
    kv=$(small_split "$spec") || { rc[$spec]=data; continue; }
    timeout 420 $PY -m pytest "${COMMON[@]}" --deploy-config="deploy_specs/$spec.py" \
        --deploy-backends pytorch@cuda:0,onnx@cuda:0 --deploy-work-dir "$WD/$spec" \
        --deploy-cfg-options "$kv" "precision.policies=['auto','fp16']" \
        --benchmark-json="$WD/results/bench_$spec.json"; rc[$spec]=$?
    cp "$WD/$spec/deploy_report.json" "$WD/results/report_$spec.json" 2>/dev/null
    cp "$WD/$spec/deploy_report.md" "$WD/results/report_$spec.md" 2>/dev/null
  done
fi
for k in "${!rc[@]}"; do echo "exit code $k=${rc[$k]}"; done
tar -C "$WD" -czf "$OUT/results.tgz" results
