"""Launch ppd_ros depth_node with the shipped parameters.

    ros2 launch ppd_ros depth.launch.py image:=/camera/color/image_raw \
        camera_info:=/camera/color/camera_info namespace:=front steps:=4

depth_reference is the metric depth image used by depth.mode 'reference' (set the mode in
params_file), e.g. depth_reference:=/camera/aligned_depth_to_color/image_raw.

Parameters come from params_file first, then the overrides given as launch arguments
(variant, steps, device: left empty they keep the params_file values; use_sim_time always).
use_fastdds_profile:=true points Fast DDS (the default RMW) at the shipped large-message
profile (config/fastdds_large_messages.xml); processes that subscribe to the large outputs
need the same profile (export FASTDDS_DEFAULT_PROFILES_FILE).
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description():
    share = get_package_share_directory('ppd_ros')
    default_params = os.path.join(share, 'config', 'depth.yaml')
    fastdds_profile = os.path.join(share, 'config', 'fastdds_large_messages.xml')

    arguments = [
        DeclareLaunchArgument('image', default_value='image',
                              description='Input sensor_msgs/Image topic (raw transport).'),
        DeclareLaunchArgument('compressed_image', default_value=[LaunchConfiguration('image'),
                                                                 '/compressed'],
                              description='Input CompressedImage topic '
                                          '(with image_transport: compressed).'),
        DeclareLaunchArgument('camera_info', default_value='camera_info',
                              description='Input sensor_msgs/CameraInfo topic.'),
        DeclareLaunchArgument('depth_reference', default_value='depth_reference',
                              description="Metric depth sensor_msgs/Image (16UC1 mm or 32FC1 m, "
                                          "registered to the colour image) for depth.mode "
                                          "'reference'."),
        DeclareLaunchArgument('namespace', default_value='',
                              description='Namespace of the node and its outputs.'),
        DeclareLaunchArgument('params_file', default_value=default_params,
                              description='YAML parameter file (/** key, ros__parameters).'),
        DeclareLaunchArgument('variant', default_value='',
                              description='Model variant for the official weights '
                                          '(empty: from params_file).'),
        DeclareLaunchArgument('steps', default_value='',
                              description='Diffusion sampling steps per frame '
                                          '(empty: from params_file).'),
        DeclareLaunchArgument('device', default_value='',
                              description='Torch device: auto, cpu, cuda, cuda:N '
                                          '(empty: from params_file).'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='Use /clock time.'),
        DeclareLaunchArgument('use_fastdds_profile', default_value='true',
                              description='Set FASTDDS_DEFAULT_PROFILES_FILE (and the older '
                                          'FASTRTPS_DEFAULT_PROFILES_FILE) to the shipped '
                                          'large-message profile.'),
    ]
    use_profile = IfCondition(LaunchConfiguration('use_fastdds_profile'))
    environment = [
        SetEnvironmentVariable('FASTDDS_DEFAULT_PROFILES_FILE', fastdds_profile,
                               condition=use_profile),
        SetEnvironmentVariable('FASTRTPS_DEFAULT_PROFILES_FILE', fastdds_profile,
                               condition=use_profile),
    ]
    return LaunchDescription(arguments + environment + [OpaqueFunction(function=_depth_node)])


def _depth_node(context):
    """The node, with only the overrides that were given on the command line."""
    overrides = {'use_sim_time': ParameterValue(LaunchConfiguration('use_sim_time'),
                                                value_type=bool)}
    for name, value_type in (('variant', str), ('steps', int), ('device', str)):
        if LaunchConfiguration(name).perform(context):
            overrides[name] = ParameterValue(LaunchConfiguration(name), value_type=value_type)
    return [Node(
        package='ppd_ros',
        executable='depth_node',
        name='depth_node',
        namespace=LaunchConfiguration('namespace'),
        parameters=[LaunchConfiguration('params_file'), overrides],
        remappings=[('image', LaunchConfiguration('image')),
                    ('image/compressed', LaunchConfiguration('compressed_image')),
                    ('camera_info', LaunchConfiguration('camera_info')),
                    ('depth_reference', LaunchConfiguration('depth_reference'))],
        output='screen',
        emulate_tty=True,
    )]
