# Shared settings of the GLIP specs (mmdet GLIP + ATSSVLFusionHead): one ONNX graph -- Swin-T, FPN (5 levels), the
# fusion head (VLFuse image<->text attention, BertEncoderLayer, DyConv with modulated deformable convs as
# GridSample) and mmdet's box/score decoding -- with BERT on the host (models/glip/dataset.py) and score threshold
# + per-phrase NMS on the host (models/glip/postprocess.py).
family = 'glip'
_decoder = 'pytest_autoware_deploy.models.glip.postprocess:decode_grounding'
_phrases = ['red square', 'red circle', 'green square', 'green circle', 'blue square', 'blue circle']

export = dict(mode='onnx', verify=True, device='cpu', work_dir='../work_dirs/glip')

runtime_io = dict(sample_idx=0)

# inputs: the normalized image, the host's BERT token features + mask, the positive map (phrase x token, 1/len);
# outputs: the head's raw cls_logits / bbox_pred / centerness over all anchors, decoded boxes, phrase scores
onnx_config = dict(
    opset_version=17,
    do_constant_folding=True,
    input_names=['img', 'text_feats', 'text_masks', 'positive_map'],
    output_names=['cls_logits', 'bbox_pred', 'centerness', 'boxes', 'phrase_scores'],
    save_file='glip.onnx',
    dynamic_axes={n: {0: 'batch'} for n in ['img', 'text_feats', 'text_masks', 'positive_map', 'cls_logits',
                                            'bbox_pred', 'centerness', 'boxes', 'phrase_scores']},
    export_params=True,
    keep_initializers_as_inputs=False,
)

backend_config = dict(common_config=dict(precision_policy='auto', max_workspace_size=1 << 30))

evaluation = dict(
    enabled=True, num_samples=-1, models_to_evaluate=['pytorch', 'onnx'],
    # phrase-to-box AP, phrases as COCO categories (faster-coco-eval); mmdet GLIP's test_cfg: score_thr 0.05
    kwargs=dict(class_names=_phrases, primary_metric='mAP', decoder=_decoder, output_name='phrase_scores',
                score_thr=0.05, nms_iou=0.6, max_per_img=100),
)

# raw head outputs element-wise; 'dets' (derived: score_thr 0.3, NMS 0.6) matched box to box across backends
verification = dict(
    num_samples=2, atol=1e-3, rtol=1e-3, reference='pytorch',
    outputs=dict(dets=dict(compare='detections2d', decoder=_decoder,
                           decoder_kwargs=dict(output_name='phrase_scores', score_thr=0.3, nms_iou=0.6),
                           iou=0.5, score_atol=1e-3, box_atol=0.05, max_unmatched=0, min_score=0.32,
                           policies=dict(fp16=dict(score_atol=0.01, box_atol=1.0)))),
)

benchmark = dict(warmup=3, rounds=10)
