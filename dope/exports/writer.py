"""The `--export PATH` writer of the stream: gathers the clip's frames, then writes the file its extension names.

    .npz  arrays per person (npz.py)      .c3d  markers in mm (c3dfile.py)
    .bvh  one skeleton file per person, STEM.<person>.bvh (bvh.py)
    .glb  glTF 2.0 binary, one animated skeleton per person (gltf.py)
    .pose pose-format (sign-language corpora), every person's 2D joints, 3D on demand (pose.py)

An export needs the whole clip (bone lengths are medians over it; C3D and glTF hold every frame), so
the frames' camera-space joints are kept until `close`; that is about 3 kB per person and frame. A
single image is a one-frame clip.
"""
from __future__ import annotations

import logging
import os
from typing import Callable, Optional

from dope.exports.people import ClipBuilder, ExportError
from dope.stream import Frame

log = logging.getLogger(__name__)

EXTENSIONS = (".npz", ".c3d", ".bvh", ".glb", ".pose")


def export_format(path: str) -> str:
    """The format (extension, lower case) of an export path; ExportError naming the known ones."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in EXTENSIONS:
        raise ExportError(f"--export {path!r}: unknown format {ext or '(no extension)'!r}; "
                          f"use one of {', '.join(EXTENSIONS)}")
    if ext == ".pose":
        from dope.exports.pose import pose_format_missing
        missing = pose_format_missing()
        if missing:
            raise ExportError(f"--export {path!r}: {missing}")
    return ext


def write_clip(clip, path: str, say: Callable[..., None] = log.info, pose_3d: bool = False) -> list[str]:
    """Write a Clip in the format of the path's extension; the files written.
    pose_3d: a .pose file also holds the camera-space joints (pose.py)."""
    ext = export_format(path)
    if ext == ".pose":  # a corpus keeps one file per video, with nobody in it too
        from dope.exports.pose import write_pose
        write_pose(clip, path, camera_3d=pose_3d)
        return [path]
    if not clip.people:
        raise ExportError(f"--export {path!r}: nobody was found in the {len(clip)} frame(s); nothing written")
    if ext == ".npz":
        from dope.exports.npz import write_npz
        write_npz(clip, path)
    elif ext == ".c3d":
        from dope.exports.c3dfile import write_c3d
        write_c3d(clip, path)
    elif ext == ".glb":
        from dope.exports.gltf import write_glb
        write_glb(clip, path)
    else:
        from dope.exports.bvh import write_bvh
        return write_bvh(clip, path, say)
    return [path]


class ExportWriter:
    """A writer of the stream (`write(frame)`, `close()`, `abort()`) for one export path.

    fps: the source's frame rate when it has one; else the frames' times decide, else 30.
    pose_3d: a .pose export also holds the camera-space joints."""

    def __init__(self, path: str, fps: Optional[float] = None, say: Callable[..., None] = log.info,
                 pose_3d: bool = False) -> None:
        self.ext = export_format(path)
        self.target, self.say, self.pose_3d = path, say, pose_3d
        self.path: Optional[str] = None  # set once written (the CLI reports `path`)
        self.written: list[str] = []
        self.builder = ClipBuilder(fps, shared_parts=self.ext == ".pose")
        self.refused: Optional[str] = None  # why this export will fail, once known (_refuse)
        self._people = 0

    def write(self, frame: Frame) -> None:
        if self.refused is not None:
            return
        self.builder.add(frame)
        if self.ext == ".c3d" and len(self.builder.seen) != self._people:
            self._people = len(self.builder.seen)
            from dope.exports.c3dfile import ADVICE, markers_refused
            self._refuse(markers_refused(self.builder.seen), ADVICE)
        elif self.ext == ".pose":
            from dope.exports.pose import ADVICE, size_refused
            self._refuse(size_refused(len(self.builder.frame_numbers), len(self.builder.seen), self.pose_3d), ADVICE)

    def _refuse(self, reason: Optional[str], advice: str) -> None:
        """Give up on this export as soon as it is known to fail, saying so at once (the run and the
        other outputs go on; close raises ExportError)."""
        if reason is None:
            return
        self.refused = f"{reason}; {advice}"
        log.info("%s cannot be written (%s); the run and the other outputs go on", self.target, reason)
        self.builder = ClipBuilder()  # the frames gathered so far are not needed any more

    def close(self) -> None:
        if self.refused is not None:
            raise ExportError(self.refused)
        clip = self.builder.build()
        self.written = write_clip(clip, self.target, self.say, self.pose_3d)
        one_each = self.ext == ".bvh"  # a BVH file per person
        for p in self.written:
            people = "1 person" if one_each or len(clip.people) == 1 else f"{len(clip.people)} people"
            self.say("wrote %s (%s, %d frames at %.6g fps)", p, people, len(clip), clip.fps)

    def abort(self) -> None:
        pass  # nothing is written before close
