# GLIP-T (mmdet configs/glip/glip_atss_swin-t_*: Swin-T, FPN 256 x 5 levels, 6 DyHead blocks with early fusion,
# BERT-base 768-d, 256 text tokens) with random weights, at mmdet GLIP's test size 800x1333 padded to 32
# (800x1344): for GPU runs (latency, fp16, engine build). The metric means nothing here (random weights);
# the demo spec glip.py carries the trained one.
#   pytest --deploy-config=deploy_specs/glip_full.py --deploy-backends pytorch@cuda:0,onnx@cuda:0
_base_ = ['./_base_/glip.py']
_bert = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
             max_position_embeddings=512)
_t, _h, _w = 256, 800, 1344

export = dict(work_dir='../work_dirs/glip_full')

onnx_config = dict(save_file='glip_t.onnx')

backend_config = dict(
    model_inputs=[dict(name='img', min_shape=(1, 3, _h, _w), opt_shape=(1, 3, _h, _w), max_shape=(1, 3, _h, _w),
                       dtype='float32'),
                  dict(name='text_feats', min_shape=(1, _t, 768), opt_shape=(1, _t, 768), max_shape=(1, _t, 768),
                       dtype='float32'),
                  dict(name='text_masks', min_shape=(1, _t), opt_shape=(1, _t), max_shape=(1, _t), dtype='float32'),
                  dict(name='positive_map', min_shape=(1, 6, _t), opt_shape=(1, 6, _t), max_shape=(1, 6, _t),
                       dtype='float32')],
)

# GLIP-T's dimensions (models/glip/model.py GLIP_T), mmdet's from-scratch init under seed 0
model = dict(kwargs=dict(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=7, out_channels=256,
                         num_dyhead_blocks=6, fuse_embed_dim=2048, fuse_heads=8, gn_groups=16, octave_base_scale=8,
                         bert_config=_bert, seed=0))

# the synthetic scenes resized to 800x1344; the host's BERT-base is build_model(seed=0)'s
data = dict(kwargs=dict(data_file='../data/synthetic/glip/grounding_val.npz', bert_config=_bert, seed=0,
                        max_text_len=_t, image_size=(_h, _w)))

evaluation = dict(num_samples=4, thresholds=dict(min_accuracy=None, max_drop=None))  # random weights: no thresholds

verification = dict(num_samples=1, atol=1e-2, rtol=1e-2)

benchmark = dict(warmup=2, rounds=5)
