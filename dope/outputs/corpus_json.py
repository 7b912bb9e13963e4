"""The JSON Lines file of a corpus (several videos, corpus.py): whole videos only, in input order,
and a --resume run picks it up where it stopped.

Records are written as frames come (flushed line by line), the video's block of lines following
the last; a video that fails or is interrupted has its block cut off again, so that the file
holds the records of the videos done whole (every frame, `"video"` in each), in the order the
videos were given (blocks that come back out of order, from Ray, are sorted when the file is
closed; the frames of a video keep their order). A file written in place (standard output, a
FIFO) cannot be cut back or sorted: there, blocks come in the order videos end, and a failed
video's records stay.

--resume (see outputs/resume.py for images): the run writes `NAME.partial.jsonl` as it goes,
first the blocks kept from earlier runs, then each video's block, each followed by a line
`{"finished": VIDEO, "records": N}` once the video is done; at the end these lines are taken out
and the file is renamed to `NAME.jsonl` (also on Ctrl-C). A video is done when `NAME.jsonl` holds
its records (a corpus run only ever puts whole videos there), or when the partial file a killed
run left holds its block followed by its `finished` line with the right count: a block cut short
by a kill (no `finished` line) is dropped and its video is done again from its start.
"""
from __future__ import annotations

import json
import logging
import os
import contextlib
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Iterable, Iterator, Mapping, Optional

from dope.errors import DopeError
from dope.jsonio import loads
from dope.files import staging_path
from dope.outputs.resume import check_made_alike
from dope.outputs.writers import JsonLinesWriter, json_line, partial_path, record_line
from dope.stream import Frame

log = logging.getLogger("dope")

FINISHED = "finished"  # the key of the line that closes a video's block in a partial file
_RECORD_HEAD = b'{"video": '  # how record() starts a video frame's line
_FINISHED_HEAD = b'{"' + FINISHED.encode() + b'": '


@dataclass
class Block:
    """Where a video's records lie in a file: byte ranges [start, end) of whole lines, in order."""
    file: str
    extents: list[tuple[int, int]] = field(default_factory=list)
    records: int = 0

    def add(self, start: int, end: int) -> None:
        if self.extents and self.extents[-1][1] == start:
            self.extents[-1] = (self.extents[-1][0], end)
        else:
            self.extents.append((start, end))
        self.records += 1

    def copy_to(self, target: BinaryIO, source: Optional[BinaryIO] = None) -> None:
        with (open(self.file, "rb") if source is None else contextlib.nullcontext(source)) as f:
            for start, end in self.extents:
                f.seek(start)
                _copy(f, target, end - start)


def read_finished_videos(path: str, *, made: Optional[Mapping[str, Any]] = None) -> dict[str, Block]:
    """{video: where its records lie} of the videos done whole in `path` and in its partial file
    (see the module's docstring; the partial file's blocks win). DopeError for a line that is not
    JSON (but a truncated last one, dropped with a warning), for image records, and for records
    made otherwise than `made` says (resume.check_made_alike). The files are read line by line, never whole."""
    finished: dict[str, Block] = {}
    for name, marked in ((path, False), (partial_path(path), True)):
        if os.path.isfile(name):
            finished.update(_blocks_of(name, marked, made))
    return finished


def _blocks_of(name: str, marked: bool, made: Optional[Mapping[str, Any]]) -> dict[str, Block]:
    """The blocks of `name`: every video's (marked False), or those closed by their `finished`
    line with the right count (marked True)."""
    open_blocks: dict[str, Block] = {}
    done: dict[str, Block] = {}
    for number, start, end, rec in _lines(name):
        if isinstance(rec, dict) and FINISHED in rec:
            block = open_blocks.pop(rec[FINISHED], None)
            if marked and block is not None and block.records == rec.get("records"):
                done[rec[FINISHED]] = block
            continue
        if not isinstance(rec, dict) or not isinstance(rec.get("video"), str):
            if isinstance(rec, dict) and "error" in rec:
                continue  # an input that could not be read: not done
            raise DopeError(f"{name} line {number} is not a video frame's record; --resume over videos continues "
                            "video runs (give another --json)")
        check_made_alike(name, rec, made)
        open_blocks.setdefault(rec["video"], Block(name)).add(start, end)
    if not marked:
        done.update(open_blocks)
    return done


def _lines(name: str) -> Iterator[tuple[int, int, int, Any]]:
    """(line number, start, end, JSON) of every non-blank line of `name`, the newline within
    [start, end); a truncated last line (no newline, not JSON) is dropped with a warning, any
    other line that is not JSON is a DopeError."""
    with open(name, "rb") as f:
        start = 0
        for number, line in enumerate(f, 1):
            end = start + len(line)
            if line.strip():
                try:
                    rec = loads(line)
                except ValueError:
                    if not line.endswith(b"\n"):
                        log.warning("%s: dropped the truncated last line (%d bytes) left by an interrupted run",
                                    name, len(line))
                        return
                    raise DopeError(f"{name} line {number} is not JSON; cannot resume from it (fix or delete "
                                    "it)") from None
                if not line.endswith(b"\n"):
                    return  # whole but for its newline: dropped too, so that every block ends with one
                yield number, start, end, rec
            start = end


class CorpusJson:
    """The corpus's JSON Lines writer (see the module's docstring).

    order: the videos of the run, in input order; kept: the blocks of earlier runs that are kept
    (`read_finished_videos`), written first (--resume); resume: write at `NAME.partial.jsonl`,
    closing each block with its `finished` line; extra: top-level keys of every record (model,
    post-processing). A video's block is opened by `begin`, fed by `write`, and closed by `finish`
    (done) or `drop` (failed or interrupted); `add` writes a whole block at once (a video done on Ray)."""

    def __init__(self, path: str, order: Iterable[str], *, kept: Optional[dict[str, Block]] = None,
                 resume: bool = False, **extra: Any) -> None:
        rank = {video: i for i, video in enumerate(order)}
        self._rank = lambda video: rank.get(video, -1)  # records of other videos first, as they were
        self.extra = extra
        self.resume = resume
        kept = dict(kept or {})
        staging = partial_path(path) if resume else None
        aside = None
        if staging and any(b.file == staging for b in kept.values()):
            # the partial file is written anew: the blocks kept from it are read from a copy beside it
            aside = staging_path(staging, ".jsonl")
            os.replace(staging, aside)
            for video, b in kept.items():
                if b.file == staging:
                    kept[video] = Block(aside, b.extents, b.records)
        self.out = JsonLinesWriter(path, staging=staging)
        self.path = self.out.path
        self._last = -1
        self._sorted = True
        self._open: Optional[tuple[str, tuple[int, int]]] = None  # (video, where its block starts)
        try:
            for video in sorted(kept, key=self._rank):
                self.begin(video)
                self.out.out.file.flush()
                kept[video].copy_to(self.out.out.file.buffer)
                self.out.count += kept[video].records
                self.finish(video)
        except BaseException:
            self.out.abort()
            if aside is not None:
                os.replace(aside, staging)
            raise
        if aside is not None:
            os.remove(aside)

    def begin(self, video: str) -> None:
        rank = self._rank(video)
        self._sorted = self._sorted and rank > self._last
        self._last = max(self._last, rank)
        self._open = (video, self.out.mark() if self.out.staged else (0, self.out.count))

    def write(self, frame: Frame) -> None:
        self.out.write_line(record_line(frame.item, frame.result, **self.extra))

    def skip(self, item: Any, error: Exception) -> None:
        self.out.write({"image": item.name, "error": str(error)})

    def finish(self, video: str) -> None:
        """The open block is whole: its `finished` line (--resume), so that a later run keeps it."""
        if self._open is None or self._open[0] != video:
            return
        if self.resume:
            self.out.write_line(json_line({FINISHED: video, "records": self.out.count - self._open[1][1]}))
            self.out.count -= 1  # counts records
        self._open = None

    def drop(self, video: str) -> None:
        """Cut off the open block (a video that failed or was interrupted)."""
        if self._open is None or self._open[0] != video:
            return
        if self.out.staged:
            self.out.cut_back(self._open[1])
        self._open = None

    def add(self, video: str, lines: Iterable[str]) -> None:
        """A whole block of JSON lines (with their newlines)."""
        self.begin(video)
        for line in lines:
            self.out.write_line(line)
        self.finish(video)

    def close(self) -> None:
        if self._open is not None:  # closed in the middle of a video: not a whole one
            self.drop(self._open[0])
        if self.out.staged and (self.resume or not self._sorted):
            self.out.rewrite(self._final_copy)
        self.out.close()

    def _final_copy(self, source: BinaryIO, target: BinaryIO) -> int:
        """The records without the `finished` lines, in input order (frames keep theirs): one pass to
        find each video's lines, then a copy of them video by video."""
        blocks: dict[int, Block] = {}
        for _, start, end, rec in _lines_fast(source):
            if rec is not FINISHED:
                blocks.setdefault(self._rank(rec), Block("")).add(start, end)
        for rank in sorted(blocks):
            blocks[rank].copy_to(target, source)
        return sum(b.records for b in blocks.values())

    def abort(self) -> None:
        self.out.abort()


def _lines_fast(f: BinaryIO) -> Iterator[tuple[int, int, int, Any]]:
    """(line number, start, end, the video of the record, or FINISHED) of the lines of a file this
    module wrote, reading only the start of a record's line."""
    decoder = json.JSONDecoder()
    start = 0
    for number, line in enumerate(f, 1):
        end = start + len(line)
        if line.startswith(_FINISHED_HEAD):
            yield number, start, end, FINISHED
        elif line.startswith(_RECORD_HEAD):
            yield number, start, end, decoder.raw_decode(line[len(_RECORD_HEAD):].decode("utf-8"))[0]
        elif line.strip():
            rec = loads(line)
            yield number, start, end, rec.get("video") if isinstance(rec, dict) else None
        start = end


def _copy(source: BinaryIO, target: BinaryIO, size: int, chunk: int = 1 << 20) -> None:
    while size > 0:
        data = source.read(min(size, chunk))
        if not data:
            raise OSError(f"{getattr(source, 'name', 'a file')} ended early")
        target.write(data)
        size -= len(data)


class BlockLines:
    """A video's JSON lines collected in memory (a corpus's video run on a Ray worker, which sends
    them back to the driver's CorpusJson): the same `begin`/`write`/`finish`/`drop` as CorpusJson."""

    def __init__(self, **extra: Any) -> None:
        self.extra = extra
        self.lines: list[str] = []
        self.path = None

    def begin(self, video: str) -> None:
        self.lines = []

    def write(self, frame: Frame) -> None:
        self.lines.append(record_line(frame.item, frame.result, **self.extra))

    def skip(self, item: Any, error: Exception) -> None:
        self.lines.append(json_line({"image": item.name, "error": str(error)}))

    def finish(self, video: str) -> None:
        pass

    def drop(self, video: str) -> None:
        self.lines = []

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass
