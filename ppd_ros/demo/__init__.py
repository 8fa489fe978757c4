"""``ppd-demo``: the end-to-end demo (synthetic RGB-D bag -> depth_node across processes ->
metric depth PNGs, a PLY cloud, a comparison picture and an evaluation summary).
See ppd_ros.demo.cli."""
from .cli import main

__all__ = ['main']
