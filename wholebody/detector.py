"""The DOPE detector: a loaded model that turns images and video frames into `Result`s.

Layers (STYLE.md): network outputs (`DOPE.network`, arrays) -> post-processing
(`postprocess_outputs`) -> results per image (`DOPE.predict`, `DOPE.__call__`) -> a stream over a
source (`DOPE.stream`). The command line (cli.py) and dope.py sit on top of this module.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, Sequence, Union

import numpy as np

from wholebody.errors import DopeError
from wholebody.stream import Frame
# Where checkpoints come from and where they go live in inputs/weights.py, the one source of these names.
from wholebody.inputs.weights import (CHECKPOINT_SUFFIXES, KNOWN_MODELS, DownloadError, download_url,
                                      fetch_checkpoint, manual_instructions, models_dir)

if TYPE_CHECKING:
    import torch
    from wholebody.inputs.sources import Item
    from wholebody.results import Result

log = logging.getLogger("dope")

POSTPROCESSINGS = ("ppi", "nms")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DEFAULT_MIN_SCORE = 0.3


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
    from wholebody.postprocessing.proposals import nms, ppi
    from wholebody.postprocessing.assignment import assign
    from wholebody.results import Result
    from wholebody.parts import PART_NAMES
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
    download: fetch an official model that is not in the models folder yet (see inputs/weights.py).
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
        from wholebody.network.dopenet import PUBLISHED_MAX_PROPOSALS, CheckpointError, build_model, read_checkpoint
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
        self.net = net.to(self.device, self.dtype)  # fp32 on CPU: no copy, the weights stay memory-mapped
        self.net.channels_last = self.channels_last
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
        from wholebody.inputs.sources import SourceError, Video, open_source
        from wholebody.inputs.sources import prefetch as read_ahead
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
            yield Frame(item, array, result)


def _to_numpy(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: _to_numpy(v) for k, v in tree.items()}
    return tree.float().cpu().numpy()


def _as_array(image: Any) -> tuple[np.ndarray, Optional[str]]:
    """(RGB uint8 array, name) for a path, a PIL image or an array; DopeError for anything else."""
    from wholebody.inputs.sources import ImageError, read_images
    ((item, pixels),) = read_images([image])
    if isinstance(pixels, ImageError):
        raise DopeError(str(pixels))
    if not isinstance(pixels, np.ndarray):
        raise DopeError(f"cannot use a {type(image).__name__} as an image; give a path, a PIL image or an array")
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise DopeError(f"image arrays must be RGB uint8 (H, W, 3), got {pixels.dtype} {pixels.shape}")
    return pixels, item.name
