#!/usr/bin/env bash
# Session 6 GPU check of the three issue-15 families (StreamPETR, FRNet, CenterPoint-ConvNeXtPC) after the fixes
# of the session-5 findings (docs/gpu-results.md, session 5):
#   - StreamPETR: position_embedding writes img2lidar x coords element-wise (no TF32 MatMul on ~3000-sized
#     coordinates; CPU emulation of TF32: pos_embed 0.133 -> 0.003); the sequence check hands a memory top-k tie
#     (reference score gap within the tolerance) to the detection check of the final boxes.
#   - FRNet / ConvNeXtPC: 'auto' on CUDA is fp32_tf32, whose per-output tolerances (verification.outputs.*.policies
#     .fp32_tf32) now apply there: FRNet score_atol 0.03 (measured 0.0085 pytorch@cuda, 0.019 onnx@cuda),
#     ConvNeXtPC yaw_atol 0.1 (measured 0.061).
# Each demo spec on pytorch@cuda:0 and onnx@cuda:0 under auto and fp16, on its family's small split (FRAMES frames),
# plus the StreamPETR family tests (TF32 emulation, ties). Needs the staged wheels on PYTHONPATH (as session 5);
# writes log.txt and results.tgz (deploy reports, benchmark JSON) into $OUT. Budget: < 4 minutes on an H100.
set -uo pipefail
OUT=${OUT:-gpu_results}
PY=${PYTHON:-python3}
WD=${WORK:-/tmp/gpu_work6}
FAMILIES=${FAMILIES:-streampetr frnet centerpoint_convnextpc}
mkdir -p "$OUT" "$WD/results"
exec > >(tee "$OUT/log.txt") 2>&1
export PYTHONUNBUFFERED=1
$PY -c "import torch, onnxruntime as o; print(torch.__version__, torch.cuda.get_device_name(0), o.__version__, o.get_available_providers())"
COMMON=(-p no:cacheprovider -o addopts= -rfEs -q)
declare -A rc
source "$(dirname "$0")/gpu-common.sh"  # small_split
END=$((SECONDS + ${BUDGET_S:-225}))  # the whole script within 4 minutes: each part gets what is left
timeout 60 $PY -m pytest "${COMMON[@]}" tests/models/streampetr/test_streampetr.py -k "tf32 or tie or margin"; rc[unit]=$?
todo=$(echo $FAMILIES | wc -w)
for spec in $FAMILIES; do
  left=$(( (END - SECONDS) / todo )); todo=$((todo - 1))  # a fair share of what is left
  [ "$left" -gt 10 ] || { echo "no time left for $spec"; rc[$spec]=time; continue; }
  [ -f "deploy_specs/$spec.py" ] || { echo "no deploy_specs/$spec.py"; continue; }
  kv=$(small_split "$spec") || { rc[$spec]=data; continue; }
  timeout "$left" $PY -m pytest "${COMMON[@]}" --deploy-config="deploy_specs/$spec.py" \
      --deploy-backends pytorch@cuda:0,onnx@cuda:0 --deploy-work-dir "$WD/$spec" \
      --deploy-cfg-options "$kv" "precision.policies=['auto','fp16']" -k "not latency" \
      --benchmark-json="$WD/results/bench_$spec.json"; rc[$spec]=$?
  cp "$WD/$spec/deploy_report.json" "$WD/results/report_$spec.json" 2>/dev/null
  cp "$WD/$spec/deploy_report.md" "$WD/results/report_$spec.md" 2>/dev/null
done
for k in "${!rc[@]}"; do echo "exit code $k=${rc[$k]}"; done
tar -C "$WD" -czf "$OUT/results.tgz" results
