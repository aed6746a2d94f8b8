#!/usr/bin/env bash
# One device call's worth of checks for the reliability / TensorRT-RTX / host-code work (2026-11-25, session 4):
#   1. TensorRT-RTX on this GPU: the bundled engines' runtime tests report the runtime's own verdict
#   2. per-device PyTorch models: the README example with pytorch@cuda:0 beside the CPU reference (defect 1)
#   3. int8 on this host's CPU (AVX-512 VNNI / AMX): the 7-bit-weight graphs give the AVX2 results
#   4. lidar host code in PyTorch on CUDA vs numpy (benchmarks/lidar_host.py) and full-size CenterPoint end to end
# Needs the staged wheels on PYTHONPATH (see docs/gpu-results.md) and writes logs/JSON into $OUT.
set -uo pipefail
OUT=${OUT:-gpu_results}
PY=${PYTHON:-python3}
WD=${WORK:-/tmp/gpu_work4}
PARTS=${PARTS:-rtx defect1 int8 lidar}
mkdir -p "$OUT" "$WD"
exec > >(tee "$OUT/log.txt") 2>&1
set -x
$PY -c "import torch, onnxruntime as o; print(torch.__version__, torch.cuda.get_device_name(0), torch.cuda.get_device_capability(0), o.__version__, o.get_available_providers())"
$PY -c "import tensorrt_rtx as t; print('tensorrt_rtx', t.__version__)"
grep -m1 -o -E 'avx512_vnni|amx_int8' /proc/cpuinfo | sort -u; grep -m1 'model name' /proc/cpuinfo
COMMON=(-p no:cacheprovider -o addopts= -rfEs)
declare -A rc
if [[ " $PARTS " == *" rtx "* ]]; then
  $PY -m pytest "${COMMON[@]}" tests/export/test_tensorrt_rtx.py -q; rc[rtx]=$?
fi
DATA=$WD/data
$PY -m pytest_autoware_deploy.models.calibration_status_classification.synthetic --out "$DATA/calib" >/dev/null
if [[ " $PARTS " == *" defect1 "* ]]; then
  $PY -m pytest "${COMMON[@]}" -q --deploy-config=deploy_specs/calibration_status_classification.py \
      --deploy-backends "pytorch,pytorch@cuda:0,onnx,tensorrt_rtx@cuda:0" \
      --deploy-cfg-options "runtime_io.info_pkl=$DATA/calib/info_val.pkl" --deploy-work-dir "$WD/defect1" \
      --benchmark-disable; rc[defect1]=$?
fi
if [[ " $PARTS " == *" int8 "* ]]; then
  $PY -m pytest "${COMMON[@]}" -q tests/export/test_precision.py tests/test_pipeline.py -k "int8"; rc[int8]=$?
fi
if [[ " $PARTS " == *" lidar "* ]]; then
  $PY benchmarks/lidar_host.py --device cuda:0 --json "$OUT/lidar_host.json"; rc[lidar]=$?
fi
for k in "${!rc[@]}"; do echo "exit code $k=${rc[$k]}"; done
