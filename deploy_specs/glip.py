# GLIP (mmdet GLIP + ATSSVLFusionHead, issue 17) as a deployable phrase-grounding detector on the bundled
# synthetic scenes (1-3 coloured shapes, captions naming them plus one absent phrase), pytorch + onnxruntime:
#   make data-families && pytest --deploy-config=deploy_specs/glip.py
# Demo size (models/glip/train.py DEMO, the shipped checkpoint): 64x64 images, Swin embed 16 / depths 2,2,2,2 /
# window 4, FPN 32 x 5 levels, 2 DyHead blocks (VLFuse 64-d x 4 heads), BERT 32-d x 1 layer, 16 tokens.
# GLIP-T's real dimensions with random weights: glip_full.py.
_base_ = ['./_base_/glip.py']
_bert = dict(vocab_size=16, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
             max_position_embeddings=32)
_ckpt = '../pytest_autoware_deploy/models/glip/checkpoints/glip_demo.pth'

backend_config = dict(
    model_inputs=[dict(name='img', min_shape=(1, 3, 64, 64), opt_shape=(1, 3, 64, 64), max_shape=(4, 3, 64, 64),
                       dtype='float32'),
                  dict(name='text_feats', min_shape=(1, 16, 32), opt_shape=(1, 16, 32), max_shape=(4, 16, 32),
                       dtype='float32'),
                  dict(name='text_masks', min_shape=(1, 16), opt_shape=(1, 16), max_shape=(4, 16), dtype='float32'),
                  dict(name='positive_map', min_shape=(1, 6, 16), opt_shape=(1, 6, 16), max_shape=(4, 6, 16),
                       dtype='float32')],
)

model = dict(
    kwargs=dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window_size=4, out_channels=32,
                num_dyhead_blocks=2, fuse_embed_dim=64, fuse_heads=4, gn_groups=8, octave_base_scale=2,
                bert_config=_bert),
    checkpoint=_ckpt,
)

# make data-families: the synthetic val split (120 scenes); BERT runs here, on the host, from the checkpoint
data = dict(kwargs=dict(data_file='../data/synthetic/glip/grounding_val.npz', bert_config=_bert, checkpoint_file=_ckpt,
                        max_text_len=16))

evaluation = dict(thresholds=dict(min_accuracy=0.3, max_drop=0.01))

# fp16: the project's sensitive-op list (LayerNormalization, Softmax, reductions, Exp/Log/Pow/Sqrt ... stay fp32):
# the image-text attention's scores and BERT's LayerNorms are where fp16 would lose range or precision. The
# deformable convs' sampling (GridSample) stays fp32 too; its grid is computed in fp16 (a coordinate in [-1, 1]:
# up to 0.5 px off at GLIP-T's 1344-pixel width; the GPU run measures what that costs).
precision = dict(
    policies=['auto', 'fp16'],
    fp16=dict(op_block_list=['BatchNormalization', 'LayerNormalization', 'InstanceNormalization',
                             'GroupNormalization', 'Softmax', 'LogSoftmax', 'ReduceMean', 'ReduceSum',
                             'ReduceSumSquare', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum',
                             'ReduceLogSumExp', 'ReduceMax', 'Exp', 'Log', 'Pow', 'Sqrt', 'Reciprocal', 'Erf',
                             'CumSum', 'Einsum', 'TopK', 'NonMaxSuppression', 'RoiAlign', 'GridSample']),
)
