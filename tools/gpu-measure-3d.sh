#!/usr/bin/env bash
# Measure the 3D lidar pipelines on a CUDA machine: CenterPoint (two ONNX stages, host voxelization/scatter/decoding)
# and TransFusion-L, demo specs (trained checkpoints) and AWML full-size specs (random weights), pytorch (CUDA, strict
# fp32) and onnxruntime (CUDA EP) under the auto and fp16 policies; every stage and end to end (host code included).
#   OUT=gpu_results tools/gpu-measure-3d.sh      # DEVICE=cuda:0 PARTS="demo full" by default
set -uo pipefail
OUT=${OUT:-gpu_results}
DEVICE=${DEVICE:-cuda:0}
PARTS=${PARTS:-demo full}
PY=${PYTHON:-python3}
WD=${WORK:-/tmp/gpu_work_3d}
mkdir -p "$OUT" "$WD"
exec > >(tee -a "$OUT/log.txt") 2>&1
set -x
$PY -c "import torch, onnxruntime as o; print(torch.__version__, torch.cuda.get_device_name(0), o.__version__, o.get_available_providers())"
[ -f data/synthetic/lidar/info_val.pkl ] || $PY -m pytest_autoware_deploy.models.lidar_common.synthetic --out data/synthetic/lidar --splits val
COMMON=(-p no:cacheprovider -o addopts= -rfEs --deploy-device "$DEVICE" --deploy-backends pytorch,onnx
        --deploy-cfg-options "precision.policies=['auto','fp16']")
for part in $PARTS; do
  if [ "$part" = demo ]; then specs=(deploy_specs/centerpoint.py deploy_specs/transfusion_lidar.py)
  else specs=(deploy_specs/centerpoint_full.py deploy_specs/transfusion_lidar_full.py); fi
  $PY -m pytest "${COMMON[@]}" "${specs[@]/#/--deploy-config=}" --deploy-work-dir "$WD/$part" \
      --benchmark-json="$OUT/bench_3d_$part.json"
  echo "exit code $part: $?"
  cp "$WD/$part/deploy_report.json" "$OUT/report_3d_$part.json"; cp "$WD/$part/deploy_report.md" "$OUT/report_3d_$part.md"
done
