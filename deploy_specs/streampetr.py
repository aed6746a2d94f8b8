# StreamPETR (AWML projects/StreamPETR; Autoware autoware_camera_streampetr) on the bundled synthetic camera
# sequences, pytorch + onnxruntime on CPU, three ONNX graphs with the temporal memory carried by the host:
#   python -m pytest_autoware_deploy.models.streampetr.synthetic --out data/synthetic/streampetr
#   pytest --deploy-config=deploy_specs/streampetr.py
# Demo size: 5 cameras 64x112, stride-8 small ResNet (8x14 features), 64-wide head, 144 queries, memory 128
# (32 propagated, top-32 pushed per frame), 2 decoder layers, +-20 m; the shipped checkpoint
# (models/streampetr/train.py). AWML's size is streampetr_full.py.
_base_ = ['./_base_/streampetr.py']
_range = [-20.0, -20.0, -2.0, 20.0, 20.0, 4.0]

runtime_io = dict(info_pkl='../data/synthetic/streampetr/info_val.pkl', sample_idx=0)

model = dict(
    kwargs=dict(num_classes=3, num_cameras=5, img_size=[64, 112], backbone_channels=[16, 32, 64], stem=16,
                backbone_strides=[2, 2, 1], embed_dims=64, num_query=144, memory_len=128, topk_proposals=32,
                num_propagated=32, num_layers=2,
                num_heads=4, ffn_dims=128, depth_num=16, depth_start=1.0, depth_max=30.0, pc_range=_range),
    checkpoint='../pytest_autoware_deploy/models/streampetr/checkpoints/streampetr_demo.pth',
)

pipeline = dict(kwargs=dict(memory_len=128, embed_dims=64, pc_range=_range, max_num=60, score_threshold=0.1,
                            nms_radius=1.0, post_max_size=60))

# The shipped demo checkpoint (train.py's defaults, 28 epochs on the CPU, ~12 min): val mAP 0.32 in PyTorch (car 0.37,
# bicycle 0.25, pedestrian 0.35; AP@0.5/1/2/4 m 0.01/0.18/0.49/0.61); the floor is ~0.8x that. max_drop judges onnx
# (and fp16/int8) against pytorch.
evaluation = dict(thresholds=dict(min_accuracy=0.25, max_drop=0.02))
