"""--resume: pick a JSON Lines job up where it stopped, keeping the records already written.

An input counts as done when the JSON Lines output (or the `NAME.partial.jsonl` a killed --resume
run leaves, see below) holds a record for it. Identity of an input: its path as written in the
record's `"image"` key (as given on the command line, after expansion) and its pixel size, the
record's `width` x `height` against the file's header (EXIF orientation applied), so that an
image replaced by another of a different size under the same name is done again. (An image
replaced by another of the same size and name is not noticed: the record holds no file hash.)
Records of failed images (`"error"` keys) count as not done.

A --resume run writes its output at `NAME.partial.jsonl`, flushed line by line, and renames it to
`NAME.jsonl` when it ends (also on Ctrl-C): a run killed outright (SIGKILL, out of memory, a lost
node) leaves its progress there for the next --resume. The kept records are written first; the
file is put back in input order at the end when inputs done now fall between them (images that
failed before and are read now), so that the finished file equals an uninterrupted run's.
A truncated last line (a kill in the middle of a write) is dropped with a warning.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Any, Iterable, Iterator, Mapping, Optional

from PIL import Image

from dope.errors import DopeError
from dope.jsonio import loads
from dope.outputs.writers import JsonLinesWriter, partial_path, record
from dope.stream import Frame

log = logging.getLogger("dope")

_SWAPPED_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that turn the image by 90 degrees


def read_finished(path: str, *, made: Optional[Mapping[str, Any]] = None) -> dict[str, str]:
    """{image path: its JSON line (with the newline)} of the records already in `path` and its
    partial file (the partial file's records win: they are newer). Lines of failed images are left
    out; a truncated last line is dropped with a warning. DopeError for a line that is not JSON
    elsewhere, for video records, and for records made otherwise than `made` says (check_made_alike)."""
    finished: dict[str, str] = {}
    for name in (path, partial_path(path)):
        if os.path.isfile(name):
            finished.update(_records_of(name, made))
    return finished


def check_made_alike(name: str, rec: Mapping[str, Any], made: Optional[Mapping[str, Any]]) -> None:
    """DopeError, naming the option, when the record `rec` of the file `name` was made with another
    model, post-processing, link rule or setting than `made` (RunConfig.record_keys: the keys this
    run writes on its records). A key the record lacks has its default: "nearest" links, no setting given."""
    if made is None:
        return
    advice = "resume with the same options, or write to another --json"
    if rec.get("model", made["model"]) != made["model"]:
        raise DopeError(f"{name} was written with model {rec.get('model')!r}, not {made['model']!r}; resume with the "
                        "same --model, or write to another --json")
    for key, default in (("postprocess", made.get("postprocess")), ("assign", "nearest")):
        then, now = rec.get(key, default), made.get(key, default)
        if then != now:
            raise DopeError(f"{name} was written with --{key} {then}, and this run has --{key} {now}; {advice}")
    then, now = rec.get("settings") or {}, made.get("settings") or {}
    if not isinstance(then, dict):
        raise DopeError(f"{name}: a record's \"settings\" is not an object; cannot tell how it was made ({advice})")
    for key in sorted(set(then) | set(now)):
        if then.get(key) != now.get(key):
            raise DopeError(f"{name} was written with {_option(key, then.get(key))}, and this run has "
                            f"{_option(key, now.get(key))}; {advice}")


def _option(name: str, value: Any) -> str:
    """How the option of a record setting reads on the command line."""
    flag = "--" + name.replace("_", "-")
    if value is None:
        return f"no {flag}"
    if value is True:
        return flag
    if value is False:
        return f"--no-{name.replace('_', '-')}"
    if isinstance(value, list):
        return f"{flag} {' '.join(map(str, value))}"
    return f"{flag} {value:g}" if isinstance(value, float) else f"{flag} {value}"


def read_lines(name: str) -> Iterator[tuple[int, bytes, Any]]:
    """(line number, line without its newline, the JSON it holds) of every non-blank line of a JSON
    Lines file; a truncated last line is dropped with a warning, any other that is not JSON is a
    DopeError."""
    with open(name, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline, else a line cut short
    if tail:
        try:
            loads(tail)
            lines.append(tail)  # complete, only its newline is missing
        except ValueError:
            log.warning("%s: dropped the truncated last line (%d bytes) left by an interrupted run", name,
                        len(tail))
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield number, line, loads(line)
        except ValueError:
            raise DopeError(f"{name} line {number} is not JSON; cannot resume from it (fix or delete it)") from None


def _records_of(name: str, made: Optional[Mapping[str, Any]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for number, line, rec in read_lines(name):
        if not isinstance(rec, dict) or "video" in rec or not isinstance(rec.get("image"), str):
            raise DopeError(f"{name} line {number} is not an image record; --resume continues image runs")
        if "error" in rec:
            continue
        check_made_alike(name, rec, made)
        out[rec["image"]] = line.decode("utf-8") + "\n"
    return out


def image_size(path: str) -> Optional[tuple[int, int]]:
    """(width, height) of an image file once upright, from its header; None when unreadable."""
    try:
        with Image.open(path) as im:
            width, height = im.size
            if im.getexif().get(0x0112) in _SWAPPED_ORIENTATIONS:
                width, height = height, width
            return width, height
    except (OSError, SyntaxError, ValueError):
        return None


def still_done(finished: dict[str, str], inputs: Iterable[str]) -> dict[str, str]:
    """The finished records of `inputs` whose image has the recorded pixel size (see the module's
    docstring); records of other files are kept too, unchecked (they are not redone)."""
    inputs = set(inputs)
    kept = {}
    for name, line in finished.items():
        if name in inputs:
            rec = json.loads(line)
            if image_size(name) != (rec.get("width"), rec.get("height")):
                log.info("%s changed since it was done; doing it again", name)
                continue
        kept[name] = line
    return kept


class ResumedJsonFrames:
    """The JSON Lines writer of a --resume run: the kept records, then every new frame's record,
    in input order once closed (see the module's docstring). `order` lists the run's inputs."""

    def __init__(self, path: str, kept: dict[str, str], order: Iterable[str], **extra: Any) -> None:
        rank = {name: i for i, name in enumerate(order)}
        self.extra = extra
        self.out = JsonLinesWriter(path, staging=partial_path(path))
        self.path = self.out.path
        self._rank = lambda name: rank.get(name, -1)  # records of other files first, as they were
        self._last = -1
        self._sorted = True
        for name in sorted(kept, key=self._rank):
            self.out.write_line(kept[name])
            self._last = self._rank(name)

    def write(self, frame: Frame) -> None:
        self._put(frame.item.name, record(frame.item, frame.result, **self.extra))

    def skip(self, item: Any, error: Exception) -> None:
        """An input that could not be read keeps its place: `{"image": path, "error": message}`
        (not counted as done by the next --resume)."""
        self._put(item.name, {"image": item.name, "error": str(error)})

    def _put(self, name: Any, obj: dict[str, Any]) -> None:
        rank = self._rank(name)
        self._sorted = self._sorted and rank > self._last
        self._last = max(self._last, rank)
        self.out.write(obj)

    def close(self) -> None:
        if not self._sorted:
            self.out.sort_lines(lambda line: self._rank(json.loads(line)["image"]))
        self.out.close()

    def abort(self) -> None:
        self.out.abort()
