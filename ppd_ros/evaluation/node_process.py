"""depth_node in a child process: ``python -m ppd_ros.node.depth_node --ros-args ...``.

Works without ros2cli / launch. The child gets the Fast DDS large-message profile and
inherits everything else (ROS_DOMAIN_ID, discovery range) from this process. stop() sends
SIGINT (the node shuts down cleanly), then SIGTERM, then SIGKILL.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from ppd_ros.evaluation.dds_environment import large_message_env


def parameter_text(value) -> str:
    """A parameter value as `-p name:=VALUE` text (YAML): strings single-quoted."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def depth_node_command(namespace: str, remaps: Mapping[str, str],
                       params: Mapping[str, object], extra_params: Sequence[str] = (),
                       python: str = sys.executable) -> list[str]:
    """Command line of depth_node; ``extra_params`` ('name:=value') come last and win."""
    args = [python, '-m', 'ppd_ros.node.depth_node', '--ros-args',
            '-r', f'__ns:={namespace}']
    for source, target in remaps.items():
        args += ['-r', f'{source}:={target}']
    for name, value in params.items():
        args += ['-p', f'{name}:={parameter_text(value)}']
    for item in extra_params:
        args += ['-p', item]
    return args


def last_problem_line(log: Path) -> str:
    """The last warning, error or fatal line of a node log; else its last line."""
    lines = log.read_text(errors='replace').splitlines() if log.exists() else []
    problems = [line for line in lines
                if any(level in line for level in ('[WARN]', '[ERROR]', '[FATAL]'))]
    return (problems or lines or ['(empty log)'])[-1].strip()


class DepthNodeProcess:
    def __init__(self, command: list[str], log_path: Path):
        self.command = command
        self.log_path = log_path
        self._log = open(log_path, 'w')
        env = large_message_env(os.environ)
        env.update(PYTHONUNBUFFERED='1', RCUTILS_COLORIZED_OUTPUT='0')
        self.proc = subprocess.Popen(command, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors='replace').strip().splitlines()
        return '\n'.join(text[-lines:])

    def stop(self, timeout: float = 15.0) -> int:
        for send in (lambda: self.proc.send_signal(signal.SIGINT), self.proc.terminate,
                     self.proc.kill):
            if self.proc.poll() is not None:
                break
            send()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                continue
        self._log.close()
        return self.proc.returncode
