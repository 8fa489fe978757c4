"""Open the input of an evaluation: check topics, index the bag, select frames."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ppd_ros.evaluation.bag_frames import BagIndex, bag_storage, bag_topics, index_bag
from ppd_ros.evaluation.bag_topics import EvalTopics, resolve_topics
from ppd_ros.evaluation.eval_settings import InputSpec


class EmptySelectionError(ValueError):
    """The frame range selects no frame of the bag."""


@dataclass(frozen=True, eq=False)
class EvalInput:
    bag: Path
    storage: str
    topics: EvalTopics
    index: BagIndex
    selected: list[int]

    def describe(self, spec: InputSpec) -> dict:
        """The 'input' / 'selection' part of a summary."""
        described = {
            'input': {'bag': str(self.bag), 'storage': self.storage,
                      'image_topic': self.topics.image, 'image_type': self.topics.image_type,
                      'gt_topic': self.topics.gt, 'camera_info_topic': self.topics.info,
                      'gt_max_dt_s': spec.gt_max_dt_s, 'frames_in_bag': self.index.n_images,
                      'camera_infos': len(self.index.infos),
                      'unusable_camera_infos': self.index.skipped_infos},
            'selection': {'start': spec.selection.start, 'end': spec.selection.end,
                          'stride': spec.selection.stride, 'frames': len(self.selected)},
        }
        if self.topics.reference is not None:
            described['input']['reference_topic'] = self.topics.reference
        described['input']['pose_topic'] = self.topics.pose
        described['input']['poses'] = len(self.index.pose_for_image)
        return described


def open_input(spec: InputSpec) -> EvalInput:
    """MissingTopicError / TopicTypeError / FileNotFoundError / EmptySelectionError when the
    bag cannot be evaluated as asked."""
    bag = spec.bag.resolve()
    storage = bag_storage(bag)
    topics = resolve_topics(bag_topics(bag), bag, spec.image_topic, spec.gt_topic,
                            spec.info_topic, spec.reference_topic, spec.pose_topic)
    index = index_bag(bag, topics, round(spec.gt_max_dt_s * 1e9))
    selected = spec.selection.indices(index.n_images)
    if not selected:
        raise EmptySelectionError(
            f'no frames selected: the bag has {index.n_images} image(s) on {topics.image}; '
            f'--start {spec.selection.start} --end {spec.selection.end} '
            f'--stride {spec.selection.stride}')
    return EvalInput(bag, storage, topics, index, selected)
