"""The command line of dope.py: options, inputs checked before the model loads, outputs written.

`main(argv)` is what `python dope.py ...` runs; it returns the exit code (0; 1 for an error or a
skipped input; 2 for bad usage; 130 when interrupted with Ctrl-C, 143 when stopped by SIGTERM,
which is handled as Ctrl-C: what was written is kept, no temporary file is left).
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import signal
import sys
from typing import Any, Iterator, Optional, Sequence

from wholebody.detector import DEFAULT_MIN_SCORE, DOPE, POSTPROCESSINGS, PRECISIONS, model_name, \
    resolve_model
from wholebody.errors import DopeError, InputError
from wholebody.files import STDOUT, OutputGuard, make_folder, output_name, output_path
from wholebody.inputs.weights import DOWNLOAD_URL, KNOWN_MODELS, WEIGHTS_LICENCE, describe_models, download_url, models_dir
from wholebody.postprocessing.assignment import ASSIGNMENTS
from wholebody.startup import exit_fast  # noqa: F401  (dope.exit_fast, the command's last step)

log = logging.getLogger("dope")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dope.py", description="Detect every person's body, hands and face in 2D and 3D (DOPE, ECCV 2020).",
        epilog=f"Official checkpoints are downloaded on first use from {DOWNLOAD_URL}/<name>.pth.tgz (or "
               "$DOPE_DOWNLOAD_URL/<name>.pth.tgz) into the models folder ($DOPE_MODELS, default: models/ beside "
               f"dope.py); weights licence: {WEIGHTS_LICENCE}.")
    p.add_argument("--model", default="DOPE_v1_0_0",
                   help=f"model name in the models folder ({', '.join(KNOWN_MODELS)}) or a checkpoint path "
                        "(default: %(default)s)")
    p.add_argument("--no-download", action="store_true",
                   help="never download a missing official model; say how to get it by hand instead")
    p.add_argument("--list-models", action="store_true",
                   help="show the official and present models, their sizes and where they live, then exit")
    # Not required here: --list-models needs no input; main() checks that some input is given.
    inputs = p.add_mutually_exclusive_group()
    inputs.add_argument("--image", nargs="+", metavar="PATH",
                        help="images to process: files, folders (their images, sorted) and glob patterns "
                             "(quoted, e.g. 'shots/*.jpg'; '**' crosses folders)")
    inputs.add_argument("--video", nargs="+", metavar="PATH|N",
                        help="video files (mp4, avi, mov, mkv...), folders (their videos, sorted) and glob patterns "
                             "('corpus/**/*.mp4'), each in turn with its own tracks and outputs; or a camera index "
                             "(0 for the first camera); writes VIDEO_MODEL.mp4 with the drawing on every frame")
    p.add_argument("--from-json", metavar="FILE.jsonl",
                   help="read saved detections (what --json writes) instead of running the network, then run "
                        "every later stage; with --video or --image, their pixels are used for drawings")
    p.add_argument("--track", action=argparse.BooleanOptionalAction, default=None,
                   help="give every body, hand and face a person id (\"track\") across frames; default: on for "
                        "videos, cameras and replayed video frames (--from-json), off for images")
    p.add_argument("--smooth", choices=("off", "online", "offline"),
                   help="smooth tracked poses over time: online (causal, One-Euro), offline (zero-phase, "
                        "10 frames look-ahead); default: online for cameras, offline for video files and "
                        "--from-json, off for images (offline with --track)")
    p.add_argument("--batch-size", type=positive_int, default=1, metavar="N",
                   help="images or frames per network pass (default: %(default)s; more helps on a GPU)")
    _add_selection_options(p)
    p.add_argument("--json", metavar="PATH", help="write the detections as JSON: one object for one image, else "
                                                 "JSON Lines (one object per image or video frame); '-' for "
                                                 "standard output")
    p.add_argument("--output-dir", metavar="DIR",
                   help="where drawings and annotated videos go, keeping the sub-folders of the inputs below the "
                        "folder they were named from (default: beside each input; for a camera, the current folder)")
    p.add_argument("--no-overlay", action="store_true", help="do not write the 2D drawing")
    p.add_argument("--visu3d", action="store_true",
                   help="also write IMAGE_MODEL_visu3d.jpg: every person's whole body in 3D in front of the image")
    p.add_argument("--renderer", choices=("auto", "builtin", "visvis"), default="auto",
                   help="3D view renderer: builtin (NumPy/OpenCV, no display needed), visvis (OpenGL, needs "
                        "requirements-visvis.txt and a display), auto: visvis when usable (default)")
    p.add_argument("--interactive", action="store_true",
                   help="with --visu3d: also open each 3D view in a window you can turn (visvis)")
    p.add_argument("--html", metavar="PATH",
                   help="write the 3D view as one self-contained HTML page (people in 3D in front of the image; "
                        "a time slider for videos and image lists); needs requirements-html.txt")
    _add_style_options(p)
    cam = p.add_mutually_exclusive_group()
    cam.add_argument("--focal", type=float, metavar="PX", help="camera focal length in pixels (default: the "
                     "image's EXIF 35 mm-equivalent focal length, else a 60 degree horizontal field of view)")
    cam.add_argument("--fov", type=float, metavar="DEG", help="camera horizontal field of view in degrees")
    p.add_argument("--camera-space", action="store_true",
                   help="place every body, hand and face in the camera frame (pose3d_camera, metres; implied by "
                        "--focal, --fov and --export)")
    p.add_argument("--export", nargs="+", metavar="PATH",
                   help="write every person's camera-space skeleton over the clip: .npz, .c3d, .bvh (one file "
                        "per person, PATH's stem.<person>.bvh), .glb or .pose (pose-format, requirements-pose.txt); "
                        "a FOLDER/ with --export-format: one file per video, FOLDER/<sub-folders>/<video stem>.FORMAT")
    p.add_argument("--export-format", choices=("npz", "c3d", "bvh", "glb", "pose"),
                   help="the format of the files written in an --export folder")
    p.add_argument("--pose-3d", action="store_true",
                   help="with a .pose export: also the camera-space 3D joints in metres, as components BODY_3D, "
                        "LEFT_HAND_3D, RIGHT_HAND_3D, FACE_3D (as MediaPipe's world landmarks)")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="auto: fp16 for half-precision checkpoints on CUDA, fp32 otherwise")
    p.add_argument("--max-proposals", type=positive_int, metavar="N",
                   help="proposals kept after the RPN (default: 1000, as published); fewer is faster")
    p.add_argument("--threads", type=positive_int, metavar="N",
                   help="CPU threads (default: one per core); fewer can be faster on a busy machine")
    _add_time_options(p)
    p.add_argument("--resume", action="store_true",
                   help="with --json: skip the images already in it (or in the NAME.partial.jsonl a killed "
                        "--resume run leaves) and add the rest; see README, Cluster runs. With --video: skip the "
                        "videos whose --export files and --json records are written whole")
    ray = p.add_argument_group("cluster (Ray, see README: Cluster runs)")
    ray.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                     help="run on a Ray cluster: ADDRESS, else $RAY_ADDRESS, else a local one (requirements-ray.txt)")
    ray.add_argument("--workers", type=positive_int, metavar="N", help="--ray: model replicas (default: 1); with several videos, videos at a time "
                          "(default: as many as the cluster holds)")
    ray.add_argument("--gpus-per-worker", type=float, metavar="F",
                     help="--ray: GPUs per replica, fractions allowed (default: 1 when the cluster has GPUs, else CPU)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    g.add_argument("-v", "--verbose", action="store_true", help="say more about what is done")
    return p


# Options of issue 21 (post-processing choices and filters, drawing style, parts of a video). They
# default to None where the library's defaults are the only source of truth, or where an option
# given with a setting it cannot apply to must be refused (`check_options`).

def _add_selection_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--postprocess", choices=POSTPROCESSINGS,
                   help="pose proposals integration (ppi, the default) or non-maximum suppression (nms)")
    p.add_argument("--min-score", type=score, metavar="S",
                   help="smallest score kept (default: all, as published), on each post-processing's scale: "
                        f"NMS, an anchor pose's probability in [0, 1] (NMS starts from {DEFAULT_MIN_SCORE} and up, as "
                        "published); PPI, a sum of probabilities (can exceed 1). Applied after hands and faces are "
                        "linked to bodies, live and with --from-json alike")
    p.add_argument("--assign", choices=ASSIGNMENTS,
                   help="attach hands and faces to bodies: nearest (default, as published: one hand can go to both "
                        "wrists) or unique (one to one, the Hungarian method on the same distances and limits)")
    p.add_argument("--max-people", type=positive_int, metavar="N",
                   help="keep at most N people: the best bodies with their hands and faces")
    p.add_argument("--parts", type=part_list, metavar="body,hand,face",
                   help="keep only these parts (comma-separated; default: all three)")


def _add_style_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--line-width", type=float, metavar="PX",
                   help="2D drawing: bone width in pixels (default: 4 on a 640x480 image, scaled with the image)")
    p.add_argument("--no-scores", action="store_true", help="2D drawing: do not write the bodies' scores")
    p.add_argument("--no-pad", action="store_true",
                   help="2D drawing: keep the image's size (by default a black border, up to 100 px a side, is "
                        "added where joints fall outside the image)")
    p.add_argument("--azimuth", type=float, metavar="DEG",
                   help="3D view: turn about the vertical axis (default -45: from the front-left, as published)")
    p.add_argument("--elevation", type=float, metavar="DEG",
                   help="3D view: angle above the floor (default 20)")


def _add_time_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--start", type=float, metavar="SECONDS", help="video: begin at this time")
    p.add_argument("--end", type=float, metavar="SECONDS", help="video: stop at this time")
    step = p.add_mutually_exclusive_group()
    step.add_argument("--every", type=positive_int, metavar="N",
                      help="video: run on every Nth frame only (the others are not decoded; the annotated video "
                           "repeats the last drawing over them, unless --fill-skipped)")
    step.add_argument("--fps", type=float, metavar="F", help="video: run on about F frames per second only")
    p.add_argument("--fill-skipped", action="store_true",
                   help="with --every or --fps (or --from-json of such a run): fill the frames left out by "
                        "interpolating each person's track; their JSON records say \"interpolated\": true and the "
                        "annotated video draws them (motion/interpolation.py)")


def part_list(text: str) -> tuple[str, ...]:
    """argparse type: a comma-separated list of parts (body, hand, face)."""
    from wholebody.parts import PART_NAMES
    parts = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    unknown = [t for t in parts if t not in PART_NAMES]
    if unknown or not parts:
        raise argparse.ArgumentTypeError(f"unknown part(s) {', '.join(unknown) or text!r}; use "
                                         f"{', '.join(PART_NAMES)} separated by commas")
    return parts


def check_options(args: argparse.Namespace) -> None:
    """Refuse, before the model loads, options that cannot apply to the others; then fill in the
    defaults of those left as None for that reason (postprocess, assign)."""
    replay = args.from_json is not None
    for name, given in (("--postprocess", args.postprocess), ("--assign", args.assign),
                        ("--max-proposals", args.max_proposals)):
        if replay and given is not None:
            raise DopeError(f"{name} applies to the network's outputs; --from-json replays detections already "
                            "post-processed (--min-score, --max-people and --parts do apply)")
    method = args.postprocess or "ppi"
    if args.min_score is not None and not replay:
        if method == "nms" and not 0.0 <= args.min_score <= 1.0:
            raise DopeError(f"--min-score {args.min_score:g}: NMS scores are probabilities, give a value in [0, 1]")
        if method == "ppi" and args.min_score < 0:
            raise DopeError(f"--min-score {args.min_score:g}: PPI scores are sums of probabilities, never negative")
    for name, value in (("--start", args.start), ("--end", args.end), ("--every", args.every), ("--fps", args.fps)):
        if value is not None and args.video is None:
            raise DopeError(f"{name} selects frames of a video: give --video (or list the images with --image)")
    if args.fill_skipped and args.video is None and args.from_json is None:
        raise DopeError("--fill-skipped fills the frames left out of a video: give --video (with --every or --fps) "
                        "or --from-json")
    if args.fps is not None and not args.fps > 0:
        raise DopeError(f"--fps must be positive, got {args.fps:g}")
    if args.start is not None and args.end is not None and args.end <= args.start:
        raise DopeError(f"--end {args.end:g} must come after --start {args.start:g}")
    if args.line_width is not None and not args.line_width > 0:
        raise DopeError(f"--line-width must be positive, got {args.line_width:g}")
    if (args.azimuth is not None or args.elevation is not None) and not args.visu3d:
        raise DopeError("--azimuth and --elevation turn the 3D view: add --visu3d")
    if args.no_overlay and not _other_outputs(args):
        raise DopeError("--no-overlay without --json (or --visu3d, --html, --export): nothing would be written")
    if args.pose_3d and not (args.export_format == "pose" or any(e.lower().endswith(".pose") for e in args.export or ())):
        raise DopeError("--pose-3d adds 3D joints to a .pose export: add --export FILE.pose")
    args.postprocess, args.assign = method, args.assign or "nearest"


def _other_outputs(args: argparse.Namespace) -> bool:
    """Whether anything but the 2D drawing is asked for (every output option but the drawing counts here)."""
    return any(getattr(args, name, None) for name in ("json", "visu3d", "html", "export"))


def _drawing(args: argparse.Namespace) -> Any:
    """draw_result with the style options (BGR in and out: the writers draw in OpenCV's order)."""
    import functools
    from wholebody.drawing.draw2d import draw_result
    return functools.partial(draw_result, lw=None if args.line_width is None else args.line_width / 2,
                             scores=not args.no_scores, pad=not args.no_pad, channels="bgr")


def _view(args: argparse.Namespace) -> Any:
    """The 3D view's camera angles (view3d/scene.py View; its defaults where not given)."""
    from wholebody.view3d.scene import View
    return View(azimuth=View.azimuth if args.azimuth is None else args.azimuth,
                elevation=View.elevation if args.elevation is None else args.elevation)


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def score(text: str) -> float:
    """argparse type: a finite number of at least 0 (nan and infinities are not). Each
    post-processing's own range (NMS: at most 1) is checked by `check_options`."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value >= 0.0):
        raise argparse.ArgumentTypeError(f"must be a finite number of at least 0, got {text!r}")
    return value


def run(args: argparse.Namespace, shared: Any = None) -> int:
    """The command line's work: open the inputs, build the stream of frames (the network, or saved
    detections with --from-json), and hand every frame to the writers asked for.

    Returns the exit code: 0, or 1 when an image was skipped because it could not be read.
    Ctrl-C stops after the current batch; what was written is kept (see outputs/writers.py).
    shared: with several videos, what their runs share (wholebody/corpus.py, which runs each).
    """
    import time
    from contextlib import ExitStack, closing
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm
    from wholebody.inputs.replay import ReplayError
    from wholebody.outputs.writers import OutputError
    from wholebody.view3d.render import Visu3DError
    from wholebody.exports.people import ExportError
    from wholebody.motion.camera import CameraError
    unit = "frame" if args.video is not None else "image"
    done, skipped, writers = 0, [], []
    if not args.verbose:
        _quiet_opencv()
    check_options(args)
    if args.ray is None and (args.workers or args.gpus_per_worker is not None):
        raise DopeError("--workers and --gpus-per-worker go with --ray")
    if isinstance(args.video, list) and shared is None:
        from wholebody.corpus import run_videos, single_video
        one = single_video(args)
        if one is None:
            return run_videos(args, run)
        args.video = one
    if args.ray is not None and args.video is not None:
        from wholebody.cluster.videos import run_video
        return run_video(args, run)
    try:
        with ExitStack() as stack:
            _check_camera_and_exports(args)  # before any input is opened
            source, names, total, single = _open_inputs(args, stack)
            if shared is not None:  # the corpus says what broke, once
                source.warn_damaged = False
            _check_visu3d(args)  # before the model loads
            resume = _resume(args, source) if args.resume else None
            if resume is not None:
                source = [p for p in source if p not in resume[0]]
                total = len(source)
            detector = None
            if args.from_json:
                frames, model, extra = _replayed_frames(args, source, lambda item, error: keep_record(item, error))
            else:
                model = output_name(_planned_model_name(args.model), args.postprocess, args.assign)
            # Every output is checked before the model loads: never an input, never a folder or a
            # disk, in a folder that can be written (see files.py).
            guard = OutputGuard(names + ([] if args.from_json else _checkpoint_candidates(args.model)))
            base = shared.base if shared is not None else None if args.image is None else _image_base(args)
            _check_outputs(args, source, model, guard, base)

            bar = stack.enter_context(tqdm(total=total, unit=unit, disable=args.quiet or single,
                                           dynamic_ncols=True, **(shared.bar if shared is not None else {})))
            if not bar.disable:
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
            if args.ray is not None:
                frames, _, extra = _ray_frames(args, source, on_skip)
            elif not args.from_json:
                checkpoint = resolve_model(args.model, download=not args.no_download, progress=not args.quiet)
                guard.add_input(checkpoint)
                extra = {"model": model_name(checkpoint), "postprocess": args.postprocess,
                         **({"assign": args.assign} if args.assign != "nearest" else {})}
            try:  # the outputs are opened under staging names before the model loads
                writers = [stack.enter_context(_writing(w, keep_on_interrupt=shared is None))
                           for w in _open_writers(args, source, model, extra, say, guard, base, resume, shared)]
            except OutputError as e:
                raise DopeError(str(e)) from None
            if not args.from_json and args.ray is None and shared is not None and shared.detector is not None:
                detector = shared.detector  # loaded by the first video of the corpus
                frames = detector.stream(source, batch_size=args.batch_size, on_skip=on_skip)
            elif not args.from_json and args.ray is None:
                detector = DOPE(checkpoint, device=args.device, precision=args.precision,
                                postprocess=args.postprocess, min_score=args.min_score,
                                max_proposals=args.max_proposals, download=not args.no_download,
                                progress=not args.quiet, threads=args.threads, assign=args.assign,
                                max_people=args.max_people, parts=args.parts)
                frames = detector.stream(source, batch_size=args.batch_size, on_skip=on_skip)
                if shared is not None:
                    shared.detector = detector
            frames = _over_time(args, source, frames)  # tracks, then smoothing: before camera space
            if args.camera_space or args.focal is not None or args.fov is not None or args.export:
                from wholebody.motion.camera import place
                frames = place(frames, focal=args.focal, fov=args.fov)
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
                bar.update()
            stages = ({} if detector is None else detector.timings) | spent
            log.debug("time: %s", ", ".join(f"{k} {v:.2f} s" for k, v in stages.items()) or "nothing run")
            if args.video is not None and not args.from_json and done == 0:
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
    for w in writers:
        if getattr(w, "path", None) and w.path != STDOUT and os.path.exists(w.path):
            log.info("wrote %s", w.path)
    if skipped:
        log.warning("%d of %d images could not be read and were skipped (named above)", len(skipped),
                    len(skipped) + done)
        return 1
    return 0


@contextlib.contextmanager
def _writing(writer: Any, keep_on_interrupt: bool = True) -> Iterator[Any]:
    """A writer that is closed (its output put in place) when the run ends or is interrupted with
    Ctrl-C, and aborted (the target left as it was) when the run fails; also when interrupted
    without keep_on_interrupt (a video of a corpus: an output there is a whole one, see corpus.py)."""
    try:
        yield writer
    except KeyboardInterrupt:
        writer.close() if keep_on_interrupt else writer.abort()
        raise
    except BaseException:
        writer.abort()
        raise
    writer.close()


def _open_writers(args: argparse.Namespace, source: Any, model: str, extra: dict[str, Any],
                  say: Any, guard: OutputGuard, base: Optional[str],
                  resume: Optional[tuple[dict[str, str], list[str]]] = None, shared: Any = None) -> list[Any]:
    """The writers the options ask for, in the order they are fed: JSON, drawings, 3D views, pages, exports.
    resume: --resume's (kept JSON lines by image, all the run's images in order), see outputs/resume.py.
    shared: a corpus's (corpus.py): its JSON Lines writer, opened by the first video, serves them all
    (each video's records as a block of their own, cut off again when the video fails)."""
    from wholebody.outputs.frames import DrawnImages, DrawnVideo, JsonFrames, View3DImages
    from wholebody.outputs.resume import ResumedJsonFrames
    writers: list[Any] = []
    try:
        if args.json and shared is not None:
            writers.append(shared.json_writer(lambda: guard.claim(args.json, option="--json"), extra, args.video))
        elif args.json and resume is not None:
            writers.append(ResumedJsonFrames(guard.claim(args.json, option="--json"), *resume, **extra))
        elif args.json:
            writers.append(JsonFrames(guard.claim(args.json, option="--json"), **extra))
        if not args.no_overlay:
            if args.video is not None:
                path = guard.claim(output_path(source.name, model, args.output_dir, ".mp4", base=base))
                writers.append(DrawnVideo(path, _frame_rate(source), _drawing(args)))
            elif args.image is not None:
                writers.append(DrawnImages(model, args.output_dir, say, _drawing(args), base=base, guard=guard))
        if args.visu3d:
            writers.append(View3DImages(model, args.output_dir, args.renderer, args.interactive, say, _view(args),
                                        base=base, guard=guard))
        if args.html:
            from wholebody.view3d.page import HtmlWriter
            video = args.video is not None
            writers.append(HtmlWriter(guard.claim(args.html, option="--html"),
                                      fps=(source.fps or None) if video else None, video=video))
        if args.export:
            from wholebody.exports.writer import ExportWriter
            fps = source.fps if args.video is not None and getattr(source, "fps", None) else None
            writers += [ExportWriter(guard.claim(path, option="--export"), fps, pose_3d=args.pose_3d)
                        for path in args.export]
    except BaseException:
        for w in writers:  # the ones opened already leave no staging file behind
            w.abort()
        raise
    return writers


def _planned_model_name(model: str) -> str:
    """The model name that output names will carry, known before the model loads (see detector.model_name)."""
    from wholebody.detector import model_name
    found = next((p for p in _checkpoint_candidates(model) if os.path.isfile(p)), None)
    return model_name(found) if found else model


def _checkpoint_candidates(model: str) -> list[str]:
    """The files `--model` may be read from (detector.resolve_model), downloaded or not: all are
    inputs that no output may overwrite."""
    from wholebody.inputs.weights import CHECKPOINT_SUFFIXES
    return [model] + [os.path.join(models_dir(), model + suffix) for suffix in CHECKPOINT_SUFFIXES]


def _image_base(args: argparse.Namespace) -> Optional[str]:
    """The folder the --image arguments are named from, whose sub-folders drawings in --output-dir keep."""
    from wholebody.inputs.sources import common_base
    return common_base(args.image)


def _check_outputs(args: argparse.Namespace, source: Any, model: str, guard: OutputGuard,
                   base: Optional[str]) -> None:
    """Fail before the model loads (DopeError, one line) on an output that must not or cannot be
    written: an input, a folder or a disk, a missing or read-only folder, an --output-dir that is a file."""
    for option, path in (("--json", args.json), ("--html", args.html), *(("--export", e) for e in args.export or ())):
        if path:
            target = guard.check(path, option=option, create_folders=True)
            if not target.in_place:  # a missing folder is made, as --output-dir is
                make_folder(os.path.dirname(target.final), option=f"the folder of {option}")
    if args.output_dir:
        make_folder(args.output_dir, option="--output-dir")
    planned: list[str] = []
    if args.video is not None and not args.no_overlay:
        planned.append(output_path(source.name, model, args.output_dir, ".mp4", base=base))
    if args.image is not None:
        suffixes = ([] if args.no_overlay else [".jpg"]) + (["_visu3d.jpg"] if args.visu3d else [])
        planned += [output_path(image, model, args.output_dir, suffix, base=base)
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
    from wholebody.inputs.replay import first_record
    return (first_record(path) or {}).get("frame") is not None


def _over_time(args: argparse.Namespace, source: Any, frames: Iterator[Any]) -> Iterator[Any]:
    """The stages over time between the frames and the writers: tracking, then smoothing (defaults
    in --help and the README). Each stage is imported only when it runs (scipy costs 0.4 s)."""
    camera = bool(getattr(source, "is_camera", False))
    # a replay is a sequence when it holds video frames (the records of an image folder are not one)
    sequence = args.video is not None or (bool(args.from_json) and _replays_frames(args.from_json))
    mode = args.smooth or ("off" if args.track is False else "online" if camera
                           else "offline" if sequence or args.track else "off")
    tracking = args.track if args.track is not None else sequence or mode != "off" or args.fill_skipped
    if mode != "off" and not tracking:
        raise DopeError(f"--smooth {mode} smooths each person's track: drop --no-track")
    if args.fill_skipped and not tracking:
        raise DopeError("--fill-skipped interpolates each person's track: drop --no-track")
    if tracking:
        from wholebody.motion.tracking import track
        frames = track(frames)
    if mode != "off":
        from wholebody.motion.smoothing import smooth
        frames = smooth(frames, mode)
    if args.fill_skipped:
        from wholebody.inputs.sources import Video, camera_or_path
        from wholebody.motion.interpolation import fill_skipped
        # The drawing of a frame filled needs its pixels: a second reading of the file, every frame.
        draw = args.video is not None and not args.no_overlay and not camera
        images = Video(camera_or_path(args.video), start_s=args.start, end_s=args.end) if draw else None
        frames = fill_skipped(frames, images=images)
    return frames


def _replayed_frames(args: argparse.Namespace, source: Any,
                     on_skip: Any = None) -> tuple[Iterator[Any], str, dict[str, Any]]:
    """(frames, model name for output names, extra JSON keys) of --from-json: the saved records, with
    the pixels of --video or --image when given (by frame number, or by image path), filtered by
    --min-score, --max-people and --parts. Records of unreadable inputs go to on_skip(item, error)."""
    from wholebody.postprocessing.selection import select_detections
    from wholebody.inputs.replay import first_record
    from wholebody.pipeline import replay_frames
    from wholebody.inputs.replay import check_file
    from wholebody.inputs.sources import Item
    check_file(args.from_json)  # a malformed line fails here, before any output is written
    first = first_record(args.from_json) or {}
    model = output_name(str(first.get("model") or "replay"), str(first.get("postprocess") or "ppi"),
                        str(first.get("assign") or "nearest"))
    if args.image is not None:
        source = [(Item(i, path), None) for i, path in enumerate(source)]
    frames = replay_frames(args.from_json, source, by_name=args.image is not None, on_skip=on_skip)
    if args.min_score is not None or args.max_people is not None or args.parts is not None:
        frames = (f._replace(result=select_detections(f.result, min_score=args.min_score, max_people=args.max_people,
                                                      parts=args.parts)) for f in frames)
    return frames, model, {}


def _resume(args: argparse.Namespace, images: list[str]) -> tuple[dict[str, str], list[str]]:
    """--resume: (the JSON lines kept from earlier runs by image, all images), see outputs/resume.py."""
    from wholebody.detector import model_name, resolve_model
    from wholebody.outputs.resume import read_finished, still_done
    if not args.json or args.video is not None or args.from_json:
        raise DopeError("--resume continues a --json file of --image inputs: give --image and --json")
    model = model_name(resolve_model(args.model, download=not args.no_download, progress=not args.quiet))
    kept = still_done(read_finished(args.json, model=model), images)
    done = sum(1 for p in images if p in kept)
    if kept:
        log.info("resuming %s: %d of %d images already done", args.json, done, len(images))
    return kept, images


def _ray_frames(args: argparse.Namespace, images: list[str], on_skip: Any) -> tuple[Iterator[Any], str, dict[str, Any]]:
    """(frames, model name, extra JSON keys) of --ray on images: the network on Ray workers."""
    from wholebody.cluster.images import ray_frames
    from wholebody.cluster.session import RayJob, import_ray
    from wholebody.detector import model_name, resolve_model
    import_ray()  # before any download
    path = resolve_model(args.model, download=not args.no_download, progress=not args.quiet)
    options = dict(device=args.device, precision=args.precision, postprocess=args.postprocess,
                   min_score=args.min_score, max_proposals=args.max_proposals, assign=args.assign,
                   max_people=args.max_people, parts=args.parts)
    frames = ray_frames(images, RayJob.from_args(args), path, options, batch_size=args.batch_size,
                        pixels=not args.no_overlay or args.visu3d or bool(args.html), on_skip=on_skip)
    name = model_name(path)
    return frames, name, {"model": name, "postprocess": args.postprocess,
                          **({"assign": args.assign} if args.assign != "nearest" else {})}


def _check_camera_and_exports(args: argparse.Namespace) -> None:
    """Fail early on a focal length or field of view that cannot be, and on exports that cannot be written."""
    from wholebody.exports.people import ExportError
    from wholebody.exports.writer import export_format
    from wholebody.motion.camera import CameraError, check_focal, check_fov
    try:
        if args.focal is not None:
            check_focal(args.focal)
        if args.fov is not None:
            check_fov(args.fov)
        for path in args.export or ():
            export_format(path)
    except (CameraError, ExportError) as e:
        raise DopeError(str(e)) from None


def _check_visu3d(args: argparse.Namespace) -> None:
    """Fail early on 3D view options that cannot work here (see view3d/render.py)."""
    if not args.visu3d:
        if args.interactive:
            raise DopeError("--interactive opens the 3D view: add --visu3d")
        return
    if args.video is not None:
        raise DopeError("--visu3d draws images, not videos: give the frames as --image")
    from wholebody.view3d.render import Visu3DError, choose_renderer
    try:
        choose_renderer(args.renderer, args.interactive)
    except Visu3DError as e:
        raise DopeError(str(e)) from None


def _quiet_opencv() -> None:
    """Keep OpenCV's and FFmpeg's own console messages ("moov atom not found", "can't open camera by
    index") off the terminal: our errors say the same on one line. -v leaves them on."""
    import cv2
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET; read when a video is opened


def _open_inputs(args: argparse.Namespace, stack: Any) -> tuple[Any, list[str], Optional[int], bool]:
    """Check the inputs before the model loads: (source for DOPE.stream, input paths, item count
    (None when unknown), whether it is one explicitly named image)."""
    from wholebody.inputs.sources import (VIDEO_EXTENSIONS, SourceError, Video, camera_or_path, expand_images,
                                          has_image_extension)
    if args.image is None and args.video is None:
        if args.from_json:
            return None, [args.from_json], None, False
        raise DopeError("nothing to process; give --image PATH or --video PATH|N")
    try:
        if args.video is not None:
            if has_image_extension(args.video) and os.path.isfile(args.video):
                raise DopeError(f"{args.video!r} is an image; give it with --image")
            try:
                video = stack.enter_context(Video(camera_or_path(args.video), start_s=args.start, end_s=args.end,
                                                  every=args.every, rate=args.fps))
            except SourceError as e:
                raise InputError(str(e)) from None
            names = ([] if video.is_camera else [video.name]) + ([args.from_json] if args.from_json else [])
            return video, names, video.expected_frames, False
        for path in args.image:
            if os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS and os.path.isfile(path):
                raise DopeError(f"{path!r} is a video; give it with --video")
        images = expand_images(args.image)
    except SourceError as e:
        raise DopeError(str(e)) from None
    single = len(args.image) == 1 and os.path.isfile(args.image[0]) and not args.from_json
    return images, images + ([args.from_json] if args.from_json else []), len(images), single


def _frame_rate(video: Any) -> float:
    if video.fps:
        return video.fps
    log.warning("%s does not say its frame rate; the drawing is written at 30 frames per second", video.name)
    return 30.0


def _describe(item: Any) -> str:
    return item.name if item.frame is None else f"{item.name} frame {item.frame} ({item.time_s or 0:.2f} s)"


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread: handled as Ctrl-C, so every cleanup for Ctrl-C runs."""


def _on_sigterm(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not break off the cleanup
    raise Terminated()


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread: signals are not ours to handle
        previous = None
    try:
        return _main(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(argv: Optional[Sequence[str]]) -> int:
    args = build_parser().parse_args(argv)
    level = logging.WARNING if args.quiet else logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(level=level, format="%(message)s")
    logging.getLogger("PIL").setLevel(max(level, logging.INFO))  # its DEBUG lists every PNG chunk
    if args.list_models:
        print(describe_models(models_dir(), download_url(), from_env=bool(os.environ.get("DOPE_MODELS"))))
        return 0
    if args.image is None and args.video is None and args.from_json is None:
        print("dope.py: error: nothing to process; give --image PATH or --video PATH|N (dope.py --help lists "
              "the inputs), or --list-models to see the models", file=sys.stderr)
        return 2
    if not args.from_json:
        from wholebody.startup import allow_winograd, import_torchvision
        # the command's own process only (startup.py): the library leaves these as it finds them
        log.debug("start-up: %s; %s", import_torchvision(), allow_winograd())
    try:
        return run(args)
    except DopeError as e:
        print(f"dope.py: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        if isinstance(e, Terminated):
            print("dope.py: terminated (SIGTERM)", file=sys.stderr)
            return 143
        print("dope.py: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
