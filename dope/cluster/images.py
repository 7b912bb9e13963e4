"""Images on Ray: Ray Data over the input list, `map_batches` with a model per worker, frames back
in input order.

Workers read the images and run the network and the post-processing (the same `DOPE.predict` as
in one process); they send back each image's `Result` (pickled) or its read error. The driver
turns them into `stream.Frame`s in input order, re-reading an image's pixels only when a writer
draws, so that every writer of a single-process run works unchanged and writes the same files.
A worker that dies is restarted and its batch done again (actor restarts and task retries); each
record is sent once, when its batch has finished.
"""
from __future__ import annotations

import logging
import math
import os
import pickle
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np

import dope.testpoints as testpoints
from dope.startup import allow_winograd
from dope.cluster.session import RayJob, connected, default_threads, failure, gpus_per_worker
from dope.inputs.sources import ImageError, Item, load_image, read_images
from dope.stream import Frame

log = logging.getLogger("dope")

MAX_BLOCKS = 10_000  # Ray Data blocks for the input list: one batch each, up to this many


class Predictor:
    """Ray Data's callable class: loads the model once per worker, then maps batches of
    `{"index": int64[B], "path": str[B]}` to `{"index", "error" (str, "" when read), "result"
    (a pickled Result, b"" on error)}`."""

    def __init__(self, model: str, options: dict[str, Any], batch_size: int, threads: int, cwd: str) -> None:
        import torch
        from dope.detector import DOPE
        if os.path.isdir(cwd):
            os.chdir(cwd)  # relative input paths read as on the driver (shared storage)
        allow_winograd()  # the job's own process: as the command's (startup.py)
        torch.set_num_threads(threads)
        self.detector = DOPE(model, progress=False, **options)
        self.batch_size = batch_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        paths = [str(p) for p in batch["path"]]
        errors = [""] * len(paths)
        results = [b""] * len(paths)
        read = []
        for i, (_, pixels) in enumerate(read_images(paths)):
            if isinstance(pixels, Exception):
                errors[i] = str(pixels)
            else:
                read.append((i, pixels))
        for start in range(0, len(read), self.batch_size):  # network passes as in one process
            chunk = read[start:start + self.batch_size]
            for (i, _), result in zip(chunk, self.detector.predict([pixels for _, pixels in chunk])):
                result.image = paths[i]
                results[i] = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        testpoints.passed("batch")
        return {"index": batch["index"], "error": np.array(errors, dtype=object),
                "result": np.array(results, dtype=object)}


def ray_frames(paths: Sequence[str], job: RayJob, model: str, options: dict[str, Any], *, batch_size: int = 1,
               pixels: bool = True, on_skip: Optional[Callable[[Item, Exception], None]] = None) -> Iterator[Frame]:
    """`stream.Frame`s for image files, computed on Ray, in the order of `paths`.

    model: a checkpoint path (readable by every worker); options: DOPE's keyword arguments
    (device, precision, postprocess, min_score, max_proposals). pixels: re-read each image for the
    frame (for writers that draw), else the frames' image is None. on_skip(item, error) is called
    for an image that cannot be read (default: a warning), as by `DOPE.stream`. Closing the
    generator stops the job (and the local cluster started for it).
    """
    if not paths:
        return
    with connected(job) as ray:
        gpus = gpus_per_worker(ray, job)
        options = dict(options, device=options.get("device") or ("cuda" if gpus else "cpu"))
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # rows come back in input order
        ctx.enable_progress_bars = job.verbose
        ctx.print_on_execution_start = job.verbose
        blocks = min(len(paths), MAX_BLOCKS, max(1, math.ceil(len(paths) / batch_size)))
        rows = [{"index": i, "path": os.fspath(p)} for i, p in enumerate(paths)]
        ds = ray.data.from_items(rows, override_num_blocks=blocks).map_batches(
            Predictor, batch_size=math.ceil(len(paths) / blocks), batch_format="numpy",
            fn_constructor_kwargs=dict(model=os.path.abspath(model), options=options, batch_size=batch_size,
                                       threads=default_threads(job), cwd=os.getcwd()),
            compute=ray.data.ActorPoolStrategy(size=job.workers), num_gpus=gpus or None, num_cpus=None if gpus else 1)
        # Ray Data's actors restart when they die (max_restarts=-1) and redo their batch
        # (max_task_retries=-1) by default: tests/test_cluster.py kills one to check.
        log.info("Ray: %d workers (%s), %d images", job.workers, f"{gpus:g} GPU each" if gpus else "CPU", len(paths))
        try:
            for row in ds.iter_rows():
                index = int(row["index"])
                item = Item(index, os.fspath(paths[index]))
                if row["error"]:
                    error = ImageError(str(row["error"]))
                    if on_skip is None:
                        log.warning("skipped: %s", error)
                    else:
                        on_skip(item, error)
                    continue
                result = pickle.loads(row["result"])
                image = _pixels(item.name) if pixels else None
                yield Frame(item, image, result)
        except ray.exceptions.RayError as e:
            raise failure(e) from None


def _pixels(path: str) -> Optional[np.ndarray]:
    try:
        return load_image(path)
    except ImageError as e:  # read by the worker, gone since
        log.warning("cannot read %s again for its drawing: %s", path, e)
        return None
