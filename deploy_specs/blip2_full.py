# BLIP-2 OPT-2.7b's real dimensions (Salesforce/blip2-opt-2.7b's config.json) with random weights, for GPU runs:
#   pytest --deploy-config=deploy_specs/blip2_full.py --deploy-backends=pytorch@cuda:0,onnx@cuda:0,tensorrt_rtx@cuda:0
# ViT-g/14 (1408 wide, 39 layers, 16 heads, 224 px: 257 tokens), Q-Former 768 / 12 layers / cross-attention every
# 2nd layer / 32 queries, OPT-2.7b (2560 wide, 32 layers, 32 heads, FFN 10240, vocabulary 50272 + <image>).
# The model (3.8 B parameters, ~15 GB in fp32) is built only when a test needs it: collecting this spec (or
# loading it) allocates nothing. Data: the same synthetic grammar rendered at 224 px
#   python -m pytest_autoware_deploy.models.blip2.synthetic --out data/synthetic/blip2_224 --size 224 --count 8
# Random weights: no thresholds (captions are noise); the greedy tokens still must agree across backends, which
# random logits make tie-prone in fp16 (stages verify element-wise under auto only).
_base_ = ['./_base_/blip2.py']
_layers, _heads, _head_dim, _queries, _width = 32, 32, 80, 32, 2560
_past = [f'past_key_values.{i}.{kv}' for i in range(_layers) for kv in ('key', 'value')]
_present = [f'present.{i}.{kv}' for i in range(_layers) for kv in ('key', 'value')]

export = dict(work_dir='../work_dirs/blip2_full')

model = dict(
    kwargs=dict(
        vision_config=dict(hidden_size=1408, intermediate_size=6144, num_hidden_layers=39, num_attention_heads=16,
                           image_size=224, patch_size=14, layer_norm_eps=1e-6),
        qformer_config=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                            cross_attention_frequency=2, encoder_hidden_size=1408),
        text_config=dict(vocab_size=50304, hidden_size=_width, ffn_dim=10240, num_hidden_layers=_layers,
                         num_attention_heads=_heads, max_position_embeddings=2048, word_embed_proj_dim=_width),
        num_query_tokens=_queries, image_token_index=50265),
    checkpoint=None,
)

data = dict(kwargs=dict(data_file='../data/synthetic/blip2_224/captions_val.npz', limit=8))

pipeline = dict(
    kwargs=dict(max_new_tokens=16, prompt='', candidates='synthetic', max_candidates=8),
    stages=[
        dict(name='vision_qformer', module='vision_qformer', input_names=['pixel_values'],
             output_names=['image_embeds', 'query_output', 'language_model_inputs'], dynamic_axes=None),
        dict(name='lm_prefill', module='lm_prefill', input_names=['language_model_inputs', 'input_ids'],
             output_names=['logits'] + _present,
             dynamic_axes={'language_model_inputs': {0: 'batch'}, 'input_ids': {0: 'batch', 1: 'sequence_length'},
                           'logits': {0: 'batch', 1: 'total_sequence_length'},
                           **{n: {0: 'batch', 2: 'total_sequence_length'} for n in _present}},
             verify=['auto'],
             model_inputs=[dict(name='language_model_inputs', min_shape=[1, _queries, _width],
                                opt_shape=[1, _queries, _width], max_shape=[8, _queries, _width], dtype='float32'),
                           dict(name='input_ids', min_shape=[1, 1], opt_shape=[1, 1], max_shape=[8, 32],
                                dtype='int64')]),
        dict(name='lm_decode', module='lm_decode', input_names=['input_ids'] + _past,
             output_names=['logits'] + _present,
             dynamic_axes={'input_ids': {0: 'batch'}, 'logits': {0: 'batch'},
                           **{n: {0: 'batch', 2: 'past_sequence_length'} for n in _past},
                           **{n: {0: 'batch', 2: 'total_sequence_length'} for n in _present}},
             verify=['auto'],
             model_inputs=[dict(name='input_ids', min_shape=[1, 1], opt_shape=[1, 1], max_shape=[8, 1], dtype='int64')]
             + [dict(name=n, min_shape=[1, _heads, 1, _head_dim], opt_shape=[1, _heads, 40, _head_dim],
                     max_shape=[8, _heads, 128, _head_dim], dtype='float32') for n in _past]),
    ],
)

# random weights: element-wise checks at fp32 tolerances (stage outputs are O(1) after HF's init)
verification = dict(num_samples=1, atol=1e-3, rtol=1e-3)
evaluation = dict(enabled=True, num_samples=-1, models_to_evaluate=['pytorch', 'onnx'],
                  kwargs=dict(primary_metric='bleu4'), thresholds=dict(min_accuracy=None, max_drop=None))
