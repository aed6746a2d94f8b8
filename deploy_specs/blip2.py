# BLIP-2 (HuggingFace Blip2ForConditionalGeneration with OPT) as a deployable captioner on the bundled synthetic
# image-caption split, pytorch + onnxruntime on CPU:
#   make data-blip2 && pytest --deploy-config=deploy_specs/blip2.py
# Demo size (models/blip2/model.py DEMO, trained by models/blip2/train.py): 32x32 images, ViT 64 wide / 2 layers /
# patch 8 (17 tokens), Q-Former 64 / 2 layers / 8 queries, OPT 64 / 2 layers / 4 heads, 20-word vocabulary.
# BLIP-2 OPT-2.7b's real dimensions with random weights: blip2_full.py.
_base_ = ['./_base_/blip2.py']
_layers = 2
_past = [f'past_key_values.{i}.{kv}' for i in range(_layers) for kv in ('key', 'value')]
_present = [f'present.{i}.{kv}' for i in range(_layers) for kv in ('key', 'value')]
_heads, _head_dim, _queries, _width = 4, 16, 8, 64

model = dict(
    kwargs=dict(
        vision_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                           image_size=32, patch_size=8),
        qformer_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                            cross_attention_frequency=1, encoder_hidden_size=64),
        text_config=dict(vocab_size=20, hidden_size=64, ffn_dim=128, num_hidden_layers=_layers, num_attention_heads=4,
                         max_position_embeddings=64, word_embed_proj_dim=64),
        num_query_tokens=_queries),
    checkpoint='../pytest_autoware_deploy/models/blip2/checkpoints/blip2_opt_demo.pth',
)

# make data-blip2: the synthetic val split (48 images, every caption of the grammar once)
data = dict(kwargs=dict(data_file='../data/synthetic/blip2/captions_val.npz'))

pipeline = dict(
    kwargs=dict(max_new_tokens=8, prompt='', candidates='synthetic'),
    stages=[
        dict(name='vision_qformer', module='vision_qformer', input_names=['pixel_values'],
             output_names=['image_embeds', 'query_output', 'language_model_inputs'], dynamic_axes=None),
        # the prompt pass; the gallery scoring runs it with one row per caption (batch 48, 8 tokens)
        dict(name='lm_prefill', module='lm_prefill', input_names=['language_model_inputs', 'input_ids'],
             output_names=['logits'] + _present,
             dynamic_axes={'language_model_inputs': {0: 'batch'}, 'input_ids': {0: 'batch', 1: 'sequence_length'},
                           'logits': {0: 'batch', 1: 'total_sequence_length'},
                           **{n: {0: 'batch', 2: 'total_sequence_length'} for n in _present}},
             model_inputs=[dict(name='language_model_inputs', min_shape=[1, _queries, _width],
                                opt_shape=[1, _queries, _width], max_shape=[48, _queries, _width], dtype='float32'),
                           dict(name='input_ids', min_shape=[1, 1], opt_shape=[1, 1], max_shape=[48, 12],
                                dtype='int64')]),
        dict(name='lm_decode', module='lm_decode', input_names=['input_ids'] + _past,
             output_names=['logits'] + _present,
             dynamic_axes={'input_ids': {0: 'batch'}, 'logits': {0: 'batch'},
                           **{n: {0: 'batch', 2: 'past_sequence_length'} for n in _past},
                           **{n: {0: 'batch', 2: 'total_sequence_length'} for n in _present}},
             model_inputs=[dict(name='input_ids', min_shape=[1, 1], opt_shape=[1, 1], max_shape=[4, 1], dtype='int64')]
             + [dict(name=n, min_shape=[1, _heads, 1, _head_dim], opt_shape=[1, _heads, 12, _head_dim],
                     max_shape=[4, _heads, 48, _head_dim], dtype='float32') for n in _past]),
    ],
)

evaluation = dict(
    enabled=True, num_samples=-1, models_to_evaluate=['pytorch', 'onnx'],
    kwargs=dict(primary_metric='bleu4', decode='pytest_autoware_deploy.models.blip2.tokenizer:decode'),
    thresholds=dict(min_accuracy=0.5, max_drop=0.01),
)
