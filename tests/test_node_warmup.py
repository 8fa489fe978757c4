"""warmup_size: the node prepares (with compile: compiles) the model before the first frame."""
import pytest
import rclpy
import torch
from rclpy.parameter import Parameter

from ppd_ros.model import DepthPredictor, build_model


def start_node(predictor, **params):
    from ppd_ros.node.depth_node import DepthNode
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = DepthNode(predictor=predictor, context=context, namespace='/warmup',
                         parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


def test_warmup_size_prepares_the_network_resolution_of_that_camera():
    torch.manual_seed(0)
    predictor = DepthPredictor(build_model('tiny'), 'cpu', 'fp32')
    start_node(predictor, warmup_size='640x480')
    assert predictor.engine.cached_resolutions() == [predictor.network_size(480, 640)]


def test_an_unrunnable_warmup_size_stops_the_node():
    from ppd_ros.node.depth_node import StartupError
    torch.manual_seed(0)
    predictor = DepthPredictor(build_model('tiny'), 'cpu', 'fp32')
    with pytest.raises(StartupError, match='warmup_size'):
        start_node(predictor, warmup_size='10000x1')
