# Shared settings of the BLIP-2 specs (HuggingFace Blip2ForConditionalGeneration, OPT language model): three ONNX
# stages -- vision_qformer (ViT + Q-Former + language projection), lm_prefill (prompt pass, returns the KV cache),
# lm_decode (one token, KV cache as explicit past_key_values.* inputs / present.* outputs) -- with the tokenizer,
# gallery scoring and the greedy decode loop on the host (models/blip2/pipeline.py).
family = 'blip2'

export = dict(mode='onnx', verify=True, device='cpu', work_dir='../work_dirs/blip2')

# The pipeline's own input and final outputs: K greedy tokens, the gallery's caption log-likelihoods, the final
# KV cache (2L, 1, heads, T, head_dim) stacked key/value per layer.
onnx_config = dict(opset_version=17, do_constant_folding=True, input_names=['pixel_values'],
                   output_names=['output_ids', 'itm_scores', 'kv_cache'], save_file='blip2.onnx')

backend_config = dict(common_config=dict(precision_policy='auto', max_workspace_size=1 << 30))

verification = dict(
    num_samples=2, atol=1e-4, rtol=1e-3, reference='pytorch',
    # greedy tokens: equal on every backend at every step, else the first divergent step is the failure;
    # itm_scores and kv_cache stay element-wise (the KV cache after the whole decode: bounded drift)
    outputs=dict(output_ids=dict(compare='tokens',
                                 decoder='pytest_autoware_deploy.verify.tokens:sequences_from_outputs',
                                 decoder_kwargs=dict(output_name='output_ids'), steps=0)),
)

benchmark = dict(warmup=2, rounds=10)
