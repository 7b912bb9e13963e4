"""The stream of per-frame results that the command line runs, stage after stage.

    source -> network -> detections -> (stages over time) -> writers

A `Frame` (stream.py) is one image or video frame: `(item, image, result)`. Every stage is a
generator from frames to frames (`for f in stage(frames)`), so stages compose, can be tested on
plain lists, and keep nothing but what they need (a look-ahead stage buffers a bounded window).
Two ways in: `DOPE.stream` (the network) and `replay_frames` (saved JSON Lines, after the network).
Writers take frames with `write(frame)` and are finished with `close()`; see outputs/.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Iterable, Iterator, Optional

import numpy as np

from wholebody.inputs.replay import ReplayError, replay
from wholebody.inputs.sources import ImageError, Item, load_image
from wholebody.stream import Frame, FrameWriter


def replay_frames(path: str, images: Optional[Iterable[tuple[Item, Any]]] = None, *,
                  by_name: bool = False, on_skip: Optional[Callable[[Item, Exception], None]] = None) -> Iterator[Frame]:
    """Frames of a saved JSON Lines file (what `--json` writes), with their pixels when `images`
    gives them.

    images: None (frames without pixels); a video's (Item, pixels) stream, matched to the records
    by frame number (records must come in frame order); or, with `by_name`, image files matched
    by path (then by file name) to the records' `"image"`. A record whose image cannot be found
    is replayed without pixels. Records of inputs that could not be read go to on_skip(item,
    error) in their place (see `replay`). Raises ReplayError (file and line) for a malformed record.
    """
    records = replay(path, on_skip)
    if images is None:
        for item, result in records:
            yield Frame(item, None, result)
        return
    if by_name:
        paths = {}
        for item, _ in images:
            if item.name is not None:
                paths.setdefault(os.path.abspath(item.name), item.name)
                paths.setdefault(os.path.basename(item.name), item.name)
        for item, result in records:
            name = None if item.name is None else paths.get(os.path.abspath(item.name),
                                                             paths.get(os.path.basename(item.name)))
            pixels = None
            if name is not None:
                item = dataclasses.replace(item, name=name)  # outputs go beside the image found here
                try:
                    pixels = load_image(name)
                except ImageError:
                    pixels = None
            yield Frame(item, pixels, result)
        return
    frames = iter(images)
    current: Optional[tuple[Item, Any]] = next(frames, None)
    for item, result in records:
        want = item.frame if item.frame is not None else item.index
        while current is not None and (current[0].frame if current[0].frame is not None else current[0].index) < want:
            current = next(frames, None)
        pixels = None
        if current is not None and (current[0].frame if current[0].frame is not None else current[0].index) == want:
            pixels = current[1] if isinstance(current[1], np.ndarray) else None
        yield Frame(item, pixels, result)


__all__ = ["Frame", "FrameWriter", "ReplayError", "replay_frames"]
