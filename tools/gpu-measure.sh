#!/usr/bin/env bash
# Measure the bundled CalibrationStatusClassification specs on a CUDA machine:
# pytorch (CUDA) and onnxruntime (CUDA EP, IOBinding) under the precision policies auto, fp32_tf32, fp16, int8.
#   OUT=gpu_results tools/gpu-measure.sh            # DEVICE=cuda:0 FRAMES=8 PARTS="demo full xdist" by default
# demo/full: both bundled specs, every policy, with latency, end-to-end, h2d/compute/d2h split and the batch sweep;
# xdist: two specs over two workers mapped onto DEVICE with --deploy-devices (one export each, one merged report).
# Writes benchmark JSON, deploy reports and the log into $OUT. Needs the package installed with the [gpu] extra
# (or its modules on PYTHONPATH with the entry points, as on the project's GPU lender).
set -uo pipefail
OUT=${OUT:-gpu_results}
DEVICE=${DEVICE:-cuda:0}
FRAMES=${FRAMES:-8}
PARTS=${PARTS:-demo full xdist}
PY=${PYTHON:-python3}
WD=${WORK:-/tmp/gpu_work}
mkdir -p "$OUT" "$WD"
exec > >(tee "$OUT/log.txt") 2>&1
set -x
$PY -c "import torch, onnxruntime as o; print(torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no cuda', o.__version__, o.get_available_providers())"
DATA=$WD/data
$PY -m pytest_autoware_deploy.models.calibration_status_classification.synthetic --out "$DATA/demo"
$PY -m pytest_autoware_deploy.models.calibration_status_classification.synthetic --out "$DATA/full" \
    --height 1860 --width 2880 --count "$FRAMES"
POL="precision.policies=['auto','fp32_tf32','fp16','int8']"
COMMON=(-p no:cacheprovider -o addopts= -rfEs --deploy-device "$DEVICE" --deploy-backends pytorch,onnx)
rc_demo=- rc_full=- rc_xdist=-
if [[ " $PARTS " == *" demo "* ]]; then
  $PY -m pytest "${COMMON[@]}" --deploy-config=deploy_specs/calibration_status_classification.py \
      --deploy-cfg-options "$POL" "runtime_io.info_pkl=$DATA/demo/info_val.pkl" \
      --deploy-work-dir "$WD/demo" --benchmark-json="$OUT/bench_demo.json"
  rc_demo=$?
fi
if [[ " $PARTS " == *" full "* ]]; then
  $PY -m pytest "${COMMON[@]}" --deploy-config=deploy_specs/calibration_status_classification_full.py \
      --deploy-cfg-options "$POL" "runtime_io.info_pkl=$DATA/full/info_val.pkl" "evaluation.num_samples=$FRAMES" \
      precision.fp16.overflow_samples=2 precision.int8.calibration_samples=4 \
      --deploy-work-dir "$WD/full" --benchmark-json="$OUT/bench_full.json"
  rc_full=$?
fi
if [[ " $PARTS " == *" xdist "* ]]; then
  # a second spec of another name (same model): its own export; specs never share a worker's state
  cp deploy_specs/calibration_status_classification.py deploy_specs/calibration_status_classification_copy.py
  $PY -m pytest -p no:cacheprovider -o addopts= -rfEs -n 2 --deploy-devices "$DEVICE" \
      --deploy-backends pytorch,onnx --deploy-cfg-options "runtime_io.info_pkl=$DATA/demo/info_val.pkl" \
      --deploy-config=deploy_specs/calibration_status_classification.py \
      --deploy-config=deploy_specs/calibration_status_classification_copy.py --deploy-work-dir "$WD/xdist"
  rc_xdist=$?
  rm -f deploy_specs/calibration_status_classification_copy.py
  find "$WD/xdist" -path '*cache/onnx/*/meta.json' | sort
fi
for k in demo full xdist; do
  if [ -f "$WD/$k/deploy_report.json" ]; then
    cp "$WD/$k/deploy_report.json" "$OUT/report_$k.json"; cp "$WD/$k/deploy_report.md" "$OUT/report_$k.md"
  fi
done
echo "exit codes: demo=$rc_demo full=$rc_full xdist=$rc_xdist"
