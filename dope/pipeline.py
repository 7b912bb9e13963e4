"""The stream of per-frame results that the command line runs, stage after stage.

    source -> network -> detections -> (stages over time) -> writers

A `Frame` (stream.py) is one image or video frame: `(item, image, result)`. Every stage is a
generator from frames to frames (`for f in stage(frames)`), so stages compose, can be tested on
plain lists, and keep nothing but what they need (a look-ahead stage buffers a bounded window).
Two ways in: `DOPE.stream` (the network) and `replay_frames` (saved JSON Lines, after the network).
Writers take frames with `write(frame)` and are finished with `close()`; see outputs/.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from typing import Any, Callable, Iterable, Iterator, Optional

import numpy as np

from dope.config import RunConfig
from dope.errors import DopeError, InputError
from dope.files import STDOUT, OutputGuard, make_folder, output_name, output_path
from dope.inputs.replay import replay
from dope.inputs.sources import ImageError, Item, load_image
from dope.inputs.weights import models_dir
from dope.stream import Frame

log = logging.getLogger("dope")


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


class Pipeline:
    """One run over one source (images, one video or camera, or saved detections): the stages
    source -> network -> detections -> tracks -> smoothing -> camera space -> writers, composed
    from a `RunConfig`. The command line, the corpus runner (one Pipeline per video, corpus.py)
    and the Ray workers (cluster/) all run it; `runner.execute` picks which.

    shared: with several videos, what their runs share (corpus.Shared).
    """

    def __init__(self, config: RunConfig, shared: Any = None) -> None:
        if isinstance(config.video, list):
            raise ValueError("a Pipeline runs one video: runner.execute spreads several over the corpus runner")
        self.config = config.check()
        self.shared = shared

    def run(self) -> int:
        """Open the inputs, build the stream of frames (the network, or saved detections with
        --from-json), and hand every frame to the writers asked for.

        Returns the exit code: 0, or 1 when an image was skipped because it could not be read.
        Ctrl-C stops after the current batch; what was written is kept (see outputs/writers.py).
        """
        return _run(self.config, self.shared)


def _run(config: RunConfig, shared: Any) -> int:
    import time
    started = time.perf_counter()
    from contextlib import ExitStack, closing
    from tqdm.contrib.logging import logging_redirect_tqdm
    from dope.progress import interactive, progress_bar
    from dope.inputs.replay import ReplayError
    from dope.outputs.writers import OutputError
    from dope.view3d.render import Visu3DError
    from dope.exports.people import ExportError
    from dope.motion.camera import CameraError
    from dope.detector import DOPE, model_name, resolve_model
    unit = "frame" if config.video is not None else "image"
    done, skipped, writers, failed = 0, [], [], []
    loaded = 0.0  # seconds to load the model
    if not config.verbose:
        _quiet_opencv()
    try:
        with ExitStack() as stack:
            _check_camera_and_exports(config)  # before any input is opened
            source, names, total, single = _open_inputs(config, stack)
            _check_export_limits(config, total)
            if shared is not None:  # the corpus says what broke, once
                source.warn_damaged = False
            _check_visu3d(config)  # before the model loads
            resume = _resume(config, source) if config.resume else None
            if resume is not None:
                source = [p for p in source if p not in resume[0]]
                total = len(source)
            detector = None
            if config.from_json:
                frames, model, extra = _replayed_frames(config, source, lambda item, error: keep_record(item, error))
            else:
                model = output_name(_planned_model_name(config.model), config.postprocess, config.assign)
            # Every output is checked before the model loads: never an input, never a folder or a
            # disk, in a folder that can be written (see files.py).
            guard = OutputGuard(names + ([] if config.from_json else _checkpoint_candidates(config.model)))
            base = shared.base if shared is not None else None if config.image is None else _image_base(config)
            _check_outputs(config, source, model, guard, base)

            bar = stack.enter_context(progress_bar(total=total, unit=unit, disable=config.quiet or single,
                                           dynamic_ncols=True, **(shared.bar if shared is not None else {})))
            if not bar.disable and interactive():
                stack.enter_context(logging_redirect_tqdm())

            def keep_record(item: Any, error: Exception) -> None:
                # an input that could not be read keeps its place in the JSON Lines ({"image", "error"})
                for writer in writers:
                    if hasattr(writer, "skip"):
                        writer.skip(item, error)

            def on_skip(item: Any, error: Exception) -> None:
                if single:
                    raise DopeError(str(error))
                log.warning("skipped: %s", error)
                skipped.append(item.name)
                keep_record(item, error)
                bar.update()

            say = log.info if single else log.debug
            if config.ray is not None:
                frames, _, extra = _ray_frames(config, source, on_skip)
            elif not config.from_json:
                checkpoint = resolve_model(config.model, download=not config.no_download, progress=not config.quiet)
                guard.add_input(checkpoint)
                extra = config.record_keys(model_name(checkpoint))
            try:  # the outputs are opened under staging names before the model loads
                writers = [stack.enter_context(_writing(w, keep_on_interrupt=shared is None, failed=failed))
                           for w in _open_writers(config, source, model, extra, say, guard, base, resume, shared)]
            except OutputError as e:
                raise DopeError(str(e)) from None
            if not config.from_json and config.ray is None and shared is not None and shared.detector is not None:
                detector = shared.detector  # loaded by the first video of the corpus
                frames = detector.stream(source, batch_size=config.batch_size, on_skip=on_skip)
            elif not config.from_json and config.ray is None:
                loading = time.perf_counter()
                detector = DOPE(checkpoint, **config.detector_options())
                loaded = time.perf_counter() - loading
                frames = detector.stream(source, batch_size=config.batch_size, on_skip=on_skip)
                if shared is not None:
                    shared.detector = detector
            clock: dict[str, float] = {}  # each stage's time, its earlier stages' included (_timed)
            frames = _timed(frames, "source", clock)
            frames = _over_time(config, source, frames, clock)  # tracks, then smoothing: before camera space
            if config.camera_space or config.focal is not None or config.fov is not None or config.export:
                from dope.motion.camera import place
                frames = _timed(place(frames, focal=config.focal, fov=config.fov), "camera space", clock)
            spent: dict[str, float] = {}
            frames = stack.enter_context(closing(frames))
            for frame in frames:
                item, result = frame.item, frame.result
                say("%s: %d bodies, %d hands, %d faces", _describe(item), len(result.body), len(result.hand),
                    len(result.face))
                for writer in writers:
                    t0 = time.perf_counter()
                    writer.write(frame)
                    spent[type(writer).__name__] = spent.get(type(writer).__name__, 0.0) + time.perf_counter() - t0
                done += 1
                if not result.meta.get("interpolated"):  # the bar counts the frames read: its total
                    bar.update()
            closing_from = time.perf_counter()
            if config.video is not None and not config.from_json and done == 0:
                raise InputError(f"{source.name!r} gave no frame that decodes ({_no_frames_hint(source)}); "
                                 "nothing was written")
            if shared is not None and getattr(source, "damaged", None):
                raise InputError(f"{source.damaged}; its outputs are not written")
    except KeyboardInterrupt:
        kept = [w.path for w in writers if getattr(w, "path", None) and os.path.exists(w.path)]
        log.warning("interrupted after %d %s%s%s", done, unit, "" if done == 1 else "s",
                    f"; kept {' and '.join(kept)}" if kept else "")
        raise
    except (OutputError, ReplayError, Visu3DError, ExportError, CameraError) as e:
        raise DopeError(str(e)) from None
    if log.isEnabledFor(logging.DEBUG):
        log.debug("time: %s", _stage_times(clock, detector, loaded, spent, time.perf_counter() - closing_from,
                                           started))
    for w in writers:
        if getattr(w, "path", None) and w.path != STDOUT and os.path.exists(w.path) and str(w.path) not in failed:
            log.info("wrote %s", w.path)
    if failed:
        if len(writers) > len(failed):
            log.warning("%d of %d outputs could not be written (named above); the others were", len(failed),
                        len(writers))
        return 1
    if skipped:
        log.warning("%d of %d images could not be read and were skipped (named above)", len(skipped),
                    len(skipped) + done)
        return 1
    return 0


def _timed(frames: Iterator[Any], name: str, clock: dict[str, float]) -> Iterator[Any]:
    """The frames of a stage, the time spent getting each (its earlier stages included) added to
    clock[name]; stages are entered in clock in the order they are wrapped, source first."""
    clock.setdefault(name, 0.0)
    return _timing(iter(frames), name, clock)


def _timing(frames: Iterator[Any], name: str, clock: dict[str, float]) -> Iterator[Any]:
    import time
    try:
        while True:
            t = time.perf_counter()
            try:
                frame = next(frames)
            finally:
                clock[name] += time.perf_counter() - t
            yield frame
    except StopIteration:
        return
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()


def _stage_times(clock: dict[str, float], detector: Any, loaded: float, writers: dict[str, float], closing: float,
                 started: float) -> str:
    """-v's stage times, which add up to the wall time since the process started: start-up (to this
    run), loading the model, reading, the network, post-processing, each stage over time (clock: times that include the
    earlier stages), each writer, closing the outputs, and what is left (this run's own work)."""
    import time
    from dope.startup import process_age
    total = process_age()
    now = time.perf_counter()
    parts: dict[str, float] = {"start-up": max(0.0, total - (now - started)), "loading the model": loaded}
    net = dict(detector.timings) if detector is not None else {}
    before = 0.0
    for name, inclusive in clock.items():
        own = inclusive - before
        before = inclusive
        if name == "source":
            parts["reading"] = max(0.0, own - sum(net.values()))
            parts.update(net)
        else:
            parts[name] = max(0.0, own)
    parts.update(writers)
    parts["closing outputs"] = closing
    parts["other"] = max(0.0, total - sum(parts.values()))
    return ", ".join(f"{k} {v:.2f} s" for k, v in parts.items()) + f"; wall {total:.2f} s"


@contextlib.contextmanager
def _writing(writer: Any, keep_on_interrupt: bool, failed: list[str]) -> Iterator[Any]:
    """A writer that is closed (its output put in place) when the run ends or is interrupted with
    Ctrl-C, and aborted (the target left as it was) when the run fails; also when interrupted
    without keep_on_interrupt (a video of a corpus: an output there is a whole one, see corpus.py).
    A writer that fails as it is closed (an export whose format cannot hold the clip) is named in
    one line and added to `failed`; the others are closed all the same: one output's failure never
    costs the others."""
    try:
        yield writer
    except KeyboardInterrupt:
        writer.close() if keep_on_interrupt else writer.abort()
        raise
    except BaseException:
        writer.abort()
        raise
    try:
        writer.close()
    except Exception as e:  # noqa: BLE001 - whatever broke this output, the others are still written
        name = getattr(writer, "target", None) or getattr(writer, "path", None) or type(writer).__name__
        log.error("not written: %s: %s", name, e)
        log.debug("%s failed", name, exc_info=True)
        failed.append(str(name))
        try:
            writer.abort()
        except Exception:  # noqa: BLE001
            pass


def _open_writers(config: RunConfig, source: Any, model: str, extra: dict[str, Any],
                  say: Any, guard: OutputGuard, base: Optional[str],
                  resume: Optional[tuple[dict[str, str], list[str]]] = None, shared: Any = None) -> list[Any]:
    """The writers the options ask for, in the order they are fed: JSON, drawings, 3D views, pages, exports.
    resume: --resume's (kept JSON lines by image, all the run's images in order), see outputs/resume.py.
    shared: a corpus's (corpus.py): its JSON Lines writer, opened by the first video, serves them all
    (each video's records as a block of their own, cut off again when the video fails)."""
    from dope.outputs.frames import DrawnImages, DrawnVideo, JsonFrames, View3DImages
    from dope.outputs.resume import ResumedJsonFrames
    writers: list[Any] = []
    try:
        if config.json and shared is not None:
            writers.append(shared.json_writer(lambda: guard.claim(config.json, option="--json"), extra, config.video))
        elif config.json and resume is not None:
            writers.append(ResumedJsonFrames(guard.claim(config.json, option="--json"), *resume, **extra))
        elif config.json:
            writers.append(JsonFrames(guard.claim(config.json, option="--json"), **extra))
        if not config.no_overlay:
            if config.video is not None:
                path = guard.claim(output_path(source.name, model, config.output_dir, ".mp4", base=base))
                writers.append(DrawnVideo(path, _frame_rate(source), config.drawing()))
            elif config.image is not None:
                writers.append(DrawnImages(model, config.output_dir, say, config.drawing(), base=base, guard=guard))
        if config.visu3d:
            writers.append(View3DImages(model, config.output_dir, config.renderer, config.interactive, say, config.view(),
                                        base=base, guard=guard))
        if config.html:
            from dope.view3d.page import HtmlWriter
            video = config.video is not None
            writers.append(HtmlWriter(guard.claim(config.html, option="--html"),
                                      fps=(source.fps or None) if video else None, video=video))
        if config.export:
            from dope.exports.writer import ExportWriter
            fps = source.fps if config.video is not None and getattr(source, "fps", None) else None
            writers += [ExportWriter(guard.claim(path, option="--export"), fps, pose_3d=config.pose_3d)
                        for path in config.export]
    except BaseException:
        for w in writers:  # the ones opened already leave no staging file behind
            w.abort()
        raise
    return writers


def _planned_model_name(model: str) -> str:
    """The model name that output names will carry, known before the model loads (see detector.model_name)."""
    from dope.detector import model_name
    found = next((p for p in _checkpoint_candidates(model) if os.path.isfile(p)), None)
    return model_name(found) if found else model


def _checkpoint_candidates(model: str) -> list[str]:
    """The files `--model` may be read from (detector.resolve_model), downloaded or not: all are
    inputs that no output may overwrite."""
    from dope.inputs.weights import CHECKPOINT_SUFFIXES
    return [model] + [os.path.join(models_dir(), model + suffix) for suffix in CHECKPOINT_SUFFIXES]


def _image_base(config: RunConfig) -> Optional[str]:
    """The folder the --image arguments are named from, whose sub-folders drawings in --output-dir keep."""
    from dope.inputs.sources import common_base
    return common_base(config.image)


def _check_outputs(config: RunConfig, source: Any, model: str, guard: OutputGuard,
                   base: Optional[str]) -> None:
    """Fail before the model loads (DopeError, one line) on an output that must not or cannot be
    written: an input, a folder or a disk, a missing or read-only folder, an --output-dir that is a file."""
    for option, path in (("--json", config.json), ("--html", config.html), *(("--export", e) for e in config.export or ())):
        if path:
            target = guard.check(path, option=option, create_folders=True)
            if not target.in_place:  # a missing folder is made, as --output-dir is
                make_folder(os.path.dirname(target.final), option=f"the folder of {option}")
    if config.output_dir:
        make_folder(config.output_dir, option="--output-dir")
    planned: list[str] = []
    if config.video is not None and not config.no_overlay:
        planned.append(output_path(source.name, model, config.output_dir, ".mp4", base=base))
    if config.image is not None:
        suffixes = ([] if config.no_overlay else [".jpg"]) + (["_visu3d.jpg"] if config.visu3d else [])
        planned += [output_path(image, model, config.output_dir, suffix, base=base)
                    for image in source for suffix in suffixes]
    for path in planned:
        guard.check(path, option="drawing", create_folders=True)


def _no_frames_hint(video: Any) -> str:
    if video.is_camera:
        return "check that the camera is connected and not used by another program"
    if video.frame_count:
        return f"it announces {video.frame_count} frames: the file is damaged"
    return "it is empty or damaged"


def _replays_frames(path: str) -> bool:
    """Whether a saved JSON Lines file holds video frames (its first record has a frame number)."""
    from dope.inputs.replay import first_record
    return (first_record(path) or {}).get("frame") is not None


def _over_time(config: RunConfig, source: Any, frames: Iterator[Any],
               clock: Optional[dict[str, float]] = None) -> Iterator[Any]:
    """The stages over time between the frames and the writers: tracking, then smoothing (defaults
    in --help and docs/people-over-time.md). Each stage is imported only when it runs (scipy costs 0.4 s)."""
    camera = bool(getattr(source, "is_camera", False))
    # a replay is a sequence when it holds video frames (the records of an image folder are not one)
    sequence = config.video is not None or (bool(config.from_json) and _replays_frames(config.from_json))
    mode = config.smooth or ("off" if config.track is False else "online" if camera
                           else "offline" if sequence or config.track else "off")
    tracking = config.track if config.track is not None else sequence or mode != "off" or config.fill_skipped
    if mode != "off" and not tracking:
        raise DopeError(f"--smooth {mode} smooths each person's track: drop --no-track")
    if config.fill_skipped and not tracking:
        raise DopeError("--fill-skipped interpolates each person's track: drop --no-track")
    if tracking:
        from dope.motion.tracking import track
        frames = track(frames)
        frames = frames if clock is None else _timed(frames, "tracking", clock)
    if mode != "off":
        from dope.motion.smoothing import smooth
        frames = smooth(frames, mode)
        frames = frames if clock is None else _timed(frames, "smoothing", clock)
    if config.fill_skipped:
        from dope.inputs.sources import Video, camera_or_path
        from dope.motion.interpolation import fill_skipped
        # The drawing of a frame filled needs its pixels: a second reading of the file, every frame.
        draw = config.video is not None and not config.no_overlay and not camera
        images = Video(camera_or_path(config.video), start_s=config.start, end_s=config.end) if draw else None
        frames = fill_skipped(frames, images=images)
        frames = frames if clock is None else _timed(frames, "filling", clock)
    return frames


def _replayed_frames(config: RunConfig, source: Any,
                     on_skip: Any = None) -> tuple[Iterator[Any], str, dict[str, Any]]:
    """(frames, model name for output names, extra JSON keys) of --from-json: the saved records, with
    the pixels of --video or --image when given (by frame number, or by image path), filtered by
    --min-score, --max-people and --parts. Records of unreadable inputs go to on_skip(item, error)."""
    from dope.postprocessing.selection import select_detections
    from dope.inputs.replay import first_record
    from dope.inputs.replay import check_file
    from dope.inputs.sources import Item
    if config.image is not None and (not config.no_overlay or config.visu3d):
        # drawings are written image by image: a malformed line must fail before the first one. The
        # other outputs are staged and dropped when the replay fails, so they need no pass of their own.
        check_file(config.from_json)
    first = first_record(config.from_json) or {}
    _check_pixels_match(config, source, first)
    model = output_name(str(first.get("model") or "replay"), str(first.get("postprocess") or "ppi"),
                        str(first.get("assign") or "nearest"))
    if config.image is not None:
        source = [(Item(i, path), None) for i, path in enumerate(source)]
    frames = replay_frames(config.from_json, source, by_name=config.image is not None, on_skip=on_skip)
    if config.min_score is not None or config.max_people is not None or config.parts is not None:
        frames = (f._replace(result=select_detections(f.result, min_score=config.min_score, max_people=config.max_people,
                                                      parts=config.parts)) for f in frames)
    saved = first.get("settings")
    added = {k: v for k, v in config.record_settings().items() if (k, v) != ("track", False)}  # no stage added
    settings = {**(saved if isinstance(saved, dict) else {}), **added}
    return frames, model, {"settings": settings} if settings else {}


def _check_pixels_match(config: RunConfig, source: Any, first: dict[str, Any]) -> None:
    """DopeError (one line, before anything is written) when the pixels given with --from-json are
    not those its records were made from: video frames with --image, images with --video, a
    video of another size or with fewer frames than the records, images none of which a record
    names, or an image of another size than its record's."""
    if config.image is None and config.video is None:
        return
    saved = config.from_json
    video = first.get("frame") is not None
    if video and config.image is not None:
        raise DopeError(f"{saved} holds the frames of a video ({first.get('video') or 'unnamed'}), and --image "
                        "gives images: give that video with --video, or leave the pixels out")
    if not video and config.video is not None:
        raise DopeError(f"{saved} holds images ({first.get('image')!r}...), and --video gives a video: give those "
                        "images with --image, or leave the pixels out")
    from dope.inputs.replay import read_records
    if video:
        size, want = source.size, (first.get("width"), first.get("height"))
        if size is not None and None not in want and tuple(size) != tuple(want):
            raise DopeError(f"{saved} was made from a {want[0]}x{want[1]} video, and {source.name!r} is "
                            f"{size[0]}x{size[1]}: give the video its records were made from")
        count = getattr(source, "frame_count", None)
        if count:  # the container's count may be an estimate: only a clear excess is refused
            last = max((r.get("frame") for _, r in read_records(saved) if isinstance(r.get("frame"), int)),
                       default=-1)
            if last >= count * 1.1 + 2:
                raise DopeError(f"{saved} holds frame {last}, and {source.name!r} has about {count} frames: give "
                                "the video its records were made from")
        return
    from dope.outputs.resume import image_size
    paths = {}
    for p in source:
        paths.setdefault(os.path.abspath(p), p)
        paths.setdefault(os.path.basename(p), p)
    found = 0
    for _, record in read_records(saved):
        image = record.get("image")
        path = paths.get(os.path.abspath(image), paths.get(os.path.basename(image))) if isinstance(image, str) else None
        if path is None or "error" in record:
            continue
        found += 1
        size, want = image_size(path), (record.get("width"), record.get("height"))
        if size is not None and None not in want and tuple(size) != tuple(want):
            raise DopeError(f"{saved} was made from a {want[0]}x{want[1]} {image!r}, and {path!r} is "
                            f"{size[0]}x{size[1]}: give the images its records were made from")
    if not found:
        raise DopeError(f"none of the records of {saved} names one of the --image files ({len(source)} given): "
                        "give the images its records were made from")


def _resume(config: RunConfig, images: list[str]) -> tuple[dict[str, str], list[str]]:
    """--resume: (the JSON lines kept from earlier runs by image, all images), see outputs/resume.py."""
    from dope.detector import model_name, resolve_model
    from dope.outputs.resume import read_finished, still_done
    if not config.json or config.video is not None or config.from_json:
        raise DopeError("--resume continues a --json file of --image inputs: give --image and --json")
    model = model_name(resolve_model(config.model, download=not config.no_download, progress=not config.quiet))
    kept = still_done(read_finished(config.json, made=config.record_keys(model)), images)
    done = sum(1 for p in images if p in kept)
    if kept:
        log.info("resuming %s: %d of %d images already done", config.json, done, len(images))
    return kept, images


def _ray_frames(config: RunConfig, images: list[str], on_skip: Any) -> tuple[Iterator[Any], str, dict[str, Any]]:
    """(frames, model name, extra JSON keys) of --ray on images: the network on Ray workers."""
    from dope.cluster.images import ray_frames
    from dope.cluster.session import RayJob, import_ray
    from dope.detector import model_name, resolve_model
    import_ray()  # before any download
    path = resolve_model(config.model, download=not config.no_download, progress=not config.quiet)
    options = {k: v for k, v in config.detector_options().items() if k not in ("download", "progress", "threads")}
    frames = ray_frames(images, RayJob.from_config(config), path, options, batch_size=config.batch_size,
                        pixels=not config.no_overlay or config.visu3d or bool(config.html), on_skip=on_skip)
    name = model_name(path)
    return frames, name, config.record_keys(name)


def _check_camera_and_exports(config: RunConfig) -> None:
    """Fail early on a focal length or field of view that cannot be, and on exports that cannot be written."""
    from dope.exports.people import ExportError
    from dope.exports.writer import export_format
    from dope.motion.camera import CameraError, check_focal, check_fov
    try:
        if config.focal is not None:
            check_focal(config.focal)
        if config.fov is not None:
            check_fov(config.fov)
        for path in config.export or ():
            export_format(path)
    except (CameraError, ExportError) as e:
        raise DopeError(str(e)) from None


def _check_export_limits(config: RunConfig, frames: Optional[int]) -> None:
    """Refuse, before the model loads, an export whose format cannot hold the run's `frames` (at
    least that many; None when unknown). The people a format can hold are known as the run goes:
    such an export says so as soon as it knows, and the other outputs are written (exports/writer.py)."""
    from dope.exports.c3dfile import frames_refused
    for path in config.export or ():
        reason = frames_refused(frames or 0) if path.lower().endswith(".c3d") else None
        if reason:
            raise DopeError(f"--export {path}: {reason}; export part of the video (--start, --end, --every) or use "
                            ".npz or .glb")


def _check_visu3d(config: RunConfig) -> None:
    """Fail early on 3D view options that cannot work here (see view3d/render.py)."""
    if not config.visu3d:
        if config.interactive:
            raise DopeError("--interactive opens the 3D view: add --visu3d")
        return
    if config.video is not None:
        raise DopeError("--visu3d draws images, not videos: give the frames as --image")
    from dope.view3d.render import Visu3DError, choose_renderer
    try:
        choose_renderer(config.renderer, config.interactive)
    except Visu3DError as e:
        raise DopeError(str(e)) from None


def _quiet_opencv() -> None:
    """Keep OpenCV's and FFmpeg's own console messages ("moov atom not found", "can't open camera by
    index") off the terminal: our errors say the same on one line. -v leaves them on."""
    import cv2
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET; read when a video is opened


def _open_inputs(config: RunConfig, stack: Any) -> tuple[Any, list[str], Optional[int], bool]:
    """Check the inputs before the model loads: (source for DOPE.stream, input paths, item count
    (None when unknown), whether it is one explicitly named image)."""
    from dope.inputs.sources import (VIDEO_EXTENSIONS, SourceError, Video, camera_or_path, expand_images,
                                          has_image_extension)
    if config.image is None and config.video is None:
        if config.from_json:
            return None, [config.from_json], None, False
        raise DopeError("nothing to process; give --image PATH or --video PATH|N")
    try:
        if config.video is not None:
            if has_image_extension(config.video) and os.path.isfile(config.video):
                raise DopeError(f"{config.video!r} is an image; give it with --image")
            try:
                video = stack.enter_context(Video(camera_or_path(config.video), start_s=config.start, end_s=config.end,
                                                  every=config.every, rate=config.fps))
            except SourceError as e:
                raise InputError(str(e)) from None
            length = video.duration_s
            if config.start is not None and length is not None and config.start >= length:
                raise InputError(f"--start {config.start:g} s is past the end of {video.name!r}, which is "
                                 f"{length:.2f} s long")
            names = ([] if video.is_camera else [video.name]) + ([config.from_json] if config.from_json else [])
            return video, names, video.expected_frames, False
        for path in config.image:
            if os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS and os.path.isfile(path):
                raise DopeError(f"{path!r} is a video; give it with --video")
        images = expand_images(config.image)
    except SourceError as e:
        raise DopeError(str(e)) from None
    single = len(config.image) == 1 and os.path.isfile(config.image[0]) and not config.from_json
    if single:  # one image named: one that cannot be read fails now, before the model loads
        from dope.inputs.sources import ImageError, check_image
        try:
            check_image(images[0])
        except ImageError as e:
            raise DopeError(str(e)) from None
    return images, images + ([config.from_json] if config.from_json else []), len(images), single


def _frame_rate(video: Any) -> float:
    if video.fps:
        return video.fps
    log.warning("%s does not say its frame rate; the drawing is written at 30 frames per second", video.name)
    return 30.0


def _describe(item: Any) -> str:
    return item.name if item.frame is None else f"{item.name} frame {item.frame} ({item.time_s or 0:.2f} s)"
