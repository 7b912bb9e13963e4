"""The command line of dope.py: options, inputs checked before the model loads, outputs written.

`main(argv)` is what `python dope.py ...` runs; it returns the exit code (0; 1 for an error or a
skipped input; 2 for bad usage; 130 when interrupted).
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from typing import Any, Iterator, Optional, Sequence

from wholebody.detector import DEFAULT_MIN_SCORE, DOPE, POSTPROCESSINGS, PRECISIONS
from wholebody.errors import DopeError
from wholebody.files import output_path
from wholebody.inputs.weights import DOWNLOAD_URL, KNOWN_MODELS, WEIGHTS_LICENCE, describe_models, download_url, models_dir

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
    inputs.add_argument("--video", metavar="PATH|N",
                        help="a video file (mp4, avi, mov, mkv...) or a camera index (0 for the first camera); "
                             "writes VIDEO_MODEL.mp4 with the drawing on every frame")
    p.add_argument("--from-json", metavar="FILE.jsonl",
                   help="read saved detections (what --json writes) instead of running the network, then run "
                        "every later stage; with --video or --image, their pixels are used for drawings")
    p.add_argument("--track", action=argparse.BooleanOptionalAction, default=None,
                   help="give every body, hand and face a person id (\"track\") across frames; default: on for "
                        "videos, cameras and --from-json, off for images")
    p.add_argument("--smooth", choices=("off", "online", "offline"),
                   help="smooth tracked poses over time: online (causal, One-Euro), offline (zero-phase, "
                        "10 frames look-ahead); default: online for cameras, offline for video files and "
                        "--from-json, off for images (offline with --track)")
    p.add_argument("--batch-size", type=positive_int, default=1, metavar="N",
                   help="images or frames per network pass (default: %(default)s; more helps on a GPU)")
    p.add_argument("--postprocess", choices=POSTPROCESSINGS, default="ppi",
                   help="pose proposals integration (default) or non-maximum suppression")
    p.add_argument("--min-score", type=float, default=DEFAULT_MIN_SCORE,
                   help="NMS only: smallest anchor-pose probability kept (default: %(default)s)")
    p.add_argument("--json", metavar="PATH", help="write the detections as JSON: one object for one image, else "
                                                 "JSON Lines (one object per image or video frame)")
    p.add_argument("--output-dir", metavar="DIR",
                   help="where drawings and annotated videos go (default: beside each input; for a camera, "
                        "the current folder)")
    p.add_argument("--no-overlay", action="store_true", help="do not write the 2D drawing")
    p.add_argument("--visu3d", action="store_true",
                   help="also write IMAGE_MODEL_visu3d.jpg: every person's whole body in 3D in front of the image")
    p.add_argument("--renderer", choices=("auto", "builtin", "visvis"), default="auto",
                   help="3D view renderer: builtin (NumPy/OpenCV, no display needed), visvis (OpenGL, needs "
                        "requirements-visvis.txt and a display), auto: visvis when usable (default)")
    p.add_argument("--interactive", action="store_true",
                   help="with --visu3d: also open each 3D view in a window you can turn (visvis)")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="auto: fp16 for half-precision checkpoints on CUDA, fp32 otherwise")
    p.add_argument("--max-proposals", type=positive_int, metavar="N",
                   help="proposals kept after the RPN (default: 1000, as published); fewer is faster")
    p.add_argument("--threads", type=positive_int, metavar="N",
                   help="CPU threads (default: one per core); fewer can be faster on a busy machine")
    g = p.add_mutually_exclusive_group()
    g.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    g.add_argument("-v", "--verbose", action="store_true", help="say more about what is done")
    return p


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    """The command line's work: open the inputs, build the stream of frames (the network, or saved
    detections with --from-json), and hand every frame to the writers asked for.

    Returns the exit code: 0, or 1 when an image was skipped because it could not be read.
    Ctrl-C stops after the current batch; what was written is kept (see outputs/writers.py).
    """
    from contextlib import ExitStack, closing
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm
    from wholebody.inputs.replay import ReplayError
    from wholebody.outputs.writers import OutputError
    from wholebody.view3d.render import Visu3DError
    unit = "frame" if args.video is not None else "image"
    done, skipped, writers = 0, [], []
    if not args.verbose:
        _quiet_opencv()
    try:
        with ExitStack() as stack:
            source, names, total, single = _open_inputs(args, stack)
            if args.json and os.path.abspath(args.json) in {os.path.abspath(n) for n in names}:
                raise DopeError(f"--json {args.json!r} would overwrite an input; choose another path")
            if args.no_overlay and not args.json and not args.visu3d:
                log.warning("--no-overlay without --json: nothing will be written")
            if args.output_dir:
                os.makedirs(args.output_dir, exist_ok=True)
            _check_visu3d(args)  # before the model loads

            bar = stack.enter_context(tqdm(total=total, unit=unit, disable=args.quiet or single,
                                           dynamic_ncols=True))
            if not bar.disable:
                stack.enter_context(logging_redirect_tqdm())

            def on_skip(item: Any, error: Exception) -> None:
                if single:
                    raise DopeError(str(error))
                log.warning("skipped: %s", error)
                skipped.append(item.name)
                bar.update()

            say = log.info if single else log.debug
            if args.from_json:
                frames, model, extra = _replayed_frames(args, source)
            else:
                detector = DOPE(args.model, device=args.device, precision=args.precision,
                                postprocess=args.postprocess, min_score=args.min_score,
                                max_proposals=args.max_proposals, download=not args.no_download,
                                progress=not args.quiet, threads=args.threads)
                frames = detector.stream(source, batch_size=args.batch_size, on_skip=on_skip)
                model, extra = detector.name, {"model": detector.name, "postprocess": args.postprocess}
            frames = _over_time(args, source, stack.enter_context(closing(frames)))
            try:
                writers = [stack.enter_context(_writing(w)) for w in _open_writers(args, source, model, extra, say)]
            except OutputError as e:
                raise DopeError(str(e)) from None
            for frame in frames:
                item, result = frame.item, frame.result
                say("%s: %d bodies, %d hands, %d faces", _describe(item), len(result.body), len(result.hand),
                    len(result.face))
                for writer in writers:
                    writer.write(frame)
                done += 1
                bar.update()
    except KeyboardInterrupt:
        kept = [w.path for w in writers if getattr(w, "path", None) and os.path.exists(w.path)]
        log.warning("interrupted after %d %s%s%s", done, unit, "" if done == 1 else "s",
                    f"; kept {' and '.join(kept)}" if kept else "")
        raise
    except (OutputError, ReplayError, Visu3DError) as e:
        raise DopeError(str(e)) from None
    for w in writers:
        if getattr(w, "path", None) and os.path.exists(w.path):
            log.info("wrote %s", w.path)
    if skipped:
        log.warning("%d of %d images could not be read and were skipped (named above)", len(skipped),
                    len(skipped) + done)
        return 1
    return 0


@contextlib.contextmanager
def _writing(writer: Any) -> Iterator[Any]:
    """A writer that is closed (its output put in place) when the run ends or is interrupted with
    Ctrl-C, and aborted (the target left as it was) when the run fails."""
    try:
        yield writer
    except KeyboardInterrupt:
        writer.close()
        raise
    except BaseException:
        writer.abort()
        raise
    writer.close()


def _open_writers(args: argparse.Namespace, source: Any, model: str, extra: dict[str, Any],
                  say: Any) -> list[Any]:
    """The writers the options ask for, in the order they are fed: JSON, drawings, 3D views."""
    from wholebody.outputs.frames import DrawnImages, DrawnVideo, JsonFrames, View3DImages
    writers: list[Any] = []
    if args.json:
        writers.append(JsonFrames(args.json, **extra))
    if not args.no_overlay:
        if args.video is not None:
            writers.append(DrawnVideo(output_path(source.name, model, args.output_dir, ".mp4"), _frame_rate(source)))
        elif args.image is not None:
            writers.append(DrawnImages(model, args.output_dir, say))
    if args.visu3d:
        writers.append(View3DImages(model, args.output_dir, args.renderer, args.interactive, say))
    return writers


def _over_time(args: argparse.Namespace, source: Any, frames: Iterator[Any]) -> Iterator[Any]:
    """The stages over time between the frames and the writers: tracking, then smoothing (defaults
    in --help and the README)."""
    from wholebody.motion.smoothing import smooth
    from wholebody.motion.tracking import track
    camera = bool(getattr(source, "is_camera", False))
    sequence = args.video is not None or bool(args.from_json)
    mode = args.smooth or ("off" if args.track is False else "online" if camera
                           else "offline" if sequence or args.track else "off")
    tracking = args.track if args.track is not None else sequence or mode != "off"
    if mode != "off" and not tracking:
        raise DopeError(f"--smooth {mode} smooths each person's track: drop --no-track")
    if tracking:
        frames = track(frames)
    return smooth(frames, mode) if mode != "off" else frames


def _replayed_frames(args: argparse.Namespace, source: Any) -> tuple[Iterator[Any], str, dict[str, Any]]:
    """(frames, model name for output names, extra JSON keys) of --from-json: the saved records, with
    the pixels of --video or --image when given (by frame number, or by image path)."""
    from wholebody.inputs.replay import first_record
    from wholebody.pipeline import replay_frames
    from wholebody.inputs.replay import check_file
    from wholebody.inputs.sources import Item
    check_file(args.from_json)  # a malformed line fails here, before any output is written
    first = first_record(args.from_json) or {}
    model = str(first.get("model") or "replay")
    if args.image is not None:
        source = [(Item(i, path), None) for i, path in enumerate(source)]
    frames = replay_frames(args.from_json, source, by_name=args.image is not None)
    return frames, model, {}


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
    from wholebody.inputs.sources import VIDEO_EXTENSIONS, SourceError, Video, camera_or_path, expand_images
    if args.image is None and args.video is None:
        if args.from_json:
            return None, [args.from_json], None, False
        raise DopeError("nothing to process; give --image PATH or --video PATH|N")
    try:
        if args.video is not None:
            video = stack.enter_context(Video(camera_or_path(args.video)))
            names = ([] if video.is_camera else [video.name]) + ([args.from_json] if args.from_json else [])
            return video, names, video.frame_count, False
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


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.WARNING if args.quiet else logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(level=level, format="%(message)s")
    logging.getLogger("PIL").setLevel(max(level, logging.INFO))  # its DEBUG lists every PNG chunk
    if args.list_models:
        print(describe_models(models_dir(), download_url()))
        return 0
    if args.image is None and args.video is None and args.from_json is None:
        print("dope.py: error: nothing to process; give --image PATH or --video PATH|N (dope.py --help lists "
              "the inputs), or --list-models to see the models", file=sys.stderr)
        return 2
    try:
        return run(args)
    except DopeError as e:
        print(f"dope.py: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("dope.py: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
