"""How large and how elongated an input image may be, checked before any decoding.

A 629-byte JPEG can declare 30000 x 30000 pixels (2.7 GB once decoded), and a 1 x 1,000,000
image makes the network resolution absurd. Every image's declared size (Image width / height,
or the JPEG / PNG header of a CompressedImage) is checked against an ImageLimits first, so
the work and memory per message stay bounded whatever arrives.
"""
from __future__ import annotations

from dataclasses import dataclass

from ppd_ros.messages.image_encoding import ImageEncodingError

#: Default pixel budget: 4096 x 4096 (16.8 Mpx; a 4K UHD frame is 8.3 Mpx). Decoded as RGB
#: that is 50 MB, and the depth outputs at that size stay a few hundred MB.
DEFAULT_MAX_PIXELS = 4096 * 4096
#: Default largest ratio of the long to the short image side. Cameras are at most ~2.4:1,
#: side-by-side stereo 3.6:1; beyond 10:1 the network's 16-pixel grid leaves the short side
#: a sliver of one or two tokens.
DEFAULT_MAX_ASPECT_RATIO = 10.0


class ImageLimitError(ImageEncodingError):
    """An image whose declared size is beyond an ImageLimits; `setting` names the limit."""

    def __init__(self, message: str, setting: str):
        super().__init__(message)
        self.setting = setting


@dataclass(frozen=True)
class ImageLimits:
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_aspect_ratio: float = DEFAULT_MAX_ASPECT_RATIO

    def __post_init__(self):
        if self.max_pixels < 1 or not self.max_aspect_ratio >= 1.0:
            raise ValueError(f'need max_pixels >= 1 and max_aspect_ratio >= 1, got '
                             f'{self.max_pixels} and {self.max_aspect_ratio}')

    def check(self, width: int, height: int) -> None:
        """Raise ImageEncodingError (ImageLimitError for a limit) unless a width x height
        image may be decoded and processed."""
        width, height = int(width), int(height)
        if width <= 0 or height <= 0:
            raise ImageEncodingError(f'image has no pixels ({width}x{height})')
        if width * height > self.max_pixels:
            raise ImageLimitError(
                f'image of {width}x{height} ({width * height} pixels) is larger than the '
                f'pixel budget of {self.max_pixels}', 'max_pixels')
        ratio = max(width, height) / min(width, height)
        if ratio > self.max_aspect_ratio:
            raise ImageLimitError(
                f'image of {width}x{height} has an aspect ratio of {ratio:.4g}:1, beyond '
                f'{self.max_aspect_ratio:g}:1', 'max_aspect_ratio')
