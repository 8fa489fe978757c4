"""The resolution the networks run at, its knob (``network_area``) and its bounds.

Like the reference, an H x W image is resized to about ``network_area`` pixels keeping its
aspect ratio, both sides multiples of 16 (``preprocess.network_size``). The default area is the
variant's training area (1024 x 768 for large). An area, rather than a long side, keeps the
token count, hence the cost per frame, the same for every camera aspect, and is the quantity
the network was trained at; a smaller area trades detail for speed.

Bounds, so that no input can make the network absurdly large or thin:

* ``network_area`` lies in [MIN_NETWORK_AREA, MAX_NETWORK_AREA];
* an image's long side is at most MAX_ASPECT_RATIO times its short side. Beyond that the
  short network side would fall to the 16-pixel minimum and the long one grow without bound
  (a 1 x 1,000,000 image would need a 16 x 887,000 network input at 1024 x 768);
* a network input given directly (``resize=False``) obeys the same ratio and at most
  MAX_NETWORK_AREA pixels.

Inputs outside the bounds raise ValueError with the reason.
"""
from __future__ import annotations

from .preprocess import NETWORK_MULTIPLE, network_size

MIN_NETWORK_AREA = 32 * 32
MAX_NETWORK_AREA = 2048 * 2048
MAX_ASPECT_RATIO = 16.0


def check_network_area(area: int) -> int:
    """``area`` as an int, or ValueError when it is outside the supported range."""
    if isinstance(area, bool) or int(area) != area:
        raise ValueError(f'network_area must be a whole number of pixels, got {area!r}')
    area = int(area)
    if not MIN_NETWORK_AREA <= area <= MAX_NETWORK_AREA:
        raise ValueError(f'network_area {area} is outside {MIN_NETWORK_AREA} .. '
                         f'{MAX_NETWORK_AREA} pixels (32x32 .. 2048x2048)')
    return area


def check_aspect_ratio(height: int, width: int) -> None:
    """ValueError for an empty image or one longer than MAX_ASPECT_RATIO : 1."""
    if height < 1 or width < 1:
        raise ValueError(f'image of {height}x{width} pixels is empty')
    if max(height, width) > MAX_ASPECT_RATIO * min(height, width):
        raise ValueError(f'image of {height}x{width} pixels has an aspect ratio beyond '
                         f'{MAX_ASPECT_RATIO:g}:1, which the network cannot run sensibly')


def bounded_network_size(height: int, width: int, area: int) -> tuple[int, int]:
    """``network_size(H, W, area)`` for an image within the bounds above (else ValueError)."""
    check_aspect_ratio(height, width)
    return network_size(height, width, check_network_area(area))


def check_network_input(height: int, width: int) -> None:
    """ValueError unless h x w can be run as it is (multiples of 16, within the bounds)."""
    if height % NETWORK_MULTIPLE or width % NETWORK_MULTIPLE:
        raise ValueError(f'a network input must be a multiple of {NETWORK_MULTIPLE} on both '
                         f'sides, got {height}x{width}')
    check_aspect_ratio(height, width)
    if height * width > MAX_NETWORK_AREA:
        raise ValueError(f'network input {height}x{width} exceeds {MAX_NETWORK_AREA} pixels')

