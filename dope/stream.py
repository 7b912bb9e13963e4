"""The element of the stream of per-frame results, and what every writer of the stream offers.

A `Frame` is one image or video frame: `(item, image, result)`, with `image` the RGB uint8[H, W, 3]
pixels, or None when saved detections are replayed without their images. `DOPE.stream` yields
them; every later stage is a generator from frames to frames; writers take them one at a time.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Optional, Protocol

if TYPE_CHECKING:
    import numpy as np

    from dope.inputs.sources import Item
    from dope.results import Result


class Frame(NamedTuple):
    """One image or video frame of the stream: where it comes from, its pixels (or None), its result."""
    item: Item
    image: Optional[np.ndarray]
    result: Result


class FrameWriter(Protocol):
    """A writer of the stream: `write` one frame at a time, then `close`, which puts the output in
    place. Writers write under a staging name, so that an error leaves the target as it was."""

    def write(self, frame: Frame) -> None: ...

    def close(self) -> None: ...
