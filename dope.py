#!/usr/bin/env python3
"""DOPE: whole-body 3D pose detection (bodies, hands and faces) in RGB images.

    python dope.py --model DOPE_v1_0_0 --image photo.jpg            # writes photo.jpg_DOPE_v1_0_0.jpg
    python dope.py --model DOPE_v1_0_0 --image photo.jpg --json out.json --postprocess nms

As a library:

    from dope import DOPE
    detector = DOPE("DOPE_v1_0_0")           # a model name in models/, or a checkpoint path
    result = detector("photo.jpg")           # a path, a PIL image or an RGB uint8 array
    result.body[0].pose2d, result.to_json()
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np

log = logging.getLogger("dope")

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS_DIR = os.path.join(HERE, "models")
KNOWN_MODELS = ("DOPE_v1_0_0", "DOPErealtime_v1_0_0")
DOWNLOAD_URL = "http://download.europe.naverlabs.com/ComputerVision/DOPE_models"
WEIGHTS_LICENCE = "CC BY-NC-SA 4.0 (NAVER LABS Europe; non-commercial use)"
POSTPROCESSINGS = ("ppi", "nms")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DEFAULT_MIN_SCORE = 0.3


class DopeError(Exception):
    """An expected user mistake (missing file, bad model...): the CLI prints it on one line."""


def models_dir() -> str:
    """The folder where model names are looked up: $DOPE_MODELS, else models/ beside dope.py."""
    return os.environ.get("DOPE_MODELS") or MODELS_DIR


def model_name(path: str) -> str:
    """The model's name from a checkpoint path: its file name without .pth.tgz / .pth."""
    from model import CHECKPOINT_SUFFIXES
    base = os.path.basename(path)
    for suffix in CHECKPOINT_SUFFIXES:
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return os.path.splitext(base)[0]


def resolve_model(model: str, folder: Optional[str] = None) -> str:
    """A checkpoint path for a model name (looked up in the models folder) or a path."""
    from model import CHECKPOINT_SUFFIXES
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
    hint = (f"download {DOWNLOAD_URL}/{model}.pth.tgz into {folder}/ (weights licence: {WEIGHTS_LICENCE})"
            if model in KNOWN_MODELS else f"known models: {', '.join(KNOWN_MODELS)}; or give a checkpoint path")
    raise DopeError(f"model {model!r} not found (looked for {' and '.join(candidates)}); {hint}")


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
    """

    def __init__(self, model: Union[str, os.PathLike, dict] = "DOPE_v1_0_0", *, device: Optional[str] = None,
                 precision: str = "auto", postprocess: str = "ppi", min_score: float = DEFAULT_MIN_SCORE,
                 max_proposals: Optional[int] = None, models_folder: Optional[str] = None) -> None:
        import torch
        from model import PUBLISHED_MAX_PROPOSALS, CheckpointError, build_model, read_checkpoint
        if postprocess not in POSTPROCESSINGS:
            raise DopeError(f"unknown post-processing {postprocess!r}; use one of {', '.join(POSTPROCESSINGS)}")
        if max_proposals is not None and max_proposals < 1:
            raise DopeError(f"max_proposals must be at least 1, got {max_proposals}")
        if isinstance(model, (str, os.PathLike)):
            path = resolve_model(os.fspath(model), models_folder)
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
        self.net = net.to(self.device, self.dtype)
        self.postprocess = postprocess
        self.min_score = min_score
        log.info("model %s on %s (%s), %s post-processing, %d proposals", self.name, self.device,
                 str(self.dtype).replace("torch.", ""), postprocess, self.net.max_proposals)
        torch.set_grad_enabled(False)

    def network(self, images: Sequence[np.ndarray]) -> list[dict[str, Any]]:
        """Raw network outputs for RGB uint8 images (H, W, 3), as float32 numpy arrays per image."""
        import torch
        with torch.inference_mode():
            tensors = [torch.from_numpy(np.ascontiguousarray(im)).to(self.device).permute(2, 0, 1)
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


def _to_numpy(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: _to_numpy(v) for k, v in tree.items()}
    return tree.float().cpu().numpy()


def _as_array(image: Any) -> tuple[np.ndarray, Optional[str]]:
    """(RGB uint8 array, name) for a path, a PIL image or an array."""
    from sources import ImageError, load_image, to_rgb
    if isinstance(image, (str, os.PathLike)):
        try:
            return load_image(image), os.fspath(image)
        except ImageError as e:
            raise DopeError(str(e)) from None
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise DopeError(f"image arrays must be RGB uint8 (H, W, 3), got {image.dtype} {image.shape}")
        return image, None
    try:
        from PIL import Image
        if isinstance(image, Image.Image):
            return np.asarray(to_rgb(image)), getattr(image, "filename", None) or None
    except ImportError:
        pass
    raise DopeError(f"cannot use a {type(image).__name__} as an image; give a path, a PIL image or an array")


# ---------------------------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dope.py", description="Detect every person's body, hands and face in 2D and 3D (DOPE, ECCV 2020).",
        epilog=f"Checkpoints: {DOWNLOAD_URL}/<name>.pth.tgz into models/ (weights licence: {WEIGHTS_LICENCE}).")
    p.add_argument("--model", default="DOPE_v1_0_0",
                   help=f"model name in the models folder ({', '.join(KNOWN_MODELS)}) or a checkpoint path "
                        "(default: %(default)s)")
    p.add_argument("--image", nargs="+", required=True, metavar="PATH", help="image file(s) to process")
    p.add_argument("--postprocess", choices=POSTPROCESSINGS, default="ppi",
                   help="pose proposals integration (default) or non-maximum suppression")
    p.add_argument("--min-score", type=float, default=DEFAULT_MIN_SCORE,
                   help="NMS only: smallest anchor-pose probability kept (default: %(default)s)")
    p.add_argument("--json", metavar="PATH", help="write the detections as JSON (one object; JSON Lines for "
                                                 "several images)")
    p.add_argument("--output-dir", metavar="DIR", help="where drawings go (default: beside each image)")
    p.add_argument("--no-overlay", action="store_true", help="do not write the 2D drawing")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="auto: fp16 for half-precision checkpoints on CUDA, fp32 otherwise")
    p.add_argument("--max-proposals", type=int, metavar="N",
                   help="proposals kept after the RPN (default: 1000, as published); fewer is faster")
    g = p.add_mutually_exclusive_group()
    g.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    g.add_argument("-v", "--verbose", action="store_true", help="say more about what is done")
    return p


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
    from results import atomic_write
    from visu import draw_result
    if args.output_dir:
        os.makedirs(args.output_dir, exist_ok=True)
    if args.json and os.path.abspath(args.json) in {os.path.abspath(i) for i in args.image}:
        raise DopeError(f"--json {args.json!r} would overwrite an input image; choose another path")
    for image in args.image:  # fail before loading the model
        _check_image_path(image)
    detector = DOPE(args.model, device=args.device, precision=args.precision, postprocess=args.postprocess,
                    min_score=args.min_score, max_proposals=args.max_proposals)
    lines = []
    for image in args.image:
        array, _ = _as_array(image)
        result = detector.predict([array])[0]
        result.image = image
        log.info("%s: %d bodies, %d hands, %d faces", image, len(result.body), len(result.hand), len(result.face))
        if not args.no_overlay:
            path = output_path(image, detector.name, args.output_dir)
            write_image(path, draw_result(np.ascontiguousarray(array[:, :, ::-1]), result))
            log.info("wrote %s", path)
        lines.append(result.to_json(model=detector.name, postprocess=args.postprocess))
    if args.json:
        atomic_write(args.json, "\n".join(lines) + "\n")
        log.info("wrote %s", args.json)
    return 0


def _check_image_path(path: str) -> None:
    from sources import ImageError
    if not os.path.exists(path):
        raise DopeError(f"image {path!r} does not exist")
    if os.path.isdir(path):
        raise DopeError(f"{path!r} is a folder, not an image")
    if os.path.getsize(path) == 0:
        raise DopeError(f"image {path!r} is empty")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.WARNING if args.quiet else logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(level=level, format="%(message)s")
    if args.max_proposals is not None and args.max_proposals < 1:
        print(f"dope.py: error: --max-proposals must be at least 1", file=sys.stderr)
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
