"""Saved detections as a source: our own JSON Lines (what `--json` writes) read back frame by frame.

`--from-json FILE` enters the stream of per-frame results after the network: every later stage
(tracks, smoothing, camera space, writers) runs on what was saved. Each line is one image or video
frame in the schema of SPEC §10 (`"image"`, or `"video"`, `"frame"`, `"time_s"`); fields this
reader does not know are kept (top-level ones in `Result.meta`, per-detection ones as added fields)
and written back out. A single JSON object spread over several lines (`--json` of one image,
pretty-printed) is read too.
"""
from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Iterator, Optional, TypeVar, Union

import numpy as np

from dope.inputs.sources import Item
from dope.jsonio import NOT_TAKEN, collector_paused, loads, loads_fast
from dope.parts import PART_NAMES, PARTS
from dope.results import LINKS, Result, plain_part

ITEM_KEYS = ("image", "video", "frame", "time_s", "height", "width")
T = TypeVar("T")
_BLANK = object()  # what a blank line makes
SAVED = "_saved"  # Result.meta key of the record a replayed result was read from


class ReplayError(ValueError):
    """A saved-detections file that cannot be read; the message names the file and the line."""


def read_jsonl(path: str) -> Iterator[tuple[Item, Result]]:
    """(Item, Result) for each image or frame of a JSON Lines file written by `--json` (records of
    unreadable inputs left out): `item.name` is the image or video, `item.frame`/`item.time_s` a
    frame's number and time. Raises ReplayError naming the line of a malformed record."""
    return replay(path)


def read_records(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-empty line of a JSON Lines file, read lazily (lines end at
    `\n`, `\r\n` or `\r`, as in a file opened as text)."""
    return _records(path, lambda number, obj: (number, obj))


def _records(path: str, make: Callable[[int, dict[str, Any]], T]) -> Iterator[T]:
    """make(line number, object) for each record of the file (see `read_records`). Each line is parsed
    and made into what `make` returns with Python's cycle collector paused (jsonio.collector_paused),
    so that the parsed record, let go by then, is never scanned."""
    if not os.path.isfile(path):
        raise ReplayError(f"--from-json {path!r}: no such file" if not os.path.exists(path)
                          else f"--from-json {path!r} is not a file")
    try:
        with open(path, "rb") as f:
            first = None
            for number, line in enumerate(_lines(f), 1):
                if not line.strip():
                    continue
                error, made = None, _BLANK
                with collector_paused():
                    obj = loads_fast(line)
                    if obj is NOT_TAKEN:  # decoded here, as a text file's line: the same errors as ever
                        text = line.decode("utf-8")
                        if text.strip():  # else blank but for Unicode spaces
                            try:
                                obj = loads(text)
                            except json.JSONDecodeError as e:
                                error = e
                    if obj is not NOT_TAKEN:
                        if not isinstance(obj, dict):
                            raise ReplayError(f"{path}, line {number}: expected a JSON object, got "
                                              f"{type(obj).__name__}")
                        made = make(number, obj)
                    del obj
                if error is not None:
                    if first is None:  # maybe one object over several lines
                        yield make(number, _whole_file(path, number, error))
                        return
                    raise ReplayError(f"{path}, line {number}: not valid JSON ({error.msg})") from None
                if made is _BLANK:
                    continue
                first = number
                yield made
    except UnicodeDecodeError:
        raise ReplayError(f"{path} is not a text file of JSON Lines") from None
    except OSError as e:
        raise ReplayError(f"cannot read {path!r}: {e.strerror}") from None


def _lines(f: BinaryIO) -> Iterator[bytes]:
    """The lines of a file opened in binary, without their ends (`\n`, `\r\n` or `\r`): the lines of
    the file opened as text (universal newlines), not yet decoded."""
    for raw in f:
        if b"\r" in raw:
            yield from raw.splitlines()
        else:
            yield raw.rstrip(b"\n")


def _whole_file(path: str, number: int, error: json.JSONDecodeError) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        obj = loads(text)
    except json.JSONDecodeError:
        raise ReplayError(f"{path}, line {number}: not valid JSON ({error.msg})") from None
    if not isinstance(obj, dict):
        raise ReplayError(f"{path}: expected JSON objects, got {type(obj).__name__}")
    return obj


def to_result(obj: dict[str, Any], where: str) -> Result:
    """One saved record as a `Result` (unknown top-level fields in `.meta`); ReplayError naming `where`."""
    try:
        if int(obj["height"]) < 1 or int(obj["width"]) < 1:
            raise ValueError
    except KeyError as e:
        raise ReplayError(f"{where}: missing field {e.args[0]!r}") from None
    except (TypeError, ValueError):
        raise ReplayError(f"{where}: height and width must be positive whole numbers") from None
    result, saved = _plain_result(obj)
    if result is None:
        result, saved = _checked_result(obj, where), obj
    result.meta = {k: v for k, v in obj.items() if k not in ITEM_KEYS and k not in PART_NAMES}
    result.meta[SAVED] = saved  # the numbers as read: writers keep them where a stage changed nothing
    return result


@dataclass(frozen=True)
class SavedPart:
    """One part's numbers as read from a record in the plain form `--json` writes: the scores (Python
    floats) and the poses (float64, every value as read), to be written back where a stage changed nothing."""
    scores: list[float]
    pose2d: np.ndarray
    pose3d: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)


def _plain_result(obj: dict[str, Any]) -> tuple[Optional[Result], dict[str, SavedPart]]:
    """The record as a Result, every part at once, when it is in the plain form `--json` writes
    (see `results.plain_part`) and its links are sound; (None, {}) otherwise. Its numbers as read
    are kept as arrays (the record's lists, a hundred thousand for a crowd, are let go)."""
    parts, saved = {}, {}
    for part in PART_NAMES:
        dets = obj.get(part) or []
        plain = plain_part(part, dets) if isinstance(dets, list) else None
        if plain is None:
            return None, {}
        parts[part] = plain[0]
        saved[part] = SavedPart([d["score"] for d in dets], plain[1], plain[2])
    for d in obj.get("body") or []:  # whole numbers or null (plain_part): indexes of a hand or face
        for link, part in LINKS.items():
            v = d.get(link)
            if v is not None and not 0 <= v < len(parts[part]):
                return None, {}
    return Result(obj["height"], obj["width"], image=obj.get("image"), **parts), saved


def _checked_result(obj: dict[str, Any], where: str) -> Result:
    """The record as a Result, one detection at a time, with a ReplayError naming what is wrong."""
    for part in PART_NAMES:
        dets = obj.get(part) or []
        if not isinstance(dets, list):
            raise ReplayError(f"{where}: {part!r} must be a list of detections")
        j = PARTS[part].num_joints
        for k, d in enumerate(dets):
            if not isinstance(d, dict) or "score" not in d or "pose2d" not in d or "pose3d" not in d:
                raise ReplayError(f"{where}: {part} {k} needs score, pose2d and pose3d")
            for key, dims in (("pose2d", 2), ("pose3d", 3)):
                try:
                    shape = np.asarray(d[key], dtype=np.float64).shape
                except (TypeError, ValueError):
                    raise ReplayError(f"{where}: {part} {k} {key} is not an array of numbers") from None
                if shape != (j, dims):
                    raise ReplayError(f"{where}: {part} {k} {key} has shape {shape}, expected ({j}, {dims})")
    for k, d in enumerate(obj.get("body") or []):
        for link, part in (("left_hand", "hand"), ("right_hand", "hand"), ("face", "face")):
            v = d.get(link)
            if v is not None and (not isinstance(v, int) or not 0 <= v < len(obj.get(part) or [])):
                raise ReplayError(f"{where}: body {k} {link} {v!r} is not the index of a {part}")
    try:
        return Result.from_dict(obj)
    except (TypeError, ValueError) as e:
        raise ReplayError(f"{where}: {e}") from None


def to_item(obj: dict[str, Any], index: int) -> Item:
    """Where a saved record came from: a video frame (`video`, `frame`, `time_s`) or an image."""
    if "frame" in obj and obj["frame"] is not None:
        time_s = obj.get("time_s")
        return Item(index, obj.get("video"), int(obj["frame"]), None if time_s is None else float(time_s))
    return Item(index, obj.get("image"))


class RecordedError(Exception):
    """A saved record of an input that could not be read (`{"image": path, "error": message}`);
    `record` is the saved object, written back out as it is."""

    def __init__(self, record: dict[str, Any]) -> None:
        super().__init__(str(record.get("error")))
        self.record = record


def replay(path: str, on_skip: Optional[Callable[[Item, RecordedError], None]] = None) -> Iterator[tuple[Item, Result]]:
    """(Item, Result) for each record of a saved JSON Lines file, in file order.

    Records of inputs that could not be read (an `"error"` field, no detections) are not results:
    they go to on_skip(item, RecordedError) in their place (by default they are left out).
    """
    index = itertools.count()

    def make(number: int, obj: dict[str, Any]) -> tuple[Item, Union[Result, RecordedError]]:
        where = f"{path}, line {number}"
        try:
            item = to_item(obj, next(index))
        except (TypeError, ValueError):
            raise ReplayError(f"{where}: frame must be a whole number and time_s a number") from None
        if "error" in obj and "height" not in obj:
            return item, RecordedError(obj)
        return item, to_result(obj, where)

    for item, made in _records(path, make):
        if isinstance(made, RecordedError):
            if on_skip is not None:
                on_skip(item, made)
            continue
        yield item, made


def first_record(path: str) -> Optional[dict[str, Any]]:
    """The file's first record (None for an empty file), e.g. to name outputs after its model."""
    for _, obj in read_records(path):
        return obj
    return None


def check_file(path: str) -> int:
    """Read the whole file once, as `replay` would, and return its number of records: a malformed
    line raises ReplayError before anything is made of the file (so that no output is half written)."""
    count = 0
    for count, _ in enumerate(replay(path), 1):
        pass
    return count
