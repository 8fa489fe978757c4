"""Resolve relative resource paths (model weights, configs) of the ppd_ros package.

A relative path is looked up, in order, under the installed package share directory
(via ament_index_python, when the package is installed with colcon), the source checkout
this module lives in, and the current working directory. Absolute paths are used as is.
"""
from __future__ import annotations

from pathlib import Path

PACKAGE = 'ppd_ros'
_SOURCE_ROOT = Path(__file__).resolve().parents[2]


def _share_directory() -> Path | None:
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    except ImportError:
        return None
    try:
        return Path(get_package_share_directory(PACKAGE))
    except (PackageNotFoundError, ValueError, OSError):  # OSError: no AMENT_PREFIX_PATH
        return None


def _source_root() -> Path | None:
    return _SOURCE_ROOT if (_SOURCE_ROOT / 'package.xml').is_file() else None


def candidate_paths(path: str) -> list[Path]:
    """Where `path` is looked for, in order of preference."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return [p]
    roots = [_share_directory(), _source_root(), Path.cwd()]
    found: list[Path] = []
    for root in roots:
        if root is not None and (root / p) not in found:
            found.append(root / p)
    return found


def resolve_package_path(path: str) -> Path | None:
    """First existing file among candidate_paths(path), or None."""
    for candidate in candidate_paths(path):
        if candidate.is_file():
            return candidate
    return None
