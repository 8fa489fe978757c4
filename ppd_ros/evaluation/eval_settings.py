"""Settings of one ppd-eval run, as plain frozen dataclasses (built by cli.py)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ppd_ros.evaluation.frame_metrics import EdgeMetricParams
from ppd_ros.evaluation.frame_selection import FrameSelection
from ppd_ros.evaluation.model_options import ModelOptions
from ppd_ros.pipeline.temporal_smoothing import RECOMMENDED, TemporalSettings

OUTPUT_STORAGES = ('same', 'sqlite3', 'mcap')


@dataclass(frozen=True)
class InputSpec:
    bag: Path
    image_topic: str
    gt_topic: str | None
    info_topic: str | None          #: 'auto': the camera_info beside the image topic
    gt_max_dt_s: float              #: largest |stamp difference| of a matched GT / reference
    selection: FrameSelection
    reference_topic: str | None = None  #: live: metric depth played into depth_reference
    pose_topic: str | None = None   #: camera poses (flicker); 'auto': the 'pose' beside the image


@dataclass(frozen=True)
class OutputSpec:
    out_dir: Path
    storage: str = 'same'           #: output bag storage: same as input, sqlite3 or mcap
    namespace: str = '/ppd'         #: output bag topics: <ns>/depth/image, <ns>/points, ...
    pictures: str = '4'             #: see frame_selection.picture_indices


@dataclass(frozen=True)
class OfflineSettings:
    input: InputSpec
    model: ModelOptions
    output: OutputSpec
    edge: EdgeMetricParams = EdgeMetricParams()
    fresh: bool = False             #: discard stored per-frame results first
    progress: bool = True
    temporal: TemporalSettings = RECOMMENDED    #: the node's temporal.* parameters


@dataclass(frozen=True)
class LiveSettings:
    input: InputSpec
    model: ModelOptions
    output: OutputSpec
    edge: EdgeMetricParams = EdgeMetricParams()
    rate_hz: float = 0.0            #: publish rate; 0 follows the bag's stamps
    sim_time: bool = False          #: publish /clock and keep the bag stamps
    launch_node: bool = False       #: spawn depth_node (and stop it afterwards)
    node_namespace: str = '/ppd_eval'   #: the node's namespace: outputs <ns>/depth/..., <ns>/points
    node_params: tuple[str, ...] = ()   #: extra 'name:=value' for a launched node
    startup_timeout_s: float = 120.0
    settle_s: float = 3.0           #: wait this long after the last publish / output
    temporal: TemporalSettings = RECOMMENDED    #: temporal.* of a launched node

    @property
    def node_depth_mode(self) -> str:
        """The node's depth.mode: 'reference' when a reference topic is played (a launched
        node is set to it), unless a node_params entry sets depth.mode; else 'relative'."""
        mode = 'reference' if self.input.reference_topic else 'relative'
        for param in self.node_params:
            name, _, value = param.partition(':=')
            if name.strip() == 'depth.mode':
                mode = value.strip().strip('\'"')
        return mode

    @property
    def node_is_metric(self) -> bool:
        """The node publishes metres (scored as published, without alignment)."""
        return self.node_depth_mode != 'relative'


def resolve_storage(requested: str, input_storage: str) -> str:
    return input_storage if requested == 'same' else requested
