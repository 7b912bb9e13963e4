"""The command line of dope.py: options, inputs checked before the model loads, outputs written.

`main(argv)` is what `python dope.py ...` runs; it returns the exit code (0; 1 for an error or a
skipped input; 2 for bad usage; 130 when interrupted with Ctrl-C, 143 when stopped by SIGTERM,
which is handled as Ctrl-C: what was written is kept, no temporary file is left).
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
from typing import Any, NoReturn, Optional, Sequence

from dope.version import __version__
from dope.config import RunConfig
from dope.detector import DEFAULT_MIN_SCORE, POSTPROCESSINGS, PRECISIONS
from dope.errors import DopeError
from dope.inputs.weights import DOWNLOAD_URL, KNOWN_MODELS, WEIGHTS_LICENCE, describe_models, download_url, models_dir
from dope.postprocessing.assignment import ASSIGNMENTS
from dope.startup import exit_fast

log = logging.getLogger("dope")


def prog() -> str:
    """The command's name in its messages: `dope`, or `dope.py` when run from a checkout."""
    return "dope.py" if os.path.basename(sys.argv[0] or "") == "dope.py" else "dope"


class Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors: the error and where to read more, not the usage block."""

    def error(self, message: str) -> "NoReturn":
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog=prog(), description="Detect every person's body, hands and face in 2D and 3D (DOPE, ECCV 2020).",
        epilog=f"Official checkpoints are downloaded on first use from {DOWNLOAD_URL}/<name>.pth.tgz (or "
               "$DOPE_DOWNLOAD_URL/<name>.pth.tgz) into the models folder ($DOPE_MODELS; default: models/ in a "
               f"checkout, else ~/.cache/dope/models); weights licence: {WEIGHTS_LICENCE}.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
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
                   help="smooth tracked poses over time: online (causal, a Kalman filter), offline (zero-phase, "
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
                        "the visvis extra and a display), auto: visvis when usable (default)")
    p.add_argument("--interactive", action="store_true",
                   help="with --visu3d: also open each 3D view in a window you can turn (visvis)")
    p.add_argument("--html", metavar="PATH",
                   help="write the 3D view as one self-contained HTML page (people in 3D in front of the image; "
                        "a time slider for videos and image lists); needs the html extra")
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
                        "per person, PATH's stem.<person>.bvh), .glb or .pose (pose-format, the pose extra); "
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
                        "--resume run leaves) and add the rest; see the docs: Cluster runs. With --video: skip the "
                        "videos whose --export files and --json records are written whole")
    ray = p.add_argument_group("cluster (Ray, see the docs: Cluster runs)")
    ray.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                     help="run on a Ray cluster: ADDRESS, else $RAY_ADDRESS, else a local one (the ray extra)")
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
    from dope.parts import PART_NAMES
    parts = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    unknown = [t for t in parts if t not in PART_NAMES]
    if unknown or not parts:
        raise argparse.ArgumentTypeError(f"unknown part(s) {', '.join(unknown) or text!r}; use "
                                         f"{', '.join(PART_NAMES)} separated by commas")
    return parts


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


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread: handled as Ctrl-C, so every cleanup for Ctrl-C runs."""


def _on_sigterm(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not break off the cleanup
    raise Terminated()


def console() -> None:
    """The `dope` command (and `python dope.py`): main(), then exit without Python's teardown once
    torch is loaded (startup.exit_fast)."""
    exit_fast(main())


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
        print(f"{prog()}: error: nothing to process; give --image PATH or --video PATH|N ({prog()} --help lists "
              "the inputs), or --list-models to see the models", file=sys.stderr)
        return 2
    if not args.from_json:
        from dope.startup import allow_winograd, import_torchvision
        # allow_winograd: the command's own process only (startup.py); the library leaves it alone
        log.debug("start-up: %s; %s", import_torchvision(), allow_winograd())
    from dope.runner import execute  # the pipeline and what it needs: not for --help
    if args.track is not False:
        from dope.motion.assignment import use_loader
        from dope.startup import quick_assignment
        use_loader(quick_assignment)  # the command's own process only (startup.py)
    try:
        return execute(RunConfig.from_options(vars(args)))
    except DopeError as e:
        print(f"{prog()}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        if isinstance(e, Terminated):
            print(f"{prog()}: terminated (SIGTERM)", file=sys.stderr)
            return 143
        print(f"{prog()}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
