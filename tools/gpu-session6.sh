#!/usr/bin/env bash
# Session 6 (2026-12-07): the GPU work of every issue in few device calls. Each part writes under $WORK/<part>;
# at the end everything is packed into $OUT/session6-<tag>.tgz and the log is $OUT/session6-<tag>.log
# (a device call brings back at most 8 files).
#   early     tools/gpu-session6-early.sh: ORT CUDA-graph probe, CUDA-only tests, BLIP-2 export under torch 2.11
#   awml      tools/gpu-session6-awml.sh: full-size CenterPoint from AWML's newest deploy config, end to end (issue 12)
#   families  tools/gpu-session6-families.sh: StreamPETR, FRNet, ConvNeXtPC demo specs on CUDA (issue 15)
#   glip      tools/gpu-session6-glip.sh: BLIP-2 diagnostic and spec, GLIP spec (issue 17)
#   bevfusion tools/gpu-session6-bevfusion.sh: both BEVFusion variants (issue 14)
# Usage: PARTS="early awml" TAG=a bash tools/gpu-session6.sh   (needs the staged wheels on PYTHONPATH)
set -uo pipefail
OUT=${OUT:-gpu_results}
TAG=${TAG:-run}
PARTS=${PARTS:-early awml families glip bevfusion}
export WORK=${WORK:-/tmp/gpu_work6}
mkdir -p "$OUT" "$WORK"
log="$OUT/session6-$TAG.log"
for part in $PARTS; do
  echo "=== part $part ($(date -u +%H:%M:%S))" | tee -a "$log"
  mkdir -p "$WORK/out_$part"
  OUT="$WORK/out_$part" WORK="$WORK/$part" bash "tools/gpu-session6-$part.sh" >> "$log" 2>&1
  echo "=== part $part exit $? ($(date -u +%H:%M:%S))" | tee -a "$log"
done
tar -C "$WORK" -czf "$OUT/session6-$TAG.tgz" $(cd "$WORK" && ls -d out_* 2>/dev/null)
