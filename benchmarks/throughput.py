"""`python bench.py --ray`: images per second in one process against Ray with 1 and 2 workers on
this machine, and an on-paper estimate for N GPU workers from the model's FLOPs.

Throughput is counted in the steady state: from the first result to the last, so that the
start-up costs (imports, model loading; for Ray, starting the cluster and its workers) are
reported apart. All runs read the same image files from a temporary folder.
"""
from __future__ import annotations

import logging
import os
import tempfile
import time
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from dope.cluster.images import ray_frames
from dope.cluster.session import RayJob, connected

log = logging.getLogger("bench")


def _steady(frames: Iterable[Any], started: float) -> dict[str, float]:
    """(start-up seconds, images/s after the first) of a stream of frames."""
    first = last = None
    count = 0
    for _ in frames:
        last = time.perf_counter()
        first = first or last
        count += 1
    return dict(startup_s=first - started, images_per_s=(count - 1) / (last - first) if count > 1 else float("nan"),
                images=count)


def measure(checkpoint: str, images: Sequence[np.ndarray], *, max_proposals: Optional[int] = None,
            threads: Optional[int] = None, configs: Sequence[tuple[int, Optional[int]]] = ((1, None), (2, 1)),
            ) -> list[dict[str, Any]]:
    """Rows of {mode, workers, threads, startup_s, images_per_s}: one process, then Ray with each
    (workers, threads per worker) of `configs` (None threads: as many as one process uses)."""
    import torch
    from PIL import Image
    from dope.detector import DOPE
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for i, image in enumerate(images):
            paths.append(os.path.join(folder, f"{i:04d}.png"))
            Image.fromarray(image).save(paths[-1])
        options = dict(max_proposals=max_proposals, device="cpu")
        t = time.perf_counter()
        det = DOPE(checkpoint, threads=threads, download=False, progress=False, **options)
        rows = [dict(mode="one process", workers=1, threads=torch.get_num_threads(),
                     **_steady(det.stream(paths), t))]
        del det
        with connected(RayJob(workers=1)) as ray:
            for workers, per_worker in configs:
                job = RayJob(workers=workers, threads=per_worker or threads or torch.get_num_threads())
                t = time.perf_counter()
                rows.append(dict(mode="Ray", workers=workers, threads=job.threads,
                                 **_steady(ray_frames(paths, job, checkpoint, options, pixels=False), t)))
    return rows


def gpu_estimate(network_gflop: float, postprocess_s: float, workers: Sequence[int], tflops: float,
                 efficiency: float) -> list[tuple[int, float]]:
    """(workers, images/s) on paper: each worker passes an image through the network in
    network_gflop / (tflops x efficiency) seconds, then post-processes it on its CPU in
    postprocess_s (not overlapped); workers do not share GPUs or CPUs, and the driver (which only
    writes JSON lines, about a millisecond each) is not the limit."""
    per_image = network_gflop / (tflops * 1e3 * efficiency) + postprocess_s
    return [(n, n / per_image) for n in workers]


def print_rows(rows: Sequence[dict[str, Any]]) -> None:
    base = rows[0]["images_per_s"]
    print(f"{'run':<14} {'workers':>7} {'threads':>7} {'start-up s':>10} {'images/s':>9} {'vs one process':>14}")
    for r in rows:
        print(f"{r['mode']:<14} {r['workers']:>7} {r['threads']:>7} {r['startup_s']:>10.1f} "
              f"{r['images_per_s']:>9.2f} {r['images_per_s'] / base:>13.2f}x")
