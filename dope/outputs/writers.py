"""Writing results as they come: JSON Lines and annotated videos that survive an interruption.

Both writers write through `files.open_output`: into a temporary file beside their target, renamed
at the end, so an existing file is only ever replaced by a finished one (a FIFO, a device or
standard output is written in place instead; a symlink's target is replaced, not the link). As
context managers:

- leaving normally, or by KeyboardInterrupt (Ctrl-C), finalises: the target holds everything
  written so far (JSON lines are flushed one by one; the video is closed so that it plays up to
  its last frame);
- leaving by any other exception leaves the target alone and keeps what was written as
  `NAME.partial.EXT` (nothing when nothing was written).
"""
from __future__ import annotations

import functools
import logging
import os
from fractions import Fraction
from typing import Any, BinaryIO, Callable, Optional

import cv2
import numpy as np

import dope.testpoints as testpoints
from dope.results import (JSON_DECIMALS, LINKS, MISSING_VALUE, NO_LINK, PartArrays, Result, extra_column,
                          extra_value)
from dope.files import Output, OutputError, open_output, staging_path
from dope.inputs.replay import SAVED, SavedPart
import dope.jsonio as jsonio
from dope.jsonio import collector_paused, dumps
from json.encoder import encode_basestring_ascii
from dope.inputs.sources import Item
from dope.parts import PART_NAMES

log = logging.getLogger(__name__)

VIDEO_FOURCC = "mp4v"  # the fallback: opencv-python-headless's bundled FFmpeg has no H.264 encoder
H264_OPTIONS = {"crf": "20", "preset": "veryfast", "threads": "1"}  # libx264: visually lossless, fast; one thread: the same bytes whatever the machine or worker
TIME_DECIMALS = 4


def record(item: Item, result: Result, **extra: Any) -> dict[str, Any]:
    """The JSON object for one image or frame: `Result.to_dict()` (SPEC §10) and `extra`.

    An image keeps its `"image"` key; a video frame has `"video"`, `"frame"` (its number) and
    `"time_s"` (seconds from the start) in its place.
    """
    d = result.to_dict()
    _keep_saved_numbers(d, result)
    return _placed(item, d, extra)


def _placed(item: Item, d: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`record`'s object from the result's dict: the item's keys, then `extra`."""
    if item.frame is None:
        d["image"] = item.name if item.name is not None else d["image"]
    else:
        del d["image"]
        time_s = None if item.time_s is None else round(item.time_s, TIME_DECIMALS)
        d = {"video": item.name, "frame": item.frame, "time_s": time_s, **d}
    d.update(extra)
    return d


class _PartText:
    """A part in `record_line`'s object: written as `_part_json` makes its text."""

    def __init__(self, arrays: PartArrays, saved: Optional[SavedPart]) -> None:
        self.arrays, self.saved = arrays, saved


def record_line(item: Item, result: Result, **extra: Any) -> str:
    """`json_line(record(item, result, **extra))`, the same text, made from the result's arrays: each
    part's numbers are rounded, kept where saved (see `_keep_saved_numbers`) and written a whole
    array at a time (`jsonio.rows`), never as lists of Python numbers (a crowd's frame holds a third
    of a million). Records replayed from a file not in the plain form take `record`'s way."""
    saved = result.meta.get(SAVED)
    kept: dict[str, Optional[SavedPart]] = dict.fromkeys(PART_NAMES)
    if isinstance(saved, dict):
        for part in PART_NAMES:
            before = saved.get(part) or []
            if len(before) != len(result[part]) or not before:
                continue
            if not isinstance(before, SavedPart):  # a record read one detection at a time
                return json_line(record(item, result, **extra))
            kept[part] = before
    d = _placed(item, result.to_dict(parts={p: _PartText(result[p], kept[p]) for p in PART_NAMES}), extra)
    fields = []
    for key, value in d.items():
        if not isinstance(key, str):  # json.dumps turns such keys into strings: let it
            return json_line(record(item, result, **extra))
        text = _part_json(value.arrays, value.saved) if isinstance(value, _PartText) else dumps(value)
        fields.append(encode_basestring_ascii(key) + ": " + text)
    return "{" + ", ".join(fields) + "}\n"


def _part_json(arrays: PartArrays, saved: Optional[SavedPart], decimals: int = JSON_DECIMALS) -> str:
    """The JSON text of `arrays.to_dicts(decimals)` with the saved numbers kept as
    `_keep_saved_numbers` keeps them (the same comparisons: float32, NaN unequal), each field
    written for every detection at once."""
    n = len(arrays)
    if n == 0:
        return "[]"
    data = arrays.fields
    scores = arrays.scores.astype(np.float64)
    pose2d = np.round(arrays.pose2d.astype(np.float64), decimals)
    pose3d = np.round(arrays.pose3d.astype(np.float64), decimals + 2)
    if saved is not None:
        before = np.asarray(saved.scores, np.float64)
        same = before.astype(np.float32) == arrays.scores
        scores[same] = before[same]
        for now, read, written in ((arrays.pose2d, saved.pose2d, pose2d), (arrays.pose3d, saved.pose3d, pose3d)):
            same = (read.astype(np.float32) == now).reshape(n, -1).all(axis=1)
            written[same] = read[same]
    columns: dict[str, list[Optional[str]]] = {
        "score": jsonio.rows(scores), "pose2d": jsonio.rows(pose2d), "pose3d": jsonio.rows(pose3d)}
    if arrays.part == "hand":
        columns["is_right"] = ["true" if v else "false" for v in data["is_right"].astype(bool).tolist()]
    if arrays.part == "body":
        for link in LINKS:
            columns[link] = ["null" if v == NO_LINK else str(v) for v in data[link].tolist()]
    for name in arrays.extra_fields:
        columns[name] = _column_json(data[name], decimals + 2)
    prefixes = [encode_basestring_ascii(k) + ": " for k in columns]
    if all(None not in column for column in columns.values()):
        template = "{" + ", ".join(p.replace("%", "%%") + "%s" for p in prefixes) + "}"
        dets = [template % row for row in zip(*columns.values())]
    else:  # a field some detections do not have: its key left out
        dets = ["{" + ", ".join(p + t for p, t in zip(prefixes, row) if t is not None) + "}"
                for row in zip(*columns.values())]
    return "[" + ", ".join(dets) + "]"


def _column_json(a: np.ndarray, decimals: int) -> list[Optional[str]]:
    """The JSON text of each detection's value of an added field as `PartArrays.to_dicts` writes it
    (`results.extra_column`); None where a detection has none (the key is left out)."""
    if a.dtype.kind == "f" and a.ndim >= 2 and 0 not in a.shape[1:]:  # rows of floats, rounded
        return jsonio.rows(np.round(a.astype(np.float64), decimals))
    # One number a detection, as it is (not a longdouble: its tolist holds numpy scalars, which json refuses).
    if a.dtype.kind == "f" and a.ndim == 1 and a.dtype.itemsize <= 8:
        return jsonio.rows(a.astype(np.float64))
    if a.dtype.kind in "iu" and a.ndim == 1:
        return list(map(str, a.tolist()))
    if a.dtype.kind == "b" and a.ndim == 1:
        return ["true" if v else "false" for v in a.tolist()]
    column = extra_column(a, decimals)
    if column is None:  # an object array: value by value
        values = [extra_value(v, decimals) for v in a]
        return [None if v is MISSING_VALUE else dumps(v) for v in values]
    return [dumps(v) for v in column]


def _keep_saved_numbers(d: dict[str, Any], result: Result) -> None:
    """Replayed detections (--from-json) whose score or poses no stage changed keep the numbers they
    were read with: stored as float32, coordinates past about 1000 px would lose their last decimal."""
    saved = result.meta.get(SAVED)
    if not isinstance(saved, dict):
        return
    for part in PART_NAMES:
        arr, before = result[part], saved.get(part) or []
        if len(before) != len(arr):
            continue
        if isinstance(before, SavedPart):
            with collector_paused():
                _keep_saved_part(d[part], arr, before)
            continue
        for i, det in enumerate(before):
            for key, now in (("score", arr.scores[i]), ("pose2d", arr.pose2d[i]), ("pose3d", arr.pose3d[i])):
                try:
                    same = np.array_equal(np.asarray(det[key], np.float32), now)
                except (KeyError, TypeError, ValueError):
                    continue
                if same:
                    d[part][i][key] = det[key]


def _keep_saved_part(dets: list[dict[str, Any]], arr: Any, before: SavedPart, decimals: int = JSON_DECIMALS) -> None:
    """`_keep_saved_numbers` for one part read in the plain form: the same comparisons (float32, NaN
    unequal), a whole array at once. A pose is replaced only where its saved numbers are not already
    those `to_dict` wrote (the same bits: 0.0 and -0.0 differ in JSON)."""
    n = len(arr)
    same = np.asarray(before.scores, np.float32) == arr.scores
    for i in np.flatnonzero(same).tolist():
        dets[i]["score"] = before.scores[i]
    for key, saved, now, places in (("pose2d", before.pose2d, arr.pose2d, decimals),
                                    ("pose3d", before.pose3d, arr.pose3d, decimals + 2)):
        same = (saved.astype(np.float32) == now).reshape(n, -1).all(axis=1)
        written = np.round(now.astype(np.float64), places)
        other = (written.view(np.int64) != saved.view(np.int64)).reshape(n, -1).any(axis=1)
        rows = np.flatnonzero(same & other).tolist()
        for i, values in zip(rows, saved[rows].tolist()):
            dets[i][key] = values


def partial_path(path: str) -> str:
    """Where an unfinished output is kept: `out.partial.jsonl` for `out.jsonl`."""
    root, ext = os.path.splitext(path)
    return f"{root}.partial{ext}"


class ClosedOnExit:
    """A writer as a context manager: `close()` when the block ends normally or by Ctrl-C (what was
    written so far is kept), `abort()` when it ends by another error."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type: Optional[type], exc: Optional[BaseException], tb: Any) -> None:
        if exc_type is None or issubclass(exc_type, KeyboardInterrupt):
            self.close()
        else:
            self.abort()


class _StagedFile(ClosedOnExit):
    """A file written through `files.open_output`: under a staging name in the target's folder,
    renamed when finished (FIFOs, devices and standard output are written in place)."""

    what = "file"
    mode: Optional[str] = "wb"  # None: the writer opens the staging name itself
    default_ext = ""  # the staging name's extension for a target without one (a FIFO, a device)

    def __init__(self, path: str | os.PathLike, staging: Optional[str] = None) -> None:
        """staging: a fixed staging name, replaced if it exists (--resume's `NAME.partial.jsonl`, which a
        killed run leaves for the next); by default a fresh hidden name."""
        # The staging name keeps the extension: OpenCV picks the container by it.
        ext = os.path.splitext(os.fspath(path))[1] or self.default_ext
        self.out: Output = open_output(path, self.mode, suffix=".tmp" + ext, staging=staging)
        self.path = self.out.path
        self.temp_path = self.out.name
        self.count = 0  # lines or frames written
        self.closed = False

    def _finish(self) -> None:
        """Flush and close what writes into the staging file."""

    def close(self) -> None:
        """Finish the file and put it in place of the target (a video without frames is not made)."""
        if self.closed:
            return
        self.closed = True
        try:
            self._finish()
        except BaseException:
            self.out.discard()
            raise
        if self.count == 0 and self.out.file is None:
            self.out.discard()  # nothing was written into the name reserved for the writer
            return
        self.out.commit()
        log.debug("wrote %s (%d)", self.path, self.count)

    def abort(self) -> Optional[str]:
        """Finish the file without touching the target; what was written goes to the partial path,
        which is returned (None when nothing was written or the target is written in place)."""
        if self.closed:
            return None
        self.closed = True
        try:
            self._finish()
        except (OSError, cv2.error):
            pass
        kept = self.out.discard(keep_as=partial_path(self.out.final) if self.count else None)
        if kept is not None:
            log.warning("kept the unfinished %s (%d written) as %s", self.what, self.count, kept)
        return kept


def json_line(obj: dict[str, Any]) -> str:
    """One JSON Lines line (with its newline); NaN and infinities are written as null (JSON has
    neither, as Result.to_json does), never as bare words. The text of `json.dumps` with its
    defaults, byte for byte, made by orjson when it can (see dope/jsonio.py)."""
    return dumps(obj) + "\n"


class JsonLinesWriter(_StagedFile):
    """One JSON object per line, each flushed as it is written (SPEC §10 objects, see `record`)."""

    what = "JSON Lines file"
    mode = "w"

    def write(self, obj: dict[str, Any]) -> None:
        self.write_line(json_line(obj))

    def write_line(self, line: str) -> None:
        """Append one line already in JSON (ending with a newline)."""
        self.out.write(line)
        self.out.flush()
        self.count += 1
        testpoints.passed("line")

    def sort_lines(self, key: Any) -> None:
        """Put the lines written so far in the order of key(line) (a staged file only)."""
        def copy(source: BinaryIO, target: BinaryIO) -> int:
            lines = sorted((line.decode("utf-8") for line in source), key=key)
            target.write("".join(lines).encode("utf-8"))
            return len(lines)
        self.rewrite(copy)

    @property
    def staged(self) -> bool:
        """Whether the lines go to a staging file (which can be cut back and rewritten), not in place."""
        return self.out.staged is not None and self.out.file is not None

    def mark(self) -> tuple[int, int]:
        """Where the file ends now (bytes, lines), for `cut_back` (a staged file only)."""
        self.out.file.flush()
        return self.out.file.tell(), self.count

    def cut_back(self, mark: tuple[int, int]) -> None:
        """Drop every line written since `mark` was taken (a staged file only)."""
        self.out.file.flush()
        self.out.file.truncate(mark[0])
        self.out.file.seek(mark[0])
        self.count = mark[1]

    def rewrite(self, copy: Callable[[BinaryIO, BinaryIO], int]) -> None:
        """Replace the lines written so far by what copy(source, target) writes (files open in binary
        mode; it returns the number of lines written). A staged file only."""
        if not self.staged:
            raise OutputError(f"cannot reorder {self.path!r}: it is written in place")
        self.out.file.close()
        sorting = staging_path(self.path)  # a kill while sorting keeps the unsorted lines
        with open(self.temp_path, "rb") as source, open(sorting, "xb") as target:
            count = copy(source, target)
        os.replace(sorting, self.temp_path)
        self.out.file = open(self.temp_path, "a", encoding="utf-8")
        self.count = count


@functools.lru_cache(maxsize=1)
def h264_available() -> bool:
    """Whether PyAV is installed with an H.264 encoder (its wheels bundle FFmpeg with libx264)."""
    try:
        import av
        av.codec.Codec("libx264", "w")
    except Exception:  # not installed, or an FFmpeg build without libx264
        return False
    return True


class VideoWriter(_StagedFile):
    """An mp4 video of BGR uint8 frames at a constant frame rate: H.264 (yuv420p, playable in browsers
    and chat apps) through PyAV, or OpenCV's mp4v, with a warning, when H.264 is not available.
    `fourcc` names an OpenCV codec to use instead.

    The file is opened with the first frame's size (later frames of another size are resized to
    it; H.264 frames of odd width or height get a one-pixel black border); a video without frames
    is not written.
    """

    what = "video"
    mode = None
    default_ext = ".mp4"

    def __init__(self, path: str | os.PathLike, fps: float, fourcc: Optional[str] = None) -> None:
        if not fps > 0:
            raise ValueError(f"frame rate must be positive, got {fps}")
        super().__init__(path)
        self.fps = float(fps)
        self.h264 = fourcc is None and h264_available()
        if fourcc is None and not self.h264:
            log.warning("H.264 is not available (pip install av): %s is written with OpenCV's mp4v codec, "
                        "which browsers may not play", self.path)
        self.fourcc = "avc1" if self.h264 else (fourcc or VIDEO_FOURCC)
        self.size: Optional[tuple[int, int]] = None  # (width, height)
        self._writer: Any = None  # cv2.VideoWriter, or (av container, stream)
        self._resized = False

    def _open(self, width: int, height: int) -> None:
        if self.h264:
            import av
            container = av.open(self.temp_path, "w", format="mp4", options={"movflags": "+faststart"})
            stream = container.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(100000),
                                          options=H264_OPTIONS)
            stream.width, stream.height, stream.pix_fmt = width + width % 2, height + height % 2, "yuv420p"
            self._writer = (container, stream)
            return
        self._writer = cv2.VideoWriter(self.temp_path, cv2.VideoWriter_fourcc(*self.fourcc), self.fps,
                                       (width, height))
        if not self._writer.isOpened():
            self._writer = None
            raise OutputError(f"cannot write video {self.path!r} with codec {self.fourcc!r} at {width}x{height}")

    def write(self, frame_bgr: np.ndarray) -> None:
        """Append a frame: uint8[H, W, 3] BGR, of the first frame's size."""
        height, width = frame_bgr.shape[:2]
        if self._writer is None:
            self._open(width, height)
            self.size = (width, height)
        elif (width, height) != self.size:
            # Some streams change resolution midway; a video file cannot: fit the frame to the first size.
            if not self._resized:
                log.warning("%s: frames of %dx%d are resized to the first frame's %dx%d", self.path, width, height,
                            *self.size)
                self._resized = True
            frame_bgr = cv2.resize(frame_bgr, self.size, interpolation=cv2.INTER_AREA)
        if self.h264:
            import av
            container, stream = self._writer
            w, h = self.size
            if (w % 2, h % 2) != (0, 0):
                frame_bgr = cv2.copyMakeBorder(frame_bgr, 0, h % 2, 0, w % 2, cv2.BORDER_CONSTANT, value=(0, 0, 0))
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame_bgr), format="bgr24")
            for packet in stream.encode(frame):
                container.mux(packet)
        else:
            self._writer.write(np.ascontiguousarray(frame_bgr))
        self.count += 1

    def _finish(self) -> None:
        if self._writer is None:
            return
        if self.h264:
            container, stream = self._writer
            for packet in stream.encode():  # the frames the encoder still holds
                container.mux(packet)
            container.close()  # writes the mp4 index: the file plays up to the last frame
        else:
            self._writer.release()
        self._writer = None
