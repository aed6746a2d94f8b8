#!/usr/bin/env bash
# One device call's worth of GPU work for session 6 (issue 17: GLIP, and BLIP-2's lm_decode export):
#   diag   BLIP-2 on this torch/transformers: the keyword OPT's forward takes its KV cache under, the lm_decode
#          stage exported alone (its graph inputs must be input_ids + past_key_values.*), and whether the decode
#          logits depend on the past (they did not under torch 2.11 + transformers 5.17: BLEU 0 in session 5)
#   blip2  the blip2 demo spec on pytorch@cuda:0 and onnx@cuda:0, auto + fp16, on its small split
#   glip   the glip demo spec likewise (phrase-to-box AP, raw head outputs element-wise, detections matched)
#   full   (not in the default PARTS) glip_full.py (GLIP-T, 800x1344, 256 tokens, random weights): latency only
# Needs the staged wheels on PYTHONPATH; writes log.txt and results.tgz (reports, benchmark JSON) into $OUT.
# Budget: about 3.5 minutes with the default PARTS (each spec run is capped by timeout).
set -uo pipefail
OUT=${OUT:-gpu_results}
PY=${PYTHON:-python3}
WD=${WORK:-/tmp/gpu_work6}
PARTS=${PARTS:-diag blip2 glip}
mkdir -p "$OUT" "$WD/results"
exec > >(tee "$OUT/log.txt") 2>&1
export PYTHONUNBUFFERED=1
$PY -c "import torch, transformers, onnxruntime as o; print(torch.__version__, transformers.__version__, torch.cuda.get_device_name(0), o.__version__, o.get_available_providers())"
COMMON=(-p no:cacheprovider -o addopts= -rfEs -q)
declare -A rc
source "$(dirname "$0")/gpu-common.sh"  # small_split
if [[ " $PARTS " == *" diag "* ]]; then
  timeout 90 $PY - "$WD/diag" <<'PY'; rc[diag]=$?
import sys, pathlib, torch, onnx
from pytest_autoware_deploy.models.blip2.model import DEMO, build_model, cache_keyword, kv_names
out = pathlib.Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
m = build_model(**DEMO)
lm = m.language_model
print("OPT forward takes the cache as:", cache_keyword(lm))
cfg = m.config.text_config
hd = cfg.hidden_size // cfg.num_attention_heads
past = [torch.randn(1, cfg.num_attention_heads, 5, hd) for _ in range(2 * cfg.num_hidden_layers)]
ids = torch.tensor([[3]])
with torch.no_grad():
    a = m.lm_decode(ids, *past)[0]; b = m.lm_decode(ids, *[p * 0.5 for p in past])[0]
print("decode logits depend on the past:", not torch.allclose(a, b), "max |diff|", float((a - b).abs().max()))
names = ["input_ids"] + kv_names(cfg.num_hidden_layers, "past_key_values")
path = out / "lm_decode.onnx"
torch.onnx.export(m.lm_decode, (ids, *past), str(path), input_names=names,
                  output_names=["logits"] + kv_names(cfg.num_hidden_layers, "present"), opset_version=17, dynamo=False)
got = [i.name for i in onnx.load(str(path)).graph.input]
print("lm_decode graph inputs:", got, "OK" if got == names else f"MISSING {sorted(set(names) - set(got))}")
sys.exit(0 if got == names else 1)
PY
fi
for spec in blip2 glip; do
  [[ " $PARTS " == *" $spec "* ]] || continue
  kv=$(small_split "$spec") || { rc[$spec]=data; continue; }
  timeout 100 $PY -m pytest "${COMMON[@]}" --deploy-config="deploy_specs/$spec.py" \
      --deploy-backends pytorch@cuda:0,onnx@cuda:0 --deploy-work-dir "$WD/$spec" \
      --deploy-cfg-options "$kv" "precision.policies=['auto','fp16']" "benchmark.rounds=5" \
      --benchmark-json="$WD/results/bench_$spec.json"; rc[$spec]=$?
  cp "$WD/$spec/deploy_report.json" "$WD/results/report_$spec.json" 2>/dev/null
  cp "$WD/$spec/deploy_report.md" "$WD/results/report_$spec.md" 2>/dev/null
done
if [[ " $PARTS " == *" full "* ]]; then
  kv=$(small_split glip_full) || rc[full]=data
  timeout 150 $PY -m pytest "${COMMON[@]}" --deploy-config=deploy_specs/glip_full.py \
      --deploy-backends pytorch@cuda:0,onnx@cuda:0 --deploy-work-dir "$WD/glip_full" -k "latency" \
      --deploy-cfg-options "$kv" "precision.policies=['auto','fp16']" \
      --benchmark-json="$WD/results/bench_glip_full.json"; rc[full]=$?
  cp "$WD/glip_full/deploy_report.json" "$WD/results/report_glip_full.json" 2>/dev/null
fi
for k in "${!rc[@]}"; do echo "exit code $k=${rc[$k]}"; done
tar -C "$WD" -czf "$OUT/results.tgz" results
