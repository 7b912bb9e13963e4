"""The DOPE detector: a loaded model that turns images and video frames into `Result`s.

Layers (STYLE.md): network outputs (`DOPE.network`, arrays) -> post-processing
(`postprocess_outputs`) -> results per image (`DOPE.predict`, `DOPE.__call__`) -> a stream over a
source (`DOPE.stream`). The command line (cli.py) and dope.py sit on top of this module.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Optional, Sequence, Union

import numpy as np

from dope.errors import DopeError
from dope.stream import Frame
# Where checkpoints come from and where they go live in inputs/weights.py, the one source of these names.
from dope.inputs.weights import (CHECKPOINT_SUFFIXES, KNOWN_MODELS, DownloadError, download_url,
                                      fetch_checkpoint, manual_instructions, models_dir)

if TYPE_CHECKING:
    import torch
    from dope.inputs.sources import Item
    from dope.results import Result

log = logging.getLogger("dope")

POSTPROCESSINGS = ("ppi", "nms")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DEFAULT_MIN_SCORE = 0.3  # NMS's candidates: anchor poses at least this probable (the published threshold)
DEVICE_TYPES = ("cpu", "cuda")
MAX_THREADS_PER_CORE = 4  # more CPU threads than this per core is a mistake, not a tuning
# Images that the network shrinks below half their size are first shrunk in uint8 (area averaging) to
# twice the network's input size, so that no float copy of a huge image is ever made; the network's
# own resize then halves them. Smaller shrinks (the fixtures' 480x640 at 320: 2/3) are left to the network.
PRESHRINK_BELOW = 0.5
SIZE_DIVISIBLE = 32  # the network pads its input batch to multiples of this (GeneralizedRCNNTransform)
MIN_INPUT_SIDE = 16  # pixels at the network's input size: one feature-map cell (stride 16)


def model_name(path: str) -> str:
    """The model's name from a checkpoint path: its file name without .pth.tgz / .pth."""
    base = os.path.basename(path)
    for suffix in CHECKPOINT_SUFFIXES:
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return os.path.splitext(base)[0]


def _candidates(model: str, folder: Optional[str]) -> list[str]:
    """Where a model name is looked for in the models folder, in this order."""
    return [os.path.join(folder or models_dir(), model + suffix) for suffix in CHECKPOINT_SUFFIXES]


def local_checkpoint(model: str, folder: Optional[str] = None) -> Optional[str]:
    """The checkpoint file `model` names, when it is there already: the path itself, or the model
    name in the models folder (see resolve_model); None otherwise."""
    if os.path.isfile(model):
        return model
    return next((path for path in _candidates(model, folder) if os.path.isfile(path)), None)


def resolve_model(model: str, folder: Optional[str] = None, *, download: bool = True,
                  progress: bool = True) -> str:
    """A checkpoint path for a model name (looked up in the models folder) or a path.

    An official model name with no file is downloaded into the folder when `download` (from
    $DOPE_DOWNLOAD_URL, else NAVER's server), with a progress bar on stderr when `progress`.
    """
    path = local_checkpoint(model, folder)
    if path is not None:
        return path
    folder = folder or models_dir()
    candidates = _candidates(model, folder)
    if os.path.lexists(model):  # there, but not a file: say what it is
        from dope.files import describe_kind
        raise DopeError(f"--model {model!r} is {describe_kind(model)}, not a checkpoint file; give a "
                        f"checkpoint file or a model name ({', '.join(KNOWN_MODELS)})")
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
    """The torch device for 'cpu', 'cuda' or 'cuda:N' (None: CUDA when available); DopeError for
    anything else, for CUDA where there is none and for a GPU index beyond those present."""
    import torch
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise DopeError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if dev.type not in DEVICE_TYPES:
        raise DopeError(f"device {device!r} is not supported; use cpu, cuda or cuda:N")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DopeError(f"device {device!r} asked for, but CUDA is not available here; use --device cpu")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise DopeError(f"device {device!r} asked for, but this machine has {count} GPU"
                            f"{'s' if count != 1 else ''} (cuda:0{f' to cuda:{count - 1}' if count > 1 else ''})")
    return dev


def check_precision(precision: str, device: "torch.device") -> None:
    """DopeError for an unknown precision, or bf16 on a GPU without bf16 support."""
    import torch
    if precision not in PRECISIONS:
        raise DopeError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise DopeError(f"precision bf16 is not supported by {torch.cuda.get_device_name(device)}; use fp16 or fp32")


def check_threads(threads: Optional[int]) -> None:
    """DopeError unless threads is None or 1..MAX_THREADS_PER_CORE x the cores."""
    if threads is None:
        return
    cores = os.cpu_count() or 1
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise DopeError(f"threads must be a whole number of at least 1, got {threads!r}")
    if threads > MAX_THREADS_PER_CORE * cores:
        raise DopeError(f"threads={threads} is more than {MAX_THREADS_PER_CORE} per core ({cores} cores here); "
                        f"use at most {MAX_THREADS_PER_CORE * cores}")


def pick_dtype(precision: str, half_checkpoint: bool, device: "torch.device") -> "torch.dtype":
    """fp16 for half checkpoints on CUDA, fp32 otherwise (fp16 convolutions are slow or missing on CPU)."""
    import torch
    if precision not in PRECISIONS:
        raise DopeError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return torch.float16 if half_checkpoint and device.type == "cuda" else torch.float32
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


def network_input_size(height: int, width: int, min_size: int, max_size: int) -> tuple[int, int]:
    """(H, W) the network resizes an image to: the shorter side to min_size unless the longer side
    would exceed max_size (torchvision's GeneralizedRCNNTransform, which floors)."""
    scale = min(min_size / min(height, width), max_size / max(height, width))
    return int(math.floor(height * scale)), int(math.floor(width * scale))


def postprocess_outputs(outputs: dict[str, Any], height: int, width: int, method: str,
                        ppi_kwargs: dict[str, dict[str, Any]], min_score: Optional[float] = None, *,
                        assignment: str = "nearest", max_people: Optional[int] = None,
                        parts: Optional[Sequence[str]] = None) -> "Result":
    """One image's network outputs (numpy arrays) to a `Result`, hands and faces linked to bodies.

    min_score: detections scoring below it are dropped after hands and faces are linked to bodies
    (`selection.select_detections`, the one place it applies, live or replayed from JSON), on each
    post-processing's scale: NMS's anchor-pose probability, PPI's sums of probabilities. None
    drops none. NMS itself starts from the anchor poses of probability DEFAULT_MIN_SCORE (0.3) and
    more, as published; PPI from its own `score_th`. assignment: "nearest" (as published) or "unique"
    (postprocessing/assignment.py). max_people, parts: see `selection.select_detections`.
    """
    from dope.postprocessing.proposals import nms, ppi
    from dope.postprocessing.assignment import assign
    from dope.postprocessing.selection import select_detections
    from dope.results import Result
    from dope.parts import PART_NAMES
    found = {}
    for part in PART_NAMES:
        o = outputs[part]
        arrays = (o["scores"], outputs["boxes"], o["pose2d"], o["pose3d"])
        if method == "ppi":
            found[part] = ppi(*arrays, (height, width), **ppi_kwargs[part])
        else:
            # NMS's own candidates: anchor poses of probability DEFAULT_MIN_SCORE and more, as published
            found[part] = nms(*arrays, min_score=DEFAULT_MIN_SCORE, K=ppi_kwargs["hand"].get("K") if part == "hand" else None)
    found["body"] = assign(found["body"], found["hand"], found["face"], assignment)
    return select_detections(Result(height=height, width=width, **found), min_score=min_score,
                             max_people=max_people, parts=parts)


class DOPE:
    """A loaded DOPE model; calling it on an image gives a `Result`.

    Threads may share one detector: a call keeps its state in its own frames (inference mode is
    per thread, the network's modules are only read, the post-processing keeps nothing), and the
    results are those of calls one after the other (tests/test_startup.py). They share torch's
    intra-op threads, so concurrent calls are not faster than sequential ones on a CPU.

    model: a model name (looked up in the models folder), a checkpoint path, a loaded dict, or a
        `Checkpoint` (from `read_checkpoint`: read once, for several detectors).
    device: 'cpu', 'cuda', 'cuda:1'...; None means CUDA when available.
    precision: 'auto' (fp16 for half checkpoints on CUDA, else fp32), 'fp32', 'fp16' or 'bf16'.
    postprocess: 'ppi' (default) or 'nms'.
    min_score: the smallest score kept, on each post-processing's own scale (NMS: an anchor pose's
        probability; PPI: a sum of probabilities), applied once, after hands and faces are linked
        to bodies, as a replay of saved records applies it; None keeps all (as published: NMS
        itself starts from anchor poses of probability DEFAULT_MIN_SCORE, 0.3, and more).
    assign: how hands and faces are attached to bodies: 'nearest' (as published) or 'unique' (one to one).
    max_people: keep at most this many people (best bodies, with their hands and faces); None: all.
    parts: keep only these parts ('body', 'hand', 'face'); None: all.
    max_proposals: proposals kept after the RPN, 1..settings.MAX_PROPOSALS; None: 1000, as the
        published code does whatever the file says. It goes into the config the network is built
        from (`DOPE.config["rpn_post_nms_top_n_test"]`), the one place it is set.
    download: fetch an official model that is not in the models folder yet (see inputs/weights.py).
    progress: show the download's progress bar on stderr.
    threads: CPU threads torch may use (a process-wide setting); None leaves torch's choice (one
        per core). On a machine busy with other work, fewer threads than cores can be faster.
        More than MAX_THREADS_PER_CORE per core is refused.
    Arguments are checked (device, precision, counts) before the checkpoint is read or downloaded;
    nothing here changes torch's grad mode: inference runs under `torch.inference_mode()`.
    channels: the channel order of the image arrays given to the detector and of those its stream
        gives back: "rgb" (the default, as PIL and the files it reads) or "bgr" (OpenCV's order,
        `cv2.imread`, `cv2.VideoCapture`). Paths and PIL images are read in their own order.
    channels_last: run the convolutions in the channels-last memory layout; None means on CPU
        (about 1.3x faster there, same results to float noise), not on CUDA (not measured).
    """

    def __init__(self, model: Union[str, os.PathLike, dict] = "DOPE_v1_0_0", *, device: Optional[str] = None,
                 precision: str = "auto", postprocess: str = "ppi", min_score: Optional[float] = None,
                 max_proposals: Optional[int] = None, models_folder: Optional[str] = None,
                 download: bool = True, progress: bool = True, threads: Optional[int] = None,
                 channels_last: Optional[bool] = None, assign: str = "nearest", max_people: Optional[int] = None,
                 parts: Optional[Sequence[str]] = None, channels: str = "rgb") -> None:
        from dope.parts import PART_NAMES
        from dope.postprocessing.assignment import ASSIGNMENTS
        from dope.settings import MAX_PROPOSALS
        # Every argument is checked before anything heavy (a download, the checkpoint) is loaded.
        if postprocess not in POSTPROCESSINGS:
            raise DopeError(f"unknown post-processing {postprocess!r}; use one of {', '.join(POSTPROCESSINGS)}")
        if min_score is not None and (isinstance(min_score, bool) or not isinstance(min_score, (int, float))
                                      or not math.isfinite(min_score) or min_score < 0):
            raise DopeError(f"min_score must be a finite number of at least 0, got {min_score!r}")
        if assign not in ASSIGNMENTS:
            raise DopeError(f"unknown assignment {assign!r}; use one of {', '.join(ASSIGNMENTS)}")
        if max_people is not None and max_people < 0:
            raise DopeError(f"max_people must be at least 0, got {max_people}")
        if parts is not None and set(parts) - set(PART_NAMES):
            raise DopeError(f"unknown part(s) {', '.join(sorted(set(parts) - set(PART_NAMES)))}; "
                            f"use {', '.join(PART_NAMES)}")
        if max_proposals is not None and (isinstance(max_proposals, bool) or not isinstance(max_proposals, int)
                                          or not 1 <= max_proposals <= MAX_PROPOSALS):
            raise DopeError(f"max_proposals must be a whole number in 1..{MAX_PROPOSALS}, got {max_proposals!r}")
        check_threads(threads)
        if channels not in ("rgb", "bgr"):
            raise DopeError(f"channels must be 'rgb' or 'bgr', got {channels!r}")
        self.channels = channels
        local = local_checkpoint(os.fspath(model), models_folder) if isinstance(model, (str, os.PathLike)) else None
        import torch
        from dope.network.checkpoint import (PUBLISHED_MAX_PROPOSALS, Checkpoint, CheckpointError,
                                                  merge_config, read_checkpoint)
        from dope.network.dopenet import build_model, fold_batchnorms
        self.device = pick_device(device)
        check_precision(precision, self.device)
        if threads is not None:
            torch.set_num_threads(threads)
        if isinstance(model, (str, os.PathLike)):
            path = local or resolve_model(os.fspath(model), models_folder, download=download, progress=progress)
            self.name = model_name(path)
            source: Any = path
        else:
            self.name, source = "checkpoint", model
        try:
            read_here = isinstance(source, str)  # then its tensors are this object's alone
            checkpoint = source if isinstance(source, Checkpoint) else read_checkpoint(source)
            # One source of truth for the proposal count: the config the network is built from. The
            # published test code keeps 1000 whatever the file says; max_proposals overrides both.
            config = merge_config(checkpoint.config,
                                  {"rpn_post_nms_top_n_test": max_proposals or PUBLISHED_MAX_PROPOSALS})
            checkpoint = dataclasses.replace(checkpoint, config=config)
            # Batch norms folded into the convolutions (1.3-1.7x on a CPU), in fp32, before any cast.
            net = fold_batchnorms(build_model(checkpoint), in_place=read_here)
        except CheckpointError as e:
            raise DopeError(str(e)) from None
        self.dtype = pick_dtype(precision, checkpoint.half, self.device)
        self.channels_last = self.device.type == "cpu" if channels_last is None else channels_last
        self.net = net.to(self.device, self.dtype)  # fp32 on CPU: no copy of the weights
        self.net.channels_last = self.channels_last
        # Keep the settings only: the weights live in self.net (a copy would double the memory).
        self.checkpoint = dataclasses.replace(checkpoint, state_dict={})
        self.postprocess = postprocess
        self.min_score = None if min_score is None else float(min_score)
        self.assign, self.max_people, self.parts = assign, max_people, None if parts is None else tuple(parts)
        self.timings = {"network": 0.0, "post-processing": 0.0}  # seconds spent so far, for -v
        self._lock = threading.Lock()  # for the counters above: threads may share a detector
        self._warned_non_finite = False
        log.info("model %s on %s (%s), %s post-processing, %d proposals", self.name, self.device,
                 str(self.dtype).replace("torch.", ""), postprocess, self.net.max_proposals)
        log.debug("fast paths: %s", "; ".join(self.fast_paths()) or "none")

    def fast_paths(self) -> list[str]:
        """What runs other than torch's plain operators, now (docs/performance.md has their figures)."""
        import torch
        if self.device.type != "cpu" or self.dtype != torch.float32 or not self.channels_last:
            return []
        precision = torch.get_float32_matmul_precision()
        return ["batch norms folded into the convolutions", "channels-last convolutions",
                "RoIAlign as one gathered sum", "stage 4's 1x1 convolutions as matrix products",
                "3x3 convolutions as Winograd products" if precision != "highest" else
                "Winograd off (torch's float32 matmul precision is 'highest')"]

    @property
    def config(self) -> dict[str, Any]:
        """The network's settings (the checkpoint's dope_kwargs over the defaults, with DOPE's overrides)."""
        return self.checkpoint.config

    def network(self, images: Sequence[np.ndarray]) -> list[dict[str, Any]]:
        """Raw network outputs for RGB uint8 images (H, W, 3), as float32 numpy arrays per image, with
        boxes and 2D poses in the images' pixels. Any strides and read-only arrays are fine; an image
        much larger than the network's input is first shrunk in uint8 (see PRESHRINK_BELOW).

        Images go through the network in groups of one padded input size: a batch pads its images
        to a common size, and padding changes the features near the borders, hence the proposals.
        So an image's results do not depend on what it is batched with (a landscape photo beside a
        portrait one gives what it gives alone, to float noise); frames of a video are one group.
        """
        import torch
        if not len(images):
            return []
        shrunk = [self._network_image(im) for im in images]
        originals = [tuple(im.shape[:2]) for im in images]
        c = self.checkpoint.config
        groups: dict[tuple[int, int], list[int]] = {}
        for i, im in enumerate(shrunk):
            nh, nw = network_input_size(im.shape[0], im.shape[1], c["min_size"], c["max_size"])
            groups.setdefault((-(-nh // SIZE_DIVISIBLE), -(-nw // SIZE_DIVISIBLE)), []).append(i)
        outputs: list[Any] = [None] * len(shrunk)
        with torch.inference_mode():
            for members in groups.values():
                tensors = [torch.from_numpy(shrunk[i]).to(self.device).permute(2, 0, 1).to(self.dtype).div(255)
                           for i in members]
                for i, out in zip(members, self.net(tensors, [originals[i] for i in members])):
                    outputs[i] = _to_numpy(out)
        return outputs

    def _network_image(self, image: np.ndarray) -> np.ndarray:
        """A C-contiguous, writable uint8 (H, W, 3) array for torch: shrunk first (area averaging, in
        uint8) when the network would shrink it below PRESHRINK_BELOW. DopeError for a shape the
        network cannot take (empty, or so thin that a side would be under MIN_INPUT_SIDE pixels)."""
        import cv2
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise DopeError(f"image arrays must be RGB uint8 (H, W, 3), got "
                            f"{getattr(image, 'dtype', type(image).__name__)} {getattr(image, 'shape', '')}")
        h, w = image.shape[:2]
        nh, nw = self.check_size(h, w)
        if nh < PRESHRINK_BELOW * h and nw < PRESHRINK_BELOW * w:
            size = (max(MIN_INPUT_SIDE, round(2 * nw)), max(MIN_INPUT_SIDE, round(2 * nh)))
            image = cv2.resize(np.ascontiguousarray(image), size, interpolation=cv2.INTER_AREA)
        if not image.flags.c_contiguous or not image.flags.writeable:
            # torch takes neither negative strides (frame[..., ::-1]) nor read-only memory
            image = np.array(image, order="C", copy=True)
        return image

    def check_size(self, height: int, width: int) -> tuple[int, int]:
        """The network's input size (H, W) for an image of this size; DopeError for an empty image or
        one so thin that a side would be under MIN_INPUT_SIDE pixels there (1x3000, 5000x2)."""
        if height == 0 or width == 0:
            raise DopeError(f"image is empty ({width}x{height} pixels)")
        c = self.checkpoint.config
        nh, nw = network_input_size(height, width, c["min_size"], c["max_size"])
        if min(nh, nw) < MIN_INPUT_SIDE:
            raise DopeError(f"image of {width}x{height} pixels is too thin for the network: at its input size "
                            f"({c['min_size']}/{c['max_size']}) it would be {nw}x{nh}; "
                            f"each side needs at least {MIN_INPUT_SIDE}")
        return nh, nw

    def predict(self, images: Iterable[Any]) -> list["Result"]:
        """Results for several images, in one network pass: a list, a generator or any iterable of
        paths, PIL images or RGB uint8 arrays (H, W, 3), or one (N, H, W, 3) array. An empty input
        gives []."""
        if isinstance(images, np.ndarray):
            if images.ndim != 4:
                raise DopeError(f"predict takes several images: a list, or an (N, H, W, 3) array, got an array "
                                f"of shape {images.shape}; for one image, call the detector: det(image)")
        elif isinstance(images, (str, os.PathLike, bytes)) or not isinstance(images, Iterable) \
                or hasattr(images, "getpixel"):
            raise DopeError(f"predict takes several images (a list or another iterable), got a "
                            f"{type(images).__name__}; for one image, call the detector: det(image)")
        return self._results([_as_array(im, self.channels) for im in images])

    def _results(self, pairs: list[tuple[np.ndarray, Optional[str]]]) -> list["Result"]:
        """Results for (RGB array, name) pairs, in one network pass."""
        if not pairs:
            return []
        results = []
        t0 = time.perf_counter()
        outputs = self.network([im for im, _ in pairs])
        t1 = time.perf_counter()
        for (im, name), out in zip(pairs, outputs):
            self._check_finite(out, name)
            res = postprocess_outputs(out, im.shape[0], im.shape[1], self.postprocess,
                                      self.checkpoint.ppi_kwargs, self.min_score, assignment=self.assign,
                                      max_people=self.max_people, parts=self.parts)
            res.image = name
            results.append(res)
        t2 = time.perf_counter()
        with self._lock:
            self.timings["network"] += t1 - t0
            self.timings["post-processing"] += t2 - t1
        log.debug("%d image%s: network %.3f s, post-processing %.3f s", len(pairs), "" if len(pairs) == 1 else "s",
                  t1 - t0, t2 - t1)
        return results

    def _check_finite(self, outputs: dict[str, Any], name: Optional[str]) -> None:
        """Warn (once per detector, later at DEBUG) when network outputs hold NaN or infinities: they
        come from non-finite weights or anchor poses, and give missing detections or joints at infinity."""
        bad = sum(int(np.size(a) - np.count_nonzero(np.isfinite(a))) for a in _leaves(outputs))
        if bad:
            message = ("%s: %d network outputs are NaN or infinite (non-finite weights or anchor poses in the "
                       "checkpoint?): detections may be missing, and non-finite joints are written as null")
            (log.debug if self._warned_non_finite else log.warning)(message, name or "image", bad)
            self._warned_non_finite = True

    def __call__(self, image: Any) -> "Result":
        return self.predict([image])[0]

    def stream(self, source: Any, *, batch_size: int = 1, prefetch: int = 4,
               on_skip: Optional[Callable[["Item", Exception], None]] = None,
               track: bool = False, smooth: str = "off", track_params: Optional[dict[str, Any]] = None,
               smooth_params: Optional[dict[str, Any]] = None,
               ) -> Iterator[tuple["Item", np.ndarray, "Result"]]:
        """Results for many images or video frames, as they come: `(item, image_rgb, result)` each.

        source: a video file path, a camera index or a `sources.Video`; a folder, a glob pattern or
            an image path; or an iterable of images (paths, PIL images, RGB uint8 arrays). See
            `sources.open_source`.
        batch_size: images per network pass (several are faster on a GPU).
        prefetch: images decoded ahead by a background thread while the network runs.
        on_skip(item, error): called for each image that cannot be used (a file that does not decode,
            an array that is not RGB uint8, an empty or too thin image), which is then skipped; by
            default a warning is logged. Raise from it to stop instead.
        item: a `sources.Item` (file name; for a video, frame number and time). image_rgb:
        uint8[H, W, 3]. Nothing is kept from one batch to the next, so memory stays flat over a long
        video. Close the generator (or leave it by an exception) to stop the reading thread early.
        track: give every body, hand and face a person id (`track`), see motion/tracking.py
            (`track_params`: `TrackerParams` fields). smooth: "off", "online" or "offline" (which
            implies track), see motion/smoothing.py (`smooth_params`: the smoother's keywords).
        """
        if track or smooth != "off":
            yield from _over_time(self.stream(source, batch_size=batch_size, prefetch=prefetch, on_skip=on_skip),
                                  smooth, track_params or {}, smooth_params or {})
            return
        from dope.inputs.sources import ImageError, SourceError, Video, open_source
        from dope.inputs.sources import prefetch as read_ahead
        if batch_size < 1:
            raise DopeError(f"batch_size must be at least 1, got {batch_size}")
        try:
            items = open_source(source)
        except SourceError as e:
            raise DopeError(str(e)) from None
        # arrays of the caller's are in self.channels; what is read from files and cameras is RGB
        given = "rgb" if isinstance(source, (str, os.PathLike, int, Video)) else self.channels
        reader = read_ahead(items, size=max(prefetch, batch_size))
        try:
            batch: list[tuple[Any, Any]] = []
            for item, pixels in reader:
                if not isinstance(pixels, Exception):
                    try:
                        pixels = _as_array(pixels, given)[0]
                        self.check_size(*pixels.shape[:2])
                    except DopeError as e:
                        pixels = ImageError(f"{item.name}: {e}" if item.name else str(e))
                if isinstance(pixels, Exception):
                    yield from self._stream_batch(batch)  # the images before it first, so that order is kept
                    batch = []
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
        arrays = [pixels for _, pixels in batch]  # RGB (see stream)
        for (item, _), array, result in zip(batch, arrays, self._results([(a, None) for a in arrays])):
            result.image = item.name if item.frame is None else None
            yield Frame(item, array if self.channels == "rgb" else array[:, :, ::-1], result)


def _leaves(tree: Any) -> Iterator[np.ndarray]:
    if isinstance(tree, dict):
        for v in tree.values():
            yield from _leaves(v)
    else:
        yield tree


def _over_time(frames: Iterator[Frame], smooth: str, track_params: dict[str, Any],
               smooth_params: dict[str, Any]) -> Iterator[Frame]:
    """DOPE.stream's frames tracked, then smoothed (the stages of motion/)."""
    from dope.motion.smoothing import smooth as smoothing
    from dope.motion.tracking import track
    inner = frames
    try:
        yield from smoothing(track(inner, **track_params), smooth, **smooth_params)
    finally:
        inner.close()  # stops the reading thread when the caller stops early


def _to_numpy(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: _to_numpy(v) for k, v in tree.items()}
    return tree.float().cpu().numpy()


def _as_array(image: Any, channels: str = "rgb") -> tuple[np.ndarray, Optional[str]]:
    """(RGB uint8 array, name) for a path, a PIL image or an array in the order `channels` (a BGR
    array comes back as an RGB view); DopeError for anything else."""
    from dope.inputs.sources import ImageError, read_images
    ((item, pixels),) = read_images([image])
    if isinstance(pixels, ImageError):
        raise DopeError(str(pixels))
    if not isinstance(pixels, np.ndarray):
        raise DopeError(f"cannot use a {type(image).__name__} as an image; give a path, a PIL image or an array")
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise DopeError(f"image arrays must be {channels.upper()} uint8 (H, W, 3), got {pixels.dtype} {pixels.shape}")
    if channels == "bgr" and isinstance(image, np.ndarray):
        pixels = pixels[:, :, ::-1]
    return pixels, item.name
