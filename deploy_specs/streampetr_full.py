# StreamPETR at AWML's deployed size (projects/StreamPETR t4dataset 480x640 configs; the v2.5 model-zoo ONNX:
# x [1, 5, 256, 30, 40], pos_embed [1, 6000, 256], pre_memory_* [1, 1024, ...]) with random weights, for GPUs:
#   python -m pytest_autoware_deploy.models.streampetr.synthetic --out data/synthetic/streampetr_full \
#       --height 480 --width 640 --range 50 --scenes 2
#   pytest --deploy-config=deploy_specs/streampetr_full.py --deploy-backends=pytorch@cuda:0,onnx@cuda:0
# 5 cameras 480x640, stride-16 image features (a small ResNet stands in for VoVNet-99/CPFPN: say so when quoting
# latency), 256-wide head, 644 queries + 256 propagated, memory 1024, top-256 pushed per frame, 6 decoder layers,
# 64 depth bins, +-61.2 m, AWML's five T4 classes. Accuracy thresholds are off (random weights; the synthetic data
# has three of the five classes); --deploy-checkpoint takes a checkpoint of this model.
_base_ = ['./_base_/streampetr.py']
_classes = ['car', 'truck', 'bus', 'bicycle', 'pedestrian']
_range = [-61.2, -61.2, -10.0, 61.2, 61.2, 10.0]
name = 'streampetr_full'

export = dict(work_dir='../work_dirs/streampetr_full')
runtime_io = dict(info_pkl='../data/synthetic/streampetr_full/info_val.pkl', sample_idx=0)

model = dict(
    kwargs=dict(num_classes=5, num_cameras=5, img_size=[480, 640], backbone_channels=[64, 128, 256], stem=32,
                embed_dims=256, num_query=644, memory_len=1024, topk_proposals=256, num_propagated=256, num_layers=6,
                num_heads=8, ffn_dims=2048, depth_num=64, depth_start=1.0, depth_max=61.2, pc_range=_range),
    checkpoint=None,
)

pipeline = dict(kwargs=dict(memory_len=1024, embed_dims=256, pc_range=_range, max_num=300, score_threshold=0.1,
                            sequence_check=dict(frames=4, sequences=1)))

data = dict(kwargs=dict(classes=_classes))
evaluation = dict(kwargs=dict(class_names=_classes), thresholds=dict(min_accuracy=None, max_drop=None))
