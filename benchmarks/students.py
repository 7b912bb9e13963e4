"""Students: how fast a lighter DOPE network runs on a CPU (`bench.py --students`), and whether
training recovers a teacher (`python -m benchmarks.students --recovery`).

Speed: frames per second of the whole detector (`DOPE(...)` on an RGB array: network and PPI) for
ResNet-50 (the published network), ResNet-34 and ResNet-18 students at several input sizes and
proposal counts, with MediaPipe Holistic (static images, model complexity 1) beside them where
installed. Weights are random (a student's speed does not depend on them; its accuracy can only be
known after training on real data).

Recovery (docs/training.md): a synthetic teacher T labels photos (`dope.py --json --max-people 4`);
S0 is T with its part predictors' linear layers drawn again; `train.py --init S0 --freeze features`
trains S; the median 2D error of the bodies of S's detections matched to the label bodies is
compared with S0's, detections made by `dope.py` exactly as a user runs it.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Optional, Sequence

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")  # scikit-image's sample photos (skimage.data)
SIZES = ((320, 512), (480, 800), (800, 1333))  # (min_size, max_size) of the network input
PROPOSALS = (1000, 100)


# ---------------------------------------------------------------------------------- photos


def write_photos(folder: str, names: Sequence[str] = PHOTOS) -> list[str]:
    """scikit-image's sample photos as JPEG files in `folder` (their names without folder)."""
    import skimage.data
    from PIL import Image
    out = []
    for name in names:
        path = os.path.join(folder, f"{name}.jpg")
        if not os.path.exists(path):
            pixels = getattr(skimage.data, name)()
            Image.fromarray(pixels).convert("RGB").save(path, quality=95)
        out.append(os.path.basename(path))
    return out


# ---------------------------------------------------------------------------------- recovery


def redraw_predictors(checkpoint: dict[str, Any], seed: int = 1) -> dict[str, Any]:
    """A copy of a checkpoint whose part predictors' linear layers are drawn again as torch's
    nn.Linear draws them (uniform within ±1/sqrt(fan_in)): the teacher's heads forgotten."""
    import torch
    g = torch.Generator().manual_seed(seed)
    state = dict(checkpoint["state_dict"])
    for k, v in state.items():
        if "dope_predictor" in k:
            bound = 1 / (v.shape[-1] if v.dim() == 2 else state[k.replace("bias", "weight")].shape[1]) ** 0.5
            state[k] = (torch.rand(v.shape, generator=g) * 2 - 1) * bound
    return {**checkpoint, "state_dict": state}


def _run(cmd: list[str], cwd: str, env: Optional[dict[str, str]] = None) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")


def detect(model: str, images: Sequence[str], out: str, cwd: str, max_people: Optional[int] = None) -> None:
    cmd = [sys.executable, os.path.join(ROOT, "dope.py"), "-q", "--json", out, "--image", *images, "--model", model]
    _run(cmd + (["--max-people", str(max_people)] if max_people else []), cwd)


def body_errors(labels: str, detections: str) -> list[float]:
    """Mean 2D joint errors (px) of the label bodies matched one to one to the detected bodies."""
    from dope.training.evaluation import compare
    from dope.training.labels import read_labels
    with open(detections, encoding="utf-8") as f:
        found = {os.path.basename(r["image"]): r for r in map(json.loads, filter(str.strip, f))}
    return compare((lab, found[os.path.basename(lab.path)]) for lab in read_labels(labels))["body"].error2d


def teacher(folder: str, seed: int = 0, min_size: Optional[int] = None, max_size: Optional[int] = None,
            photos: Sequence[str] = PHOTOS) -> tuple[list[str], str]:
    """T.pth, S0.pth and labels L.jsonl in `folder`: (photo names, labels path)."""
    import torch
    sys.path.insert(0, os.path.join(ROOT, "tests")) if os.path.join(ROOT, "tests") not in sys.path else None
    from make_synthetic_checkpoint import build_checkpoint
    kwargs = {k: v for k, v in (("min_size", min_size), ("max_size", max_size)) if v is not None}
    t = build_checkpoint(seed, dope_kwargs=kwargs)
    torch.save(t, os.path.join(folder, "T.pth"))
    torch.save(redraw_predictors(t, seed + 1), os.path.join(folder, "S0.pth"))
    images = write_photos(folder, photos)
    detect("T.pth", images, "L.jsonl", folder, max_people=4)
    return images, os.path.join(folder, "L.jsonl")


def train_student(folder: str, steps: int, nproc: int = 1, out: str = "S.pth", extra: Sequence[str] = ()) -> float:
    """train.py --labels L.jsonl --init S0.pth --freeze features in `folder` (torchrun with nproc > 1):
    its wall time in seconds."""
    args = ["--labels", "L.jsonl", "--init", "S0.pth", "--freeze", "features", "--steps", str(steps),
            "--out", out, "-q", *extra]
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
               os.path.join(ROOT, "train.py"), *args]
    else:
        cmd = [sys.executable, os.path.join(ROOT, "train.py"), *args]
    env = {**os.environ, "PYTHONPATH": ROOT}
    started = time.monotonic()
    _run(cmd, folder, env)
    return time.monotonic() - started


def recovery(folder: str, steps: int = 200, nproc: int = 1, min_size: Optional[int] = None,
             max_size: Optional[int] = None, photos: Sequence[str] = PHOTOS) -> dict[str, Any]:
    """The whole recovery check in `folder`: median body 2D errors of S0 and S against the labels."""
    images, labels = teacher(folder, min_size=min_size, max_size=max_size, photos=photos)
    detect("S0.pth", images, "S0.jsonl", folder)
    seconds = train_student(folder, steps, nproc)
    detect("S.pth", images, "S.jsonl", folder)
    e0 = body_errors(labels, os.path.join(folder, "S0.jsonl"))
    e1 = body_errors(labels, os.path.join(folder, "S.jsonl"))
    return {"steps": steps, "processes": nproc, "train_s": seconds, "bodies": len(e1),
            "s0_median_px": statistics.median(e0), "s_median_px": statistics.median(e1),
            "ratio": statistics.median(e1) / statistics.median(e0)}


# ---------------------------------------------------------------------------------- speed


def student_checkpoint(backbone: str, min_size: int, max_size: int, seed: int = 0) -> dict[str, Any]:
    """A random network of the official layout on `backbone` (what a trained student's file holds)."""
    import torch
    from dope.network.checkpoint import DEFAULT_DOPE_KWARGS, Checkpoint, merge_config
    from dope.network.dopenet import DOPENet
    from dope.training.student import checkpoint_dict
    torch.manual_seed(seed)
    config = merge_config(DEFAULT_DOPE_KWARGS, {"backbone": backbone, "min_size": min_size, "max_size": max_size})
    net = DOPENet(config)
    ppi = {"body": {"K": 10}, "hand": {"K": 5}, "face": {"K": 10}}
    return checkpoint_dict(net, Checkpoint(config, {}, False, ppi))


def time_detector(checkpoint: dict[str, Any], image: np.ndarray, proposals: int, runs: int) -> tuple[float, float]:
    """(frames per second, network milliseconds per frame) of DOPE(checkpoint) on one RGB image
    (medians of `runs` after a warm-up). The post-processing's share depends on how many people a
    network's weights see (random ones see many): the network's time is the part a backbone decides."""
    from dope.detector import DOPE
    det = DOPE(checkpoint, device="cpu", max_proposals=proposals, progress=False)
    det(image)
    times, network = [], []
    for _ in range(runs):
        before = det.timings["network"]
        t = time.perf_counter()
        det(image)
        times.append(time.perf_counter() - t)
        network.append(det.timings["network"] - before)
    return 1 / statistics.median(times), 1000 * statistics.median(network)


def time_holistic(image: np.ndarray, runs: int) -> Optional[float]:
    try:
        import mediapipe as mp
    except ImportError:
        return None
    with mp.solutions.holistic.Holistic(static_image_mode=True, model_complexity=1) as holistic:
        holistic.process(image)
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            holistic.process(image)
            times.append(time.perf_counter() - t)
    return 1 / statistics.median(times)


def bench_students(backbones: Sequence[str] = ("resnet50", "resnet34", "resnet18"), sizes=SIZES,
                   proposals: Sequence[int] = PROPOSALS, runs: int = 3, width: int = 1280, height: int = 720
                   ) -> list[dict[str, Any]]:
    """Rows of backbone, input size, proposals, frames per second on a width x height photo."""
    import skimage.data
    from PIL import Image
    image = np.asarray(Image.fromarray(skimage.data.astronaut()).resize((width, height)))
    rows = []
    for min_size, max_size in sizes:
        for backbone in backbones:
            ckpt = student_checkpoint(backbone, min_size, max_size)
            for n in proposals:
                fps, network_ms = time_detector(ckpt, image, n, runs)
                rows.append({"model": backbone, "input": f"{min_size}/{max_size}", "proposals": n, "fps": fps,
                             "network_ms": network_ms})
    fps = time_holistic(image, runs)
    if fps is not None:
        rows.append({"model": "MediaPipe Holistic", "input": "its own", "proposals": None, "fps": fps,
                     "network_ms": None})
    return rows


def report(rows: list[dict[str, Any]]) -> str:
    import torch
    lines = [f"frames/s on CPU ({torch.get_num_threads()} threads), one 1280x720 photo, network + PPI",
             f"{'model':<20} {'input min/max':>14} {'proposals':>10} {'frames/s':>9} {'network ms':>11}"]
    for r in rows:
        ms = "-" if r["network_ms"] is None else f"{r['network_ms']:.0f}"
        lines.append(f"{r['model']:<20} {r['input']:>14} {r['proposals'] or '-':>10} {r['fps']:9.2f} {ms:>11}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    import argparse
    import tempfile
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recovery", action="store_true", help="the recovery check instead of the speeds")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--nproc", type=int, nargs="+", default=[1], help="--recovery: processes (torchrun when > 1)")
    ap.add_argument("--min-size", type=int, help="--recovery: the teacher's input (default: the published 800)")
    ap.add_argument("--max-size", type=int)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--folder", help="--recovery: work (and leave the files) here, not in a temporary folder")
    a = ap.parse_args(argv)
    if not a.recovery:
        print(report(bench_students(runs=a.runs)))
        return 0
    with tempfile.TemporaryDirectory() as temporary:
        folder = a.folder or temporary
        os.makedirs(folder, exist_ok=True)
        for n in a.nproc:
            r = recovery(folder, a.steps, n, a.min_size, a.max_size)
            print(f"{n} process(es), {r['steps']} steps: train.py {r['train_s']:.0f} s; median body 2D error "
                  f"S0 {r['s0_median_px']:.1f} px, S {r['s_median_px']:.2f} px ({r['bodies']} bodies), "
                  f"ratio {r['ratio']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
