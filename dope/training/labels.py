"""Training labels: JSON Lines records in the schema `--json` writes (docs/output-schema.md), one
per image, read into arrays and checked against their images.

What training reads of a record: `image` (the path: as written, else relative to the labels file's
folder), `height` and `width` (checked against the image), and per part (`body`, `hand`, `face`,
each optional) a list of detections with `pose2d` (J, 2) in pixels of the image and `pose3d`
(J, 3) in the part's frame; hands also `is_right`. Everything else (`score`, links, `model`) is
ignored. Records of inputs that could not be read (`"error"`) are skipped; video frames are refused.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

import numpy as np

from dope.errors import DopeError
from dope.parts import PART_NAMES, PARTS


class LabelError(DopeError):
    """Labels that cannot be used for training; the message names the file, line and what is wrong."""


@dataclass
class PartLabels:
    """One part's labelled instances in one image: pose2d float64 (N, J, 2) in pixels of the original
    image, pose3d float64 (N, J, 3), is_right bool (N,) (hands; True elsewhere)."""
    pose2d: np.ndarray
    pose3d: np.ndarray
    is_right: np.ndarray

    def __len__(self) -> int:
        return len(self.pose2d)


@dataclass
class LabelledImage:
    """An image and its labels: path, (height, width) as recorded, per part its `PartLabels`."""
    path: str
    height: int
    width: int
    parts: dict[str, PartLabels] = field(default_factory=dict)
    where: str = ""  # "labels.jsonl, line 3": for messages


def empty_part(part: str) -> PartLabels:
    j = PARTS[part].num_joints
    return PartLabels(np.zeros((0, j, 2)), np.zeros((0, j, 3)), np.zeros(0, bool))


def _poses(dets: Any, part: str, key: str, dims: int, where: str) -> np.ndarray:
    j = PARTS[part].num_joints
    try:
        arr = np.asarray([d[key] for d in dets], dtype=np.float64).reshape(len(dets), -1, dims) \
            if dets else np.zeros((0, j, dims))
        shapes = {np.asarray(d[key], dtype=np.float64).shape for d in dets}
    except KeyError:
        raise LabelError(f"{where}: every {part} needs {key!r}") from None
    except (TypeError, ValueError):
        raise LabelError(f"{where}: {part} {key} is not an array of numbers of shape ({j}, {dims})") from None
    if shapes - {(j, dims)}:
        bad = sorted(shapes - {(j, dims)})[0]
        raise LabelError(f"{where}: {part} {key} has shape {bad}, expected ({j}, {dims}) "
                         f"(DOPE's {part} has {j} joints)")
    if not np.isfinite(arr).all():
        raise LabelError(f"{where}: {part} {key} holds NaN or infinite values")
    return arr


def parse_record(obj: Any, where: str, folder: str) -> Optional[LabelledImage]:
    """One record as a LabelledImage (None for an error record: an input its writer could not read)."""
    if not isinstance(obj, dict):
        raise LabelError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if "error" in obj:
        return None
    if obj.get("frame") is not None or "video" in obj:
        raise LabelError(f"{where}: a video frame; training reads images (extract the frames and label them)")
    image = obj.get("image")
    if not isinstance(image, str) or not image:
        raise LabelError(f"{where}: no 'image' path (training needs the image each record labels)")
    try:
        height, width = obj["height"], obj["width"]
    except KeyError as e:
        raise LabelError(f"{where}: missing field {e.args[0]!r}") from None
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (height, width)):
        raise LabelError(f"{where}: height and width must be positive whole numbers")
    path = image if os.path.isabs(image) or os.path.exists(image) else os.path.join(folder, image)
    parts = {}
    for part in PART_NAMES:
        dets = obj.get(part) or []
        if not isinstance(dets, list) or not all(isinstance(d, dict) for d in dets):
            raise LabelError(f"{where}: {part!r} must be a list of objects")
        pose2d = _poses(dets, part, "pose2d", 2, where)
        pose3d = _poses(dets, part, "pose3d", 3, where)
        if part == "hand":
            flags = [d.get("is_right") for d in dets]
            if not all(isinstance(f, bool) for f in flags):
                raise LabelError(f"{where}: every hand needs 'is_right' (true or false)")
            is_right = np.asarray(flags, bool)
        else:
            is_right = np.ones(len(dets), bool)
        parts[part] = PartLabels(pose2d, pose3d, is_right)
    return LabelledImage(path, height, width, parts, where)


def read_labels(path: str) -> list[LabelledImage]:
    """Every usable record of a JSON Lines file (what `--json` writes), in file order."""
    if not os.path.isfile(path):
        raise LabelError(f"labels {path!r}: " + ("no such file" if not os.path.exists(path) else "not a file"))
    folder = os.path.dirname(os.path.abspath(path))
    out = []
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError:
        raise LabelError(f"labels {path!r} is not a text file of JSON Lines") from None
    except OSError as e:
        raise LabelError(f"cannot read labels {path!r}: {e.strerror}") from None
    lines = text.splitlines()
    try:
        objects: Iterable[tuple[int, Any]] = [(n, json.loads(line)) for n, line in enumerate(lines, 1) if line.strip()]
    except json.JSONDecodeError:
        try:  # one record pretty-printed over several lines (`--json` of a single image)
            objects = [(1, json.loads(text))]
        except json.JSONDecodeError as e:
            raise LabelError(f"labels {path!r}: not JSON Lines ({e.msg}, line {e.lineno})") from None
    for number, obj in objects:
        rec = parse_record(obj, f"{path}, line {number}", folder)
        if rec is not None:
            out.append(rec)
    if not out:
        raise LabelError(f"labels {path!r} hold no usable record")
    return out


def load_checked_image(label: LabelledImage) -> np.ndarray:
    """uint8 (H, W, 3) RGB pixels of the record's image; LabelError if it cannot be read or its
    size is not the record's (labels of another image, or of a resized copy)."""
    from dope.inputs.sources import ImageError, load_image
    try:
        pixels = load_image(label.path)
    except ImageError as e:
        raise LabelError(f"{label.where}: {e}") from None
    h, w = pixels.shape[:2]
    if (h, w) != (label.height, label.width):
        raise LabelError(f"{label.where}: image {label.path!r} is {w}x{h}, the record says "
                         f"{label.width}x{label.height} (labels of another image, or of a resized copy?)")
    return pixels


def check_images(labels: Iterable[LabelledImage]) -> None:
    """LabelError for the first record whose image is missing or of another size (headers only)."""
    from PIL import Image, ImageOps
    for label in labels:
        if not os.path.isfile(label.path):
            raise LabelError(f"{label.where}: image {label.path!r} does not exist")
        try:
            with Image.open(label.path) as im:
                w, h = ImageOps.exif_transpose(im).size if im.getexif().get(0x0112, 1) != 1 else im.size
        except OSError:
            raise LabelError(f"{label.where}: {label.path!r} is not a readable image") from None
        if (h, w) != (label.height, label.width):
            raise LabelError(f"{label.where}: image {label.path!r} is {w}x{h}, the record says "
                             f"{label.width}x{label.height} (labels of another image, or of a resized copy?)")


def split(labels: list[LabelledImage], fraction: float, seed: int = 0) -> tuple[list[LabelledImage], list[LabelledImage]]:
    """(training, held-out): `fraction` of the records, at least one when fraction > 0, drawn at random."""
    if fraction <= 0:
        return labels, []
    n = max(1, int(math.floor(fraction * len(labels) + 0.5)))
    if n >= len(labels):
        raise LabelError(f"--val-fraction {fraction} would hold out all {len(labels)} records")
    order = np.random.default_rng(seed).permutation(len(labels))
    held = set(order[:n].tolist())
    return [r for i, r in enumerate(labels) if i not in held], [r for i, r in enumerate(labels) if i in held]
