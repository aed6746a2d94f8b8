"""Code shared by the lidar 3D detectors (CenterPoint, TransFusion-L).

- ``synthetic``: deterministic ray-cast lidar scenes in AWML's T4 info format
- ``dataset``: the info.pkl reader (safe unpickler) and the samples loader
- ``voxelize``: hard voxelization, pillar feature decoration and the pillar scatter on the host
- ``layers``: mmdet3d's PillarFeatureNet, SECOND, SECONDFPN and SeparateHead with mmdet3d parameter names
- ``boxes``: box decoding helpers, circle NMS, gaussian heatmap targets

Importing this package is cheap (no torch).
"""
