#!/usr/bin/env python3
"""DOPE: whole-body 3D pose detection (bodies, hands and faces) in RGB images.

    python dope.py --model DOPE_v1_0_0 --image photo.jpg            # writes photo.jpg_DOPE_v1_0_0.jpg
    python dope.py --model DOPE_v1_0_0 --image photo.jpg --json out.json --postprocess nms
    python dope.py --image shots/ 'more/*.jpg' --json all.jsonl      # folders and patterns: JSON Lines
    python dope.py --video clip.mp4 --json clip.jsonl               # writes clip.mp4_DOPE_v1_0_0.mp4

As a library:

    from dope import DOPE
    detector = DOPE("DOPE_v1_0_0")           # a model name in models/, or a checkpoint path
    result = detector("photo.jpg")           # a path, a PIL image or an RGB uint8 array
    result.body[0].pose2d, result.to_json()
    for item, image, result in detector.stream("clip.mp4"):   # or a folder, a camera index, a list
        item.frame, item.time_s, len(result.body)
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, Sequence, Union

import numpy as np

# Where checkpoints come from and where they go live in download.py, the one source of these names.
from download import (CHECKPOINT_SUFFIXES, DOWNLOAD_URL, KNOWN_MODELS, WEIGHTS_LICENCE,
                      DownloadError, describe_models, download_url, fetch_checkpoint, manual_instructions, models_dir)

if TYPE_CHECKING:
    import torch
    from results import Result
    from sources import Item

log = logging.getLogger("dope")

HERE = os.path.dirname(os.path.abspath(__file__))
POSTPROCESSINGS = ("ppi", "nms")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DEFAULT_MIN_SCORE = 0.3


class DopeError(Exception):
    """An expected user mistake (missing file, bad model...): the CLI prints it on one line."""


def model_name(path: str) -> str:
    """The model's name from a checkpoint path: its file name without .pth.tgz / .pth."""
    base = os.path.basename(path)
    for suffix in CHECKPOINT_SUFFIXES:
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return os.path.splitext(base)[0]


def resolve_model(model: str, folder: Optional[str] = None, *, download: bool = True,
                  progress: bool = True) -> str:
    """A checkpoint path for a model name (looked up in the models folder) or a path.

    An official model name with no file is downloaded into the folder when `download` (from
    $DOPE_DOWNLOAD_URL, else NAVER's server), with a progress bar on stderr when `progress`.
    """
    if os.path.isfile(model):
        return model
    folder = folder or models_dir()
    candidates = [os.path.join(folder, model + suffix) for suffix in CHECKPOINT_SUFFIXES]
    for path in candidates:
        if os.path.isfile(path):
            return path
    looks_like_path = os.sep in model or model.endswith(CHECKPOINT_SUFFIXES)
    if looks_like_path:
        raise DopeError(f"checkpoint file {model!r} does not exist")
    if model not in KNOWN_MODELS:
        raise DopeError(f"model {model!r} not found (looked for {' and '.join(candidates)}); "
                        f"known models: {', '.join(KNOWN_MODELS)}; or give a checkpoint path")
    if not download:
        raise DopeError(f"model {model!r} is not in {folder} and downloading is off; "
                        f"{manual_instructions(model, folder, download_url())}")
    try:
        return fetch_checkpoint(model, folder, download_url(), progress=progress)
    except DownloadError as e:
        raise DopeError(str(e)) from None


def pick_device(device: Optional[str]) -> "torch.device":
    import torch
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise DopeError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DopeError(f"device {device!r} asked for, but CUDA is not available here; use --device cpu")
    return dev


def pick_dtype(precision: str, half_checkpoint: bool, device: "torch.device") -> "torch.dtype":
    """fp16 for half checkpoints on CUDA, fp32 otherwise (fp16 convolutions are slow or missing on CPU)."""
    import torch
    if precision not in PRECISIONS:
        raise DopeError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return torch.float16 if half_checkpoint and device.type == "cuda" else torch.float32
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


def postprocess_outputs(outputs: dict[str, Any], height: int, width: int, method: str,
                        ppi_kwargs: dict[str, dict[str, Any]], min_score: float) -> "Result":
    """One image's network outputs (numpy arrays) to a `Result`, hands and faces linked to bodies."""
    from postprocess import assign, nms, ppi
    from results import Result
    from parts import PART_NAMES
    parts = {}
    for part in PART_NAMES:
        o = outputs[part]
        arrays = (o["scores"], outputs["boxes"], o["pose2d"], o["pose3d"])
        if method == "ppi":
            parts[part] = ppi(*arrays, (height, width), **ppi_kwargs[part])
        else:
            parts[part] = nms(*arrays, min_score=min_score, K=ppi_kwargs["hand"].get("K") if part == "hand" else None)
    parts["body"] = assign(parts["body"], parts["hand"], parts["face"])
    return Result(height=height, width=width, **parts)


class DOPE:
    """A loaded DOPE model; calling it on an image gives a `Result`.

    model: a model name (looked up in the models folder), a checkpoint path, or a loaded dict.
    device: 'cpu', 'cuda', 'cuda:1'...; None means CUDA when available.
    precision: 'auto' (fp16 for half checkpoints on CUDA, else fp32), 'fp32', 'fp16' or 'bf16'.
    postprocess: 'ppi' (default) or 'nms' (min_score applies to nms).
    max_proposals: proposals kept after the RPN (1000 as published).
    download: fetch an official model that is not in the models folder yet (see download.py).
    progress: show the download's progress bar on stderr.
    threads: CPU threads torch may use (a process-wide setting); None leaves torch's choice (one
        per core). On a machine busy with other work, fewer threads than cores can be faster.
    channels_last: run the convolutions in the channels-last memory layout; None means on CPU
        (about 1.3x faster there, same results to float noise), not on CUDA (not measured).
    """

    def __init__(self, model: Union[str, os.PathLike, dict] = "DOPE_v1_0_0", *, device: Optional[str] = None,
                 precision: str = "auto", postprocess: str = "ppi", min_score: float = DEFAULT_MIN_SCORE,
                 max_proposals: Optional[int] = None, models_folder: Optional[str] = None,
                 download: bool = True, progress: bool = True, threads: Optional[int] = None,
                 channels_last: Optional[bool] = None) -> None:
        import torch
        from model import PUBLISHED_MAX_PROPOSALS, CheckpointError, build_model, read_checkpoint
        if postprocess not in POSTPROCESSINGS:
            raise DopeError(f"unknown post-processing {postprocess!r}; use one of {', '.join(POSTPROCESSINGS)}")
        if max_proposals is not None and max_proposals < 1:
            raise DopeError(f"max_proposals must be at least 1, got {max_proposals}")
        if threads is not None:
            if threads < 1:
                raise DopeError(f"threads must be at least 1, got {threads}")
            torch.set_num_threads(threads)
        if isinstance(model, (str, os.PathLike)):
            path = resolve_model(os.fspath(model), models_folder, download=download, progress=progress)
            self.name = model_name(path)
            source: Any = path
        else:
            self.name, source = "checkpoint", model
        try:
            self.checkpoint = read_checkpoint(source)
            net = build_model(self.checkpoint)
        except CheckpointError as e:
            raise DopeError(str(e)) from None
        self.device = pick_device(device)
        self.dtype = pick_dtype(precision, self.checkpoint.half, self.device)
        net.max_proposals = max_proposals or PUBLISHED_MAX_PROPOSALS
        self.channels_last = self.device.type == "cpu" if channels_last is None else channels_last
        layout = torch.channels_last if self.channels_last else torch.contiguous_format
        self.net = net.to(self.device, self.dtype, memory_format=layout)
        # Keep the settings only: the weights live in self.net (a copy would double the memory).
        self.checkpoint = dataclasses.replace(self.checkpoint, state_dict={})
        self.postprocess = postprocess
        self.min_score = min_score
        log.info("model %s on %s (%s), %s post-processing, %d proposals", self.name, self.device,
                 str(self.dtype).replace("torch.", ""), postprocess, self.net.max_proposals)
        torch.set_grad_enabled(False)

    def network(self, images: Sequence[np.ndarray]) -> list[dict[str, Any]]:
        """Raw network outputs for RGB uint8 images (H, W, 3), as float32 numpy arrays per image."""
        import torch
        with torch.inference_mode():
            tensors = [torch.from_numpy(im if im.flags.writeable else im.copy()).to(self.device).permute(2, 0, 1)
                       .to(self.dtype).div(255) for im in images]
            outputs = self.net(tensors)
        return [_to_numpy(o) for o in outputs]

    def predict(self, images: Sequence[Any]) -> list["Result"]:
        """Results for several images (paths, PIL images or RGB uint8 arrays), in one network pass."""
        arrays, names = zip(*(_as_array(im) for im in images)) if images else ((), ())
        results = []
        for im, name, out in zip(arrays, names, self.network(list(arrays))):
            res = postprocess_outputs(out, im.shape[0], im.shape[1], self.postprocess,
                                      self.checkpoint.ppi_kwargs, self.min_score)
            res.image = name
            results.append(res)
        return results

    def __call__(self, image: Any) -> "Result":
        return self.predict([image])[0]

    def stream(self, source: Any, *, batch_size: int = 1, prefetch: int = 4,
               on_skip: Optional[Callable[["Item", Exception], None]] = None,
               ) -> Iterator[tuple["Item", np.ndarray, "Result"]]:
        """Results for many images or video frames, as they come: `(item, image_rgb, result)` each.

        source: a video file path, a camera index or a `sources.Video`; a folder, a glob pattern or
            an image path; or an iterable of images (paths, PIL images, RGB uint8 arrays). See
            `sources.open_source`.
        batch_size: images per network pass (several are faster on a GPU).
        prefetch: images decoded ahead by a background thread while the network runs.
        on_skip(item, error): called for each image file that cannot be decoded, which is then
            skipped; by default a warning is logged. Raise from it to stop instead.
        item: a `sources.Item` (file name; for a video, frame number and time). image_rgb:
        uint8[H, W, 3]. Nothing is kept from one batch to the next, so memory stays flat over a long
        video. Close the generator (or leave it by an exception) to stop the reading thread early.
        """
        from sources import SourceError, Video, open_source
        from sources import prefetch as read_ahead
        if batch_size < 1:
            raise DopeError(f"batch_size must be at least 1, got {batch_size}")
        try:
            items = open_source(source)
        except SourceError as e:
            raise DopeError(str(e)) from None
        reader = read_ahead(items, size=max(prefetch, batch_size))
        try:
            batch: list[tuple[Any, Any]] = []
            for item, pixels in reader:
                if isinstance(pixels, Exception):
                    if on_skip is None:
                        log.warning("skipped: %s", pixels)
                    else:
                        on_skip(item, pixels)
                    continue
                batch.append((item, pixels))
                if len(batch) == batch_size:
                    yield from self._stream_batch(batch)
                    batch = []
            yield from self._stream_batch(batch)
        finally:
            reader.close()
            if isinstance(items, Video):  # one never read still holds its capture
                items.close()

    def _stream_batch(self, batch: list[tuple["Item", Any]]) -> Iterator[tuple["Item", np.ndarray, "Result"]]:
        """One network pass over a batch of (item, pixels); items without a frame number are images."""
        if not batch:
            return
        arrays = [_as_array(pixels)[0] for _, pixels in batch]
        for (item, _), array, result in zip(batch, arrays, self.predict(arrays)):
            result.image = item.name if item.frame is None else None
            yield item, array, result


def _to_numpy(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: _to_numpy(v) for k, v in tree.items()}
    return tree.float().cpu().numpy()


def _as_array(image: Any) -> tuple[np.ndarray, Optional[str]]:
    """(RGB uint8 array, name) for a path, a PIL image or an array; DopeError for anything else."""
    from sources import ImageError, read_images
    ((item, pixels),) = read_images([image])
    if isinstance(pixels, ImageError):
        raise DopeError(str(pixels))
    if not isinstance(pixels, np.ndarray):
        raise DopeError(f"cannot use a {type(image).__name__} as an image; give a path, a PIL image or an array")
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise DopeError(f"image arrays must be RGB uint8 (H, W, 3), got {pixels.dtype} {pixels.shape}")
    return pixels, item.name


# ---------------------------------------------------------------------------------------------- CLI


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


def output_path(image: str, model: str, output_dir: Optional[str], suffix: str = ".jpg") -> str:
    """`X_M.jpg` beside the image X (or in output_dir) for model M."""
    folder = output_dir if output_dir else os.path.dirname(os.path.abspath(image))
    return os.path.join(folder, f"{os.path.basename(image)}_{model}{suffix}")


def write_image(path: str, image_bgr: np.ndarray) -> None:
    import cv2
    from results import atomic_write
    ext = os.path.splitext(path)[1] or ".jpg"
    ok, buf = cv2.imencode(ext, image_bgr)
    if not ok:
        raise DopeError(f"cannot encode an image as {ext!r} for {path!r}")
    atomic_write(path, buf.tobytes())


def run(args: argparse.Namespace) -> int:
    """The command line's work: read the inputs, detect, write drawings and JSON (Lines).

    Returns the exit code: 0, or 1 when an image was skipped because it could not be read.
    Ctrl-C stops after the current batch; what was written is kept (see outputs.py).
    """
    from contextlib import ExitStack, closing
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm
    from outputs import JsonLinesWriter, OutputError, VideoWriter, record
    from visu import draw_result
    unit = "frame" if args.video is not None else "image"
    done, skipped, written = 0, [], []
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
            detector = DOPE(args.model, device=args.device, precision=args.precision, postprocess=args.postprocess,
                            min_score=args.min_score, max_proposals=args.max_proposals,
                            download=not args.no_download, progress=not args.quiet, threads=args.threads)
            try:
                json_out = stack.enter_context(JsonLinesWriter(args.json)) if args.json else None
                video_out = None
                if args.video is not None and not args.no_overlay:
                    video_out = stack.enter_context(VideoWriter(
                        output_path(source.name, detector.name, args.output_dir, ".mp4"), _frame_rate(source)))
            except OutputError as e:
                raise DopeError(str(e)) from None
            written = [w.path for w in (json_out, video_out) if w is not None]
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
            results = stack.enter_context(closing(
                detector.stream(source, batch_size=args.batch_size, on_skip=on_skip)))
            for item, image, result in results:
                say("%s: %d bodies, %d hands, %d faces", _describe(item), len(result.body), len(result.hand),
                    len(result.face))
                if json_out is not None:
                    json_out.write(record(item, result, model=detector.name, postprocess=args.postprocess))
                if not args.no_overlay:
                    # Video frames keep their size (no padding), as a video's frames must.
                    drawing = draw_result(np.ascontiguousarray(image[:, :, ::-1]), result, pad=video_out is None)
                    if video_out is not None:
                        video_out.write(drawing)
                    else:
                        path = output_path(item.name, detector.name, args.output_dir)
                        write_image(path, drawing)
                        say("wrote %s", path)
                if args.visu3d:
                    _write_visu3d(output_path(item.name, detector.name, args.output_dir, "_visu3d.jpg"), image,
                                  result, args, say)
                done += 1
                bar.update()
    except KeyboardInterrupt:
        kept = [p for p in written if os.path.exists(p)]
        log.warning("interrupted after %d %s%s%s", done, unit, "" if done == 1 else "s",
                    f"; kept {' and '.join(kept)}" if kept else "")
        raise
    except OutputError as e:
        raise DopeError(str(e)) from None
    for path in written:
        if os.path.exists(path):
            log.info("wrote %s", path)
    if skipped:
        log.warning("%d of %d images could not be read and were skipped (named above)", len(skipped),
                    len(skipped) + done)
        return 1
    return 0


def _check_visu3d(args: argparse.Namespace) -> None:
    """Fail early on 3D view options that cannot work here (see render3d.py)."""
    if not args.visu3d:
        if args.interactive:
            raise DopeError("--interactive opens the 3D view: add --visu3d")
        return
    if args.video is not None:
        raise DopeError("--visu3d draws images, not videos: give the frames as --image")
    from render3d import Visu3DError, choose_renderer
    try:
        choose_renderer(args.renderer, args.interactive)
    except Visu3DError as e:
        raise DopeError(str(e)) from None


def _write_visu3d(path: str, image: np.ndarray, result: "Result", args: argparse.Namespace, say: Any) -> None:
    from render3d import Visu3DError, write_visu3d
    try:
        used = write_visu3d(image, result, path, renderer=args.renderer, interactive=args.interactive)
    except Visu3DError as e:
        raise DopeError(str(e)) from None
    say("wrote %s (%s renderer)", path, used)


def _quiet_opencv() -> None:
    """Keep OpenCV's and FFmpeg's own console messages ("moov atom not found", "can't open camera by
    index") off the terminal: our errors say the same on one line. -v leaves them on."""
    import cv2
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET; read when a video is opened


def _open_inputs(args: argparse.Namespace, stack: Any) -> tuple[Any, list[str], Optional[int], bool]:
    """Check the inputs before the model loads: (source for DOPE.stream, input paths, item count
    (None when unknown), whether it is one explicitly named image)."""
    from sources import VIDEO_EXTENSIONS, SourceError, Video, camera_or_path, expand_images
    if args.image is None and args.video is None:
        raise DopeError("nothing to process; give --image PATH or --video PATH|N")
    try:
        if args.video is not None:
            video = stack.enter_context(Video(camera_or_path(args.video)))
            return video, [] if video.is_camera else [video.name], video.frame_count, False
        for path in args.image:
            if os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS and os.path.isfile(path):
                raise DopeError(f"{path!r} is a video; give it with --video")
        images = expand_images(args.image)
    except SourceError as e:
        raise DopeError(str(e)) from None
    single = len(args.image) == 1 and os.path.isfile(args.image[0])
    return images, images, len(images), single


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
    if args.image is None and args.video is None:
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
