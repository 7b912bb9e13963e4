"""The command line's writers on the stream of frames: JSON (Lines), drawings, annotated video, 3D views.

Each takes one `stream.Frame` at a time (`write`) and is finished with `close` (files written
under a staging name are put in place then); `abort` keeps the target as it was. Frames without
pixels (saved detections replayed without their images) are skipped by the writers that draw.
"""
from __future__ import annotations

import functools
import logging
import os
from typing import Any, Callable, Optional

import numpy as np

from dope.drawing.draw2d import draw_result
from dope.files import OutputGuard, output_path, reason, write_image
from dope.outputs.writers import JsonLinesWriter, OutputError, VideoWriter, record_line
from dope.stream import Frame

log = logging.getLogger("dope")

# The writers draw in OpenCV's order (BGR in, BGR out), which their files take.
DRAW_BGR = functools.partial(draw_result, channels="bgr")


class JsonFrames:
    """Every frame's record (SPEC §10 plus `extra` top-level keys) as one line of a JSON Lines file."""

    def __init__(self, path: str, **extra: Any) -> None:
        self.out = JsonLinesWriter(path)
        self.path = self.out.path
        self.extra = extra

    def write(self, frame: Frame) -> None:
        self.out.write_line(record_line(frame.item, frame.result, **self.extra))

    def skip(self, item: Any, error: Exception) -> None:
        """The line of an input that could not be read: `{"image": path, "error": message}` (a
        replayed record of that kind, `error.record`, is written back as it was)."""
        saved = getattr(error, "record", None)
        self.out.write(saved if isinstance(saved, dict) else {"image": item.name, "error": str(error)})

    def close(self) -> None:
        self.out.close()

    def abort(self) -> None:
        self.out.abort()


class DrawnVideo:
    """The 2D drawing over every frame, as a video at the source's frame rate (frames keep their size).

    Frames left out of the stream (`--every`, `--fps`) are filled by repeating the last drawing,
    so that the video keeps the source's timing from its first frame written to its last.
    """

    def __init__(self, path: str, fps: float, draw: Callable[..., np.ndarray] = DRAW_BGR) -> None:
        self.out = VideoWriter(path, fps)
        self.path = self.out.path
        self.draw = draw
        self.last: Optional[tuple[int, np.ndarray]] = None  # (frame number, drawing) of the last frame written

    def write(self, frame: Frame) -> None:
        if frame.image is None:
            return
        drawn = self.draw(np.ascontiguousarray(frame.image[:, :, ::-1]), frame.result, pad=False)
        number = frame.item.frame
        if self.last is not None and number is not None:
            for _ in range(number - self.last[0] - 1):
                self.out.write(self.last[1])
        self.out.write(drawn)
        if number is not None:
            self.last = (number, drawn)

    def close(self) -> None:
        self.out.close()

    def abort(self) -> None:
        self.out.abort()


class DrawnImages:
    """The 2D drawing of each image as `X_M.jpg` beside it, or in output_dir (in the sub-folder of
    `base` that X is in: see `files.output_path`). `guard` (files.OutputGuard) refuses inputs and
    gives a fresh name to a path this run wrote already."""

    def __init__(self, model: str, output_dir: Optional[str], say: Callable[..., None] = log.info,
                 draw: Callable[..., np.ndarray] = DRAW_BGR, *, base: Optional[str] = None,
                 guard: Optional[OutputGuard] = None) -> None:
        self.model, self.output_dir, self.say, self.draw, self.base = model, output_dir, say, draw, base
        self.guard = guard if guard is not None else OutputGuard()
        self.path = None
        self.written: list[str] = []

    def write(self, frame: Frame) -> None:
        if frame.image is None or frame.item.name is None:
            return
        path = _claim(self.guard, output_path(frame.item.name, self.model, self.output_dir, base=self.base))
        write_image(path, self.draw(np.ascontiguousarray(frame.image[:, :, ::-1]), frame.result))
        self.say("wrote %s", path)
        self.written.append(path)

    def close(self) -> None:
        _say_written(self.written, "drawing", self.say)

    def abort(self) -> None:
        pass


class View3DImages:
    """The 3D view of each image as `X_M_visu3d.jpg` (SPEC §8), by the chosen renderer; named and
    guarded as `DrawnImages`."""

    def __init__(self, model: str, output_dir: Optional[str], renderer: str, interactive: bool,
                 say: Callable[..., None] = log.info, view: Any = None, *, base: Optional[str] = None,
                 guard: Optional[OutputGuard] = None) -> None:
        from dope.view3d.scene import View
        self.model, self.output_dir, self.say, self.base = model, output_dir, say, base
        self.renderer, self.interactive, self.view = renderer, interactive, view or View()  # camera angles
        self.guard = guard if guard is not None else OutputGuard()
        self.path = None
        self.written: list[str] = []

    def write(self, frame: Frame) -> None:
        from dope.view3d.render import write_visu3d
        if frame.image is None or frame.item.name is None:
            return
        path = _claim(self.guard, output_path(frame.item.name, self.model, self.output_dir, "_visu3d.jpg",
                                              base=self.base))
        used = write_visu3d(frame.image, frame.result, path, renderer=self.renderer, interactive=self.interactive,
                            view=self.view)
        self.say("wrote %s (%s renderer)", path, used)
        self.written.append(path)

    def close(self) -> None:
        _say_written(self.written, "3D view", self.say)

    def abort(self) -> None:
        pass


def _say_written(paths: list[str], kind: str, said: Callable[..., None]) -> None:
    """One line for the images written, unless each was said at the same level already (a run of
    one image); a run of several names each with -v only."""
    if not paths or said == log.info:
        return
    if len(paths) == 1:
        log.info("wrote %s", paths[0])
        return
    folders = {os.path.dirname(p) or "." for p in paths}
    where = f" in {folders.pop()}" if len(folders) == 1 else ""
    log.info("wrote %d %ss%s (%s ... %s)", len(paths), kind, where, os.path.basename(paths[0]),
             os.path.basename(paths[-1]))


def _claim(guard: OutputGuard, path: str) -> str:
    """The path to write one image's output to (see OutputGuard.claim), its folder made."""
    path = guard.claim(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot create the folder {folder!r} for {path!r}: {reason(e)}") from None
    return path
