# AWML's BEVFusion Swin-T image backbone at full size for GPU runs: embed 96, depths 2,2,6,2, heads 3,6,12,24,
# window 7, out_indices 1,2,3 -> GeneralizedLSSFPN([192, 384, 768] -> 256), image 384x768, 1..6 cameras
# (AWML's profile: min 1, opt 6, max 6) -> image_feats [N, 256, 48, 96]:
#   pytest --deploy-config=deploy_specs/swin_full.py --deploy-backends=pytorch@cuda:0,onnx@cuda:0
# No trained checkpoint ships: the weights are random (seeded), so verification and latency mean something and
# accuracy does not (evaluation off). Give an AWML checkpoint's image branch with --deploy-checkpoint (keys
# img_backbone.* / img_neck.*). The synthetic frames are resized to 384x768.
_base_ = ['./swin.py']

export = dict(work_dir='../work_dirs/swin_full')

backend_config = dict(
    common_config=dict(max_workspace_size=1 << 32),
    model_inputs=[dict(name='imgs', min_shape=(1, 3, 384, 768), opt_shape=(6, 3, 384, 768),
                       max_shape=(6, 3, 384, 768), dtype='uint8')],
)

model = dict(kwargs=dict(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=7,
                         out_channels=256), checkpoint=None)

data = dict(kwargs=dict(image_size=(384, 768)))

evaluation = dict(enabled=False, thresholds=dict(min_accuracy=None, max_drop=None))

verification = dict(num_samples=1)

benchmark = dict(warmup=10, rounds=50)
