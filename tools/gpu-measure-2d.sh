#!/usr/bin/env bash
# Measure the full-size 2D specs (YOLOX_opt-S-TrafficLight 416, YOLOX-S 640, MobileNetv2 224; random weights) on a
# CUDA machine: pytorch (CUDA, strict fp32) and onnxruntime (CUDA EP, IOBinding) under auto, fp32_tf32, fp16, int8.
#   OUT=gpu_results tools/gpu-measure-2d.sh      # DEVICE=cuda:0 by default
# Writes benchmark JSON, deploy reports and the log into $OUT. Needs the package installed with the [gpu] extra
# (or installed with --no-deps into PYTHONPATH, as on the project's GPU lender).
set -uo pipefail
OUT=${OUT:-gpu_results}
DEVICE=${DEVICE:-cuda:0}
PY=${PYTHON:-python3}
WD=${WORK:-/tmp/gpu_work_2d}
mkdir -p "$OUT" "$WD"
exec > >(tee "$OUT/log.txt") 2>&1
set -x
$PY -c "import torch, onnxruntime as o; print(torch.__version__, torch.cuda.get_device_name(0), o.__version__, o.get_available_providers())"
$PY -m pytest_autoware_deploy.models.yolox.synthetic --scene traffic_light --out data/synthetic/yolox_traffic_light
$PY -m pytest_autoware_deploy.models.yolox.synthetic --scene road --out data/synthetic/yolox_road
$PY -m pytest_autoware_deploy.models.mobilenetv2_traffic_light.synthetic --out data/synthetic/mobilenetv2_traffic_light
$PY -m pytest -p no:cacheprovider -o addopts= -rfEs --deploy-device "$DEVICE" --deploy-backends pytorch,onnx \
    --deploy-config=deploy_specs/yolox_opt_traffic_light_full.py --deploy-config=deploy_specs/yolox_s_full.py \
    --deploy-config=deploy_specs/mobilenetv2_traffic_light_full.py \
    --deploy-cfg-options precision.int8.calibration_samples=8 \
    --deploy-work-dir "$WD" --benchmark-json="$OUT/bench_2d_full.json"
rc=$?
cp "$WD/deploy_report.json" "$OUT/report_2d_full.json"; cp "$WD/deploy_report.md" "$OUT/report_2d_full.md"
echo "exit code: $rc"
