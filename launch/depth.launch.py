"""Launch ppd_ros depth_node with the shipped parameters.

    ros2 launch ppd_ros depth.launch.py image:=/camera/color/image_raw \
        camera_info:=/camera/color/camera_info namespace:=front steps:=4
    # metric depth from an RGB-D camera's registered depth:
    ros2 launch ppd_ros depth.launch.py image:=/camera/color/image_raw \
        camera_info:=/camera/color/camera_info depth_mode:=reference \
        depth_reference:=/camera/aligned_depth_to_color/image_raw
    # the official Large weights (in models/, see models/README.md):
    ros2 launch ppd_ros depth.launch.py variant:=large image:=... camera_info:=...

Parameters come from params_file first, then from the launch arguments that were given (left
empty they keep the params_file's values; use_sim_time always). variant, dit_checkpoint or
encoder_checkpoint given without checkpoint also empty a checkpoint the params file may name
(a ppd_ros checkpoint wins over variant), so variant:=large always loads the official Large
files (ppd_ros.node.launch_configuration). use_fastdds_profile:=true (default) gives the
node, and only the node, the shipped Fast DDS large-message profile; lifecycle:=true starts
a managed node (autostart:=true configures and activates it).
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.parameter_descriptions import ParameterValue
from lifecycle_msgs.msg import Transition

from ppd_ros.node.launch_configuration import (autostarts, is_managed, node_arguments,
                                               node_environment, parameter_overrides,
                                               ros_arguments)

#: Arguments read by _depth_node (all but the topic remappings, namespace and params_file).
NODE_ARGUMENTS = ('checkpoint', 'dit_checkpoint', 'encoder_checkpoint', 'variant', 'device',
                  'steps', 'depth_mode', 'depth_encoding', 'image_transport', 'qos_reliability',
                  'use_sim_time', 'use_fastdds_profile', 'lifecycle', 'autostart', 'log_level')
KEEP = ' (empty: from params_file)'


def generate_launch_description():
    share = get_package_share_directory('ppd_ros')
    arguments = [
        DeclareLaunchArgument('image', default_value='image',
                              description='Input sensor_msgs/Image topic (raw transport).'),
        DeclareLaunchArgument('compressed_image', default_value=[LaunchConfiguration('image'),
                                                                 '/compressed'],
                              description='Input CompressedImage topic '
                                          '(with image_transport:=compressed).'),
        DeclareLaunchArgument('camera_info', default_value='camera_info',
                              description='Input sensor_msgs/CameraInfo topic.'),
        DeclareLaunchArgument('depth_reference', default_value='depth_reference',
                              description="Metric depth sensor_msgs/Image (16UC1 mm or 32FC1 m, "
                                          "registered to the colour image) for depth_mode "
                                          "'reference' or 'fusion'."),
        DeclareLaunchArgument('namespace', default_value='',
                              description='Namespace of the node and its outputs.'),
        DeclareLaunchArgument('params_file',
                              default_value=os.path.join(share, 'config', 'depth.yaml'),
                              description='YAML parameter file (/** key, ros__parameters).'),
        DeclareLaunchArgument('checkpoint', default_value='',
                              description='ppd_ros .safetensors checkpoint' + KEEP + '.'),
        DeclareLaunchArgument('variant', default_value='',
                              description='Model variant: tiny (the shipped model), large or '
                                          'large_moge (the official files); without checkpoint it '
                                          "empties the params file's checkpoint" + KEEP + '.'),
        DeclareLaunchArgument('dit_checkpoint', default_value='',
                              description='Official PPD DiT weights, e.g. models/ppd.pth; '
                                          'loads the official files' + KEEP + '.'),
        DeclareLaunchArgument('encoder_checkpoint', default_value='',
                              description='Official Depth Anything V2 ViT-L weights, e.g. '
                                          'models/depth_anything_v2_vitl.pth' + KEEP + '.'),
        DeclareLaunchArgument('device', default_value='',
                              description='Torch device: auto, cpu, cuda, cuda:N' + KEEP + '.'),
        DeclareLaunchArgument('steps', default_value='',
                              description='Diffusion sampling steps per frame' + KEEP + '.'),
        DeclareLaunchArgument('depth_mode', default_value='',
                              description='depth.mode: relative, range, reference, moge or '
                                          'fusion' + KEEP + '.'),
        DeclareLaunchArgument('depth_encoding', default_value='',
                              description='depth.encoding of depth/image: 32FC1 or 16UC1'
                                          + KEEP + '.'),
        DeclareLaunchArgument('image_transport', default_value='',
                              description='raw or compressed input' + KEEP + '.'),
        DeclareLaunchArgument('qos_reliability', default_value='',
                              description='qos.reliability of the inputs: auto, reliable or '
                                          'best_effort' + KEEP + '.'),
        DeclareLaunchArgument('log_level', default_value='',
                              description='Log level of the node: debug, info, warn, error '
                                          '(empty: info).'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='Use /clock time.'),
        DeclareLaunchArgument('use_fastdds_profile', default_value='true',
                              description='Give the node (only) the shipped Fast DDS '
                                          'large-message profile, under both variable names.'),
        DeclareLaunchArgument('lifecycle', default_value='false',
                              description='Start a managed (lifecycle) node: unconfigured '
                                          'until configured and activated.'),
        DeclareLaunchArgument('autostart', default_value='false',
                              description='With lifecycle:=true: configure and activate the '
                                          'node at once.'),
    ]
    return LaunchDescription(arguments + [OpaqueFunction(function=_depth_node)])


def _depth_node(context):
    """The node, with the parameters, environment and options the arguments ask for."""
    values = {name: LaunchConfiguration(name).perform(context) for name in NODE_ARGUMENTS}
    profile = os.path.join(get_package_share_directory('ppd_ros'), 'config',
                           'fastdds_large_messages.xml')
    overrides = {name: ParameterValue(value, value_type=str) if isinstance(value, str) else value
                 for name, value in parameter_overrides(values).items()}
    node_action = LifecycleNode if is_managed(values) else Node
    node = node_action(
        package='ppd_ros',
        executable='depth_node',
        name='depth_node',
        namespace=LaunchConfiguration('namespace'),
        parameters=[LaunchConfiguration('params_file'), overrides],
        remappings=[('image', LaunchConfiguration('image')),
                    ('image/compressed', LaunchConfiguration('compressed_image')),
                    ('camera_info', LaunchConfiguration('camera_info')),
                    ('depth_reference', LaunchConfiguration('depth_reference'))],
        arguments=node_arguments(values),
        ros_arguments=ros_arguments(values),
        additional_env=node_environment(values, profile),
        output='screen',
        emulate_tty=True,
    )
    if not autostarts(values):
        return [node]
    return [
        node,
        RegisterEventHandler(OnStateTransition(
            target_lifecycle_node=node, start_state='configuring', goal_state='inactive',
            entities=[EmitEvent(event=ChangeState(
                lifecycle_node_matcher=matches_action(node),
                transition_id=Transition.TRANSITION_ACTIVATE))])),
        EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node),
                                    transition_id=Transition.TRANSITION_CONFIGURE)),
    ]
