"""Procedural RGB-D scenes ray-cast analytically in numpy: exact metric depth per seed.

Typical use::

    from ppd_ros.synthetic import generate_frame, generate_sequence
    frame = generate_frame(seed=3, width=128, height=96)
    frame.rgb, frame.depth, frame.valid, frame.K, frame.camera_info
"""
from .camera import CameraInfoFields, CameraIntrinsics, CameraPose, optical_rays, world_rays
from .depth_sensor_model import DepthSensorModel
from .generator import DEFAULT_HFOV_DEG, generate_frame, generate_room_walks, generate_sequence
from .primitives import Box, Cylinder, Plane, Sphere
from .renderer import DEFAULT_MAX_RANGE_M, SyntheticFrame, render
from .room_sampler import RoomScene, sample_room
from .scene import Scene, Sky
from .shading import DirectionalLight
from .textures import Material
from .trajectory import WobbleTrajectory

__all__ = [
    'Box', 'CameraInfoFields', 'CameraIntrinsics', 'CameraPose', 'Cylinder', 'DepthSensorModel',
    'DEFAULT_HFOV_DEG', 'DEFAULT_MAX_RANGE_M', 'DirectionalLight', 'Material', 'Plane',
    'RoomScene', 'Scene', 'Sky', 'Sphere', 'SyntheticFrame', 'WobbleTrajectory', 'generate_frame',
    'generate_room_walks', 'generate_sequence', 'optical_rays', 'render', 'sample_room',
    'world_rays',
    ]
