"""A subscription whose reliability follows its publishers (qos.reliability 'auto').

With 'auto' the subscription starts reliable and re-checks the publishers of its topic every
REMATCH_PERIOD_S, and as soon as the middleware reports a publisher with incompatible QoS:
when one offers only best effort it is re-created best effort, and back to reliable when
none does any more (ppd_ros.ros_conventions.qos_matching). 'reliable' and 'best_effort' are
used as they are.
"""
from __future__ import annotations

from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from ppd_ros.ros_conventions.qos_matching import (AUTO, BEST_EFFORT, RELIABLE,
                                                  matching_reliability)

REMATCH_PERIOD_S = 0.5
_POLICY = {RELIABLE: ReliabilityPolicy.RELIABLE, BEST_EFFORT: ReliabilityPolicy.BEST_EFFORT}
_NAME = {policy: name for name, policy in _POLICY.items()}


class MatchedSubscription:
    def __init__(self, node, msg_type, topic: str, callback, depth: int, setting: str):
        self._node, self._type, self._callback = node, msg_type, callback
        self._depth, self._setting = depth, setting
        self.topic_name = node.resolve_topic_name(topic)
        self.reliability = ''
        self._subscription = None
        self._timer = None
        self._create(self._wanted())
        if setting == AUTO:
            self._timer = node.create_timer(REMATCH_PERIOD_S, self.rematch)

    def offered(self) -> list[str]:
        """Reliability of each current publisher of the topic."""
        return [_NAME.get(info.qos_profile.reliability, RELIABLE)
                for info in self._node.get_publishers_info_by_topic(self.topic_name)]

    def _wanted(self) -> str:
        return matching_reliability(self._setting, self.offered())

    def _create(self, reliability: str) -> None:
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=self._depth,
                         reliability=_POLICY[reliability])
        events = None
        if self._setting == AUTO:  # a mismatch is handled here, not a warning
            events = SubscriptionEventCallbacks(incompatible_qos=lambda _: None)
        self._subscription = self._node.create_subscription(
            self._type, self.topic_name, self._callback, qos, event_callbacks=events)
        self.reliability = reliability

    def rematch(self) -> bool:
        """Re-create the subscription if its publishers need another reliability; True when
        it was re-created."""
        wanted = self._wanted()
        if wanted == self.reliability:
            return False
        self._node.destroy_subscription(self._subscription)
        self._create(wanted)
        self._node.get_logger().info(
            f"subscribed to '{self.topic_name}' {wanted}: its publishers offer "
            f"{', '.join(sorted(set(self.offered()))) or 'nothing yet'}")
        return True

    def destroy(self) -> None:
        if self._timer is not None:
            self._node.destroy_timer(self._timer)
            self._timer = None
        if self._subscription is not None:
            self._node.destroy_subscription(self._subscription)
            self._subscription = None
