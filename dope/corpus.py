"""Many videos in one command (`--video` with several files, folders or glob patterns): a corpus.

Each video is run in turn by a `pipeline.Pipeline` of its own, with a `Shared` holding what the
videos share: the detector, loaded once, and the JSON Lines writer (outputs/corpus_json.py: each video's records, which carry their `"video"`, as one
block, in input order). With --ray, each video is one Ray task instead (cluster/videos.py), at
most --workers at a time, run on the worker as here. Every video gets a new tracker, so tracks
never cross from one video to the next, and outputs of its own, named after it with the
sub-folders below the folder the videos were named from kept: the annotated video (beside it, or
in --output-dir) and the exports (`--export FOLDER/ --export-format pose` writes
FOLDER/<sub-folders>/<video stem>.pose).

A video that cannot be opened, or that breaks off in the middle, is reported in one line and its
exports and JSON records are not written (an annotated video keeps what it drew as
NAME.partial.mp4, as any failed run does); the others are done and the exit code is 1.
`--resume` skips the videos whose exports are all there and, with --json, whose records the JSON
Lines (or the NAME.partial.jsonl a killed run leaves) holds whole: exports are written under
staging names and renamed once finished, and an interrupted video's own outputs and records are
dropped, so an export that is there is whole; a video cut off by a kill is done again from its
start.
"""
from __future__ import annotations

import contextlib
import glob
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from dope.config import RunConfig
from dope.errors import DopeError, InputError
from dope.pipeline import Pipeline

log = logging.getLogger("dope")


@dataclass
class Shared:
    """What the videos of one command share, handed to each run of a video.

    base: the folder the --video arguments are named from (sub-folders below it are kept);
    open_json: open_json(path, extra keys of the records) builds the JSON Lines writer of the
    corpus (outputs/corpus_json.py), called by the first video that writes; detector: the DOPE
    detector, set by the first run that loads it; json: that writer, closed at the end; bar:
    options of each video's frame bar."""
    base: Optional[str]
    open_json: Optional[Callable[[str, dict[str, Any]], Any]] = None
    detector: Any = None
    json: Any = None
    bar: dict[str, Any] = field(default_factory=dict)

    def json_writer(self, claim: Callable[[], str], extra: dict[str, Any], video: str) -> "VideoRecords":
        """The writer of one video's records: its block in the corpus's JSON Lines (opened on first
        use, at the path claim() returns)."""
        if self.json is None:
            self.json = self.open_json(claim(), extra)
        return VideoRecords(self.json, video)


class VideoRecords:
    """One video's block of the corpus's JSON Lines, seen by its run: closed, the block is whole;
    aborted (the video failed or was interrupted), it is cut off again (corpus_json.py)."""

    def __init__(self, writer: Any, video: str) -> None:
        self.writer = writer
        self.video = video
        self.path = None  # the command reports it once, at the end
        writer.begin(video)

    def write(self, frame: Any) -> None:
        self.writer.write(frame)

    def skip(self, item: Any, error: Exception) -> None:
        self.writer.skip(item, error)

    def close(self) -> None:
        self.writer.finish(self.video)

    def abort(self) -> None:
        self.writer.drop(self.video)


def is_folder_spec(path: str) -> bool:
    """Whether an --export argument names a folder: it ends in a separator or is one already."""
    return path.endswith(("/", os.sep)) or os.path.isdir(path)


def single_video(config: RunConfig) -> Optional[str]:
    """The one --video argument (a file or a camera) when the command is a plain one-video run,
    else None: several arguments, a folder or a pattern, --export-format or --resume make a corpus."""
    videos = config.video
    if len(videos) != 1 or config.export_format or config.resume:
        return None
    spec = videos[0]
    if os.path.isdir(spec) or (glob.has_magic(spec) and not os.path.lexists(spec)):
        return None
    if any(is_folder_spec(e) for e in config.export or ()):
        return None  # refused with a message in export_targets
    return spec


def export_targets(config: RunConfig, video: str, base: Optional[str], many: bool) -> list[str]:
    """The export paths of one video: FOLDER/<sub-folders>/<stem>.<format> for an --export folder."""
    from dope.exports.writer import EXTENSIONS
    out = []
    for spec in config.export or ():
        if not is_folder_spec(spec):
            if many:
                raise DopeError(f"--export {spec!r} names one file, and there are several videos: give a folder "
                                "(ending in /) and --export-format")
            out.append(spec)
            continue
        if not config.export_format:
            raise DopeError(f"--export {spec!r} is a folder: add --export-format "
                            f"({', '.join(e[1:] for e in EXTENSIONS)})")
        stem = os.path.splitext(os.path.basename(video))[0]
        out.append(os.path.normpath(os.path.join(spec, _below(video, base), f"{stem}.{config.export_format}")))
    return out


def _below(video: str, base: Optional[str]) -> str:
    """The sub-folders of the video's folder below `base` ('.' for none)."""
    if not base:
        return os.curdir
    rel = os.path.relpath(os.path.dirname(os.path.abspath(video)), os.path.abspath(base))
    return os.curdir if rel.startswith(os.pardir) else rel


def is_complete(path: str) -> bool:
    """Whether an export is there, whole (exports are renamed into place once written; a .bvh
    export is one STEM.<person>.bvh per person)."""
    if path.lower().endswith(".bvh"):
        stem = os.path.splitext(path)[0]
        return bool(glob.glob(glob.escape(stem) + ".*.bvh"))
    return os.path.isfile(path)


def plan(config: RunConfig) -> tuple[list[str], dict[str, list[str]], Optional[str]]:
    """(videos, their export paths by video, base folder); DopeError for what cannot be run."""
    from dope.files import OutputGuard
    from dope.inputs.sources import SourceError, common_base, expand_videos
    try:
        videos = expand_videos(config.video)
    except SourceError as e:
        raise DopeError(str(e)) from None
    many = len(videos) > 1
    for option, given in (("--html", config.html), ("--from-json", config.from_json)):
        if given and many:
            raise DopeError(f"{option} takes one video at a time; {len(videos)} were given")
    if config.export_format and not any(is_folder_spec(e) for e in config.export or ()):
        raise DopeError("--export-format names the format of the files written in an --export folder "
                        "(--export FOLDER/ --export-format pose)")
    if config.resume:
        if not config.export and not config.json:
            raise DopeError("--resume with videos skips those whose exports (or --json records) are written: give "
                            "--export or --json")
        if config.json == "-":
            raise DopeError("--resume continues a --json file; standard output cannot be read back: give a file")
    base = common_base(config.video)
    targets = {v: export_targets(config, v, base, many) for v in videos}
    if any(p.lower().endswith(".pose") for paths in targets.values() for p in paths):
        from dope.exports.pose import pose_format_missing
        missing = pose_format_missing()
        if missing:  # before any video is opened or the model loads
            raise DopeError(f"--export {config.export[0]!r}: {missing}")
    guard, owner = OutputGuard(videos), {}
    for path in ([config.json] if config.json else []):
        guard.check(path, option="--json", create_folders=True)
    for video, paths in targets.items():
        for path in paths:
            key = os.path.realpath(path)
            if key in owner:
                raise DopeError(f"{owner[key]} and {video} would both write {path}: rename one of them")
            owner[key] = video
            guard.check(path, option="--export", create_folders=True)
    return videos, targets, base


def run_videos(config: RunConfig) -> int:
    """Every video of --video through a `Pipeline` of its own (sharing `Shared`), in turn or, with
    --ray, as Ray tasks (cluster/videos.py); the exit code."""
    from tqdm.contrib.logging import logging_redirect_tqdm
    from dope.progress import interactive, progress_bar
    from dope.outputs.corpus_json import CorpusJson
    videos, targets, base = plan(config)
    finished = _finished_records(config) if config.resume and config.json else {}
    todo = [v for v in videos if not (config.resume and all(is_complete(p) for p in targets[v])
                                      and (not config.json or v in finished))]
    if config.resume and len(todo) < len(videos):
        log.info("resuming: %d of %d videos already done", len(videos) - len(todo), len(videos))
    kept = {v: block for v, block in finished.items() if v not in todo}  # a video done again drops its records

    def open_json(path: str, extra: dict[str, Any]) -> CorpusJson:
        return CorpusJson(path, videos, kept=kept, resume=config.resume, **extra)

    shared = Shared(base, open_json=open_json)
    failed: list[str] = []
    bar = progress_bar(total=len(videos), initial=len(videos) - len(todo), unit="video", disable=config.quiet,
                       dynamic_ncols=True, position=0)
    shared.bar = {"position": 1, "leave": False}

    def ended(video: str, code: int, error: Optional[Exception] = None) -> None:
        if error is not None:
            _skipped(video, error, failed)
        elif code and video not in failed:
            failed.append(video)
        bar.update()

    try:
        with bar, (logging_redirect_tqdm() if not bar.disable and interactive() else contextlib.nullcontext()):
            if config.ray is not None:
                from dope.cluster.videos import run_corpus
                run_corpus(config, [(v, video_args(config, v, targets, base)) for v in todo], shared, ended)
            for video in todo if config.ray is None else ():
                one = video_args(config, video, targets, base)
                shared.bar["desc"] = os.path.basename(video)
                try:
                    code = Pipeline(one, shared).run()
                except InputError as e:
                    ended(video, 1, e)
                    continue
                except DopeError as e:
                    if shared.detector is None:  # before the model loads: the same for every video, stop
                        raise
                    ended(video, 1, e)
                    continue
                ended(video, code)
    except BaseException:
        if shared.json is not None:  # the videos done are kept (the one interrupted is cut off)
            shared.json.close()
        raise
    if shared.json is not None:
        shared.json.close()
        if getattr(shared.json, "path", None) and os.path.exists(shared.json.path):
            log.info("wrote %s", shared.json.path)
    if failed:
        log.warning("%d of %d videos could not be processed (named above); the others are done", len(failed),
                    len(videos))
        return 1
    return 0


def video_args(config: RunConfig, video: str, targets: dict[str, list[str]],
               base: Optional[str]) -> RunConfig:
    """The options of one video's run (its own exports), once the folders of its outputs are made."""
    from dope.files import make_folder
    for path in targets[video]:
        make_folder(os.path.dirname(os.path.abspath(path)), option="the folder of --export")
    if config.output_dir and not config.no_overlay:  # the annotated video's sub-folder
        make_folder(os.path.join(config.output_dir, _below(video, base)), option="--output-dir")
    return config.replace(video=video, export=targets[video] or None, export_format=None, resume=False)


def _finished_records(config: RunConfig) -> dict[str, Any]:
    """--resume with --json: where the records of the videos done whole lie (outputs/corpus_json.py)."""
    from dope.detector import model_name, resolve_model
    from dope.outputs.corpus_json import read_finished_videos
    model = model_name(resolve_model(config.model, download=not config.no_download, progress=not config.quiet))
    return read_finished_videos(config.json, made=config.record_keys(model))


def _skipped(video: str, error: Exception, failed: list[str]) -> None:
    message = str(error)
    log.warning("skipped: %s", message if video in message else f"{video}: {message}")
    failed.append(video)

