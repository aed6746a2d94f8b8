# Mirror of mmpretrain's config
# open-mmlab/mmpretrain @ v1.2.0, path 17a886cb5825cd8c26df4e65f7112d404b99fe12
# Keys, nesting and values as published; nothing edited.
# model settings
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='ResNet',
        depth=18,
        num_stages=4,
        out_indices=(3, ),
        style='pytorch'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=512,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5),
    ))
