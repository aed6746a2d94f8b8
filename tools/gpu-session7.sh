#!/usr/bin/env bash
# Session 7 (2026-12-07): one device call per group of GPU work. Needs the staged wheels on PYTHONPATH (as session 6:
# onnxruntime-gpu, mmengine-lite and its pure deps, onnxslim, faster-coco-eval, onnxruntime-extensions).
#   bevfusion  issue 14: BEVFusion-CL demo spec on pytorch@cuda:0 / onnx@cuda:0 under auto (TF32) and fp16 on the
#              8-frame small split (the comparator now weighs yaw by the head's |(sin, cos)|).
#   bevfusion_full  the full-size BEVFusion-CL spec (AWML's size, random weights) on 2 synthetic 6-camera 384x768
#              frames, exported on cuda:0 and timed (ONNX Runtime runs the custom ops through the CPU reference
#              kernels; random weights leave no detection to compare, so the box agreement skips saying so).
#   streampetr issue 15: the (now trained) StreamPETR demo spec on pytorch@cuda:0 / onnx@cuda:0 (auto, fp16) on its small split.
#   frnet      issue 15: the FRNet demo spec likewise (fp16's score_atol now fp32_tf32's 0.03).
# Each part writes log.txt and results.tgz under $WORK/out_<part>; everything is packed into $OUT/session7-$TAG.tgz
# and the log is $OUT/session7-$TAG.log (a device call brings back at most 8 files).
# Usage: PARTS="bevfusion" TAG=a bash tools/gpu-session7.sh
set -uo pipefail
OUT=${OUT:-gpu_results}
TAG=${TAG:-run}
PARTS=${PARTS:-bevfusion}
PY=${PYTHON:-python3}
export WORK=${WORK:-/tmp/gpu_work7}
mkdir -p "$OUT" "$WORK"
log="$OUT/session7-$TAG.log"
COMMON=(-p no:cacheprovider -o addopts= -rfEs -q)
WD=$WORK
source "$(dirname "$0")/gpu-common.sh"  # small_split
spec_run() {  # spec_run NAME TIMEOUT EXTRA_ARGS... : one spec on CUDA, its report and benchmark JSON kept
  local name=$1 t=$2; shift 2
  timeout "$t" $PY -m pytest "${COMMON[@]}" --deploy-work-dir "$WORK/$name" \
      --benchmark-json="$WORK/results/bench_$name.json" "$@"
  echo "exit code $name=$?"
  cp "$WORK/$name/deploy_report.json" "$WORK/results/report_$name.json" 2>/dev/null
  cp "$WORK/$name/deploy_report.md" "$WORK/results/report_$name.md" 2>/dev/null
}
mkdir -p "$WORK/results"
{
$PY -c "import torch, onnxruntime as o; print(torch.__version__, torch.cuda.get_device_name(0), o.__version__, o.get_available_providers())"
for part in $PARTS; do
  echo "=== part $part ($(date -u +%H:%M:%S))"
  case $part in
    bevfusion)
      kv=$(small_split bevfusion_camera_lidar)
      spec_run bevfusion_camera_lidar 140 --deploy-config=deploy_specs/bevfusion_camera_lidar.py \
          --deploy-backends pytorch@cuda:0,onnx@cuda:0 \
          --deploy-cfg-options "$kv" "precision.policies=['auto','fp16']" "benchmark.rounds=5"
      ;;
    bevfusion_full)
      $PY -m pytest_autoware_deploy.models.bevfusion_camera_lidar.synthetic --out "$WORK/data/clfull" --splits val \
          --frames 2 --height 384 --width 768 --cameras 6
      spec_run bevfusion_camera_lidar_full 240 --deploy-config=deploy_specs/bevfusion_camera_lidar_full.py \
          --deploy-backends pytorch@cuda:0,onnx@cuda:0 \
          --deploy-cfg-options "runtime_io.info_pkl=$WORK/data/clfull/info_val.pkl" "benchmark.rounds=5"
      ;;
    streampetr|frnet)
      kv=$(small_split $part)
      spec_run $part 130 --deploy-config=deploy_specs/$part.py \
          --deploy-backends pytorch@cuda:0,onnx@cuda:0 \
          --deploy-cfg-options "$kv" "precision.policies=['auto','fp16']" -k "not latency"
      ;;
    *) echo "unknown part $part" ;;
  esac
  echo "=== part $part done ($(date -u +%H:%M:%S))"
done
} > >(tee "$log") 2>&1
tar -C "$WORK" -czf "$OUT/session7-$TAG.tgz" results
