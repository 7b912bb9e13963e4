#!/usr/bin/env python3
"""Where DOPE's time goes: per-stage times, throughput, memory and FLOPs of one image size.

    python bench.py                           # synthetic checkpoint, synthetic 1280x720 image, CPU
    python bench.py --size 640x480 --runs 5 --threads 1 --max-proposals 300
    python bench.py --model models/DOPE_v1_0_0.pth.tgz --device cuda
    python bench.py --ppi                     # post-processing alone, on 1000-box proposal sets, and its
                                              # ratio to the plain PPI of tests/ppi_reference.py
    python bench.py --startup                 # whole processes: DOPE(checkpoint) against `import torch`, --help
    python bench.py --fast-paths              # the whole command without each fast path in turn: what each buys
    python bench.py --batch                   # frames/s on a short synthetic video, --batch-size 1 2 4 (CPU; --device cuda)
    python bench.py --network --ppi --startup --batch   # all of these in one run
    python bench.py --sweep-proposals 1000 500 300 200 100   # time and agreement vs proposals kept
    python bench.py --exports                 # camera-space placement and exports, 1000 frames x 5 people
    python bench.py --ray                     # images/s: one process vs Ray, 1 and 2 workers; N GPUs on paper
    python bench.py --tracking                # tracks and smoothing on synthetic scenes (no network)
    python bench.py --tracking --tracking-every 2 4   # what filling the frames left out costs
    python bench.py --students                # frames/s of ResNet-18/34 students beside ResNet-50 (and MediaPipe)
    python bench.py --crowd                   # JSON Lines and whole --from-json replays of a crowd (1,400
                                              # detections a frame): before/after, per frame

Without --model, a checkpoint of the official layout with pseudo-random weights
(tests/make_synthetic_checkpoint.py, seed 0, the default 800/1333 input size) is written once into
a cache folder ($DOPE_BENCH_CACHE, else ~/.cache/dope-bench). Random weights give the real network's
cost, not its detections: the post-processing sees far more, and more scattered, people than on a
photo. Timings are medians over --runs passes after one warm-up pass (the first pass of a process,
reported apart, is slower: memory allocation and oneDNN kernel selection).
"""
from __future__ import annotations

import argparse
import logging
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Optional, Sequence

import numpy as np

# dope.cli imports no torch at module level: the import timings below stay honest.
from dope.cli import positive_int

log = logging.getLogger("bench")

HERE = os.path.dirname(os.path.abspath(__file__))
SYNTHETIC_MAKER = os.path.join(HERE, "tests", "make_synthetic_checkpoint.py")
ANCHOR_POSES = {"body": 20, "hand": 10, "face": 10}
# Size range (pixels) of one person's part in the synthetic proposal sets.
PART_SIZES = {"body": (150.0, 450.0), "hand": (40.0, 120.0), "face": (50.0, 150.0)}
PPI_KWARGS = {"body": {"K": 10}, "hand": {"K": 5}, "face": {"K": 10}}  # as in the checkpoints
# Network stages, in order: (name, module path in DOPENet). Post-processing and drawing come after.
SMALL_INPUT = {"min_size": 320, "max_size": 512}  # --ray's quick runs: the tests' network input size
BATCH_PROPOSALS = 100  # --batch without --max-proposals: the RoI head's cost (1000: 3 s a frame) would hide batching
STAGES = (("preprocess", "transform"), ("backbone", "backbone"), ("rpn", "rpn"),
          ("roi_align", "roi_heads.box_roi_pool"), ("roi_head", "roi_heads.dope_head"),
          ("predictors", "roi_heads.dope_predictor"))


# ------------------------------------------------------------------------------------ inputs


def synthetic_proposals(part: str, num_boxes: int = 1000, num_people: int = 6, pose_noise: float = 0.05,
                        seed: int = 0, resolution: tuple[int, int] = (720, 1280)
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A proposal set like the network's for one part: (scores (N, A+1), boxes (N, 4),
    pose2d (N, A, J, 2) pixels, pose3d (N, A, J, 3)), float32.

    num_people people with random boxes in an image of `resolution` (H, W) and random 2D/3D poses;
    each proposal box is one person's box jittered by 10% of its size; each anchor pose of a
    proposal is that person's pose plus Gaussian noise: pose_noise per 3D coordinate (metres for
    bodies; 0.05 puts a proposal's anchor poses about 0.1 apart, well within PPI's 0.3, so each
    person has few modes; 0.15 scatters them into dozens) and pose_noise / 2 of the box size per 2D
    coordinate. Scores are a softmax of Gaussian logits (background included).
    """
    from dope.parts import PARTS
    rng = np.random.default_rng(seed)
    h, w = resolution
    a, j = ANCHOR_POSES[part], PARTS[part].num_joints
    lo, hi = PART_SIZES[part]
    size = rng.uniform(lo, min(hi, h, w), (num_people, 2))
    corner = rng.uniform(0, 1, (num_people, 2)) * (np.array([w, h]) - size)
    person_box = np.concatenate([corner, corner + size], 1)
    person2d = rng.uniform(0.1, 0.9, (num_people, j, 2))  # box-relative
    person3d = rng.normal(0, 0.3, (num_people, j, 3))
    who = rng.integers(0, num_people, num_boxes)
    boxes = person_box[who] + rng.normal(0, 0.1, (num_boxes, 4)) * np.tile(size[who], 2)
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
    rel = person2d[who][:, None] + rng.normal(0, pose_noise / 2, (num_boxes, a, j, 2))
    pose2d = person_box[who][:, None, None, :2] + rel * size[who][:, None, None]
    pose3d = person3d[who][:, None] + rng.normal(0, pose_noise, (num_boxes, a, j, 3))
    logits = rng.normal(0, 1.5, (num_boxes, a + 1))
    scores = np.exp(logits - logits.max(1, keepdims=True))
    scores /= scores.sum(1, keepdims=True)
    f = np.float32
    return scores.astype(f), boxes.astype(f), pose2d.astype(f), pose3d.astype(f)


def synthetic_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """uint8 (H, W, 3) RGB: smooth random colour blobs plus pixel noise (not a photo)."""
    import cv2
    rng = np.random.default_rng(seed)
    low = rng.uniform(0, 255, (max(2, height // 40), max(2, width // 40), 3)).astype(np.float32)
    img = cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC) + rng.normal(0, 12, (height, width, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def cache_dir() -> str:
    return os.environ.get("DOPE_BENCH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "dope-bench")


def synthetic_checkpoint(seed: int = 0, folder: Optional[str] = None, small: bool = False) -> str:
    """Path of a synthetic checkpoint (official layout, default input size; small: the tests'
    320/512 input size), written once."""
    import importlib.util
    import torch
    spec = importlib.util.spec_from_file_location("make_synthetic_checkpoint", SYNTHETIC_MAKER)
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    folder = folder or cache_dir()
    path = os.path.join(folder, f"synthetic_seed{seed}{'_small' if small else ''}.pth")
    if not os.path.isfile(path):
        os.makedirs(folder, exist_ok=True)
        log.info("writing a synthetic checkpoint to %s", path)
        fd, tmp = tempfile.mkstemp(suffix=".tmp", dir=folder)
        os.close(fd)
        try:
            torch.save(maker.build_checkpoint(seed, **({"dope_kwargs": SMALL_INPUT} if small else {})), tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return path


# ------------------------------------------------------------------------------------ timing


def median_time(fn: Callable[[], Any], runs: int) -> float:
    """Median wall time of fn() over `runs` calls (seconds)."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


class StageTimer:
    """Wall time of the network's stages through forward hooks on its sub-modules.

    sync() is called at both ends of every stage (torch.cuda.synchronize on a GPU) so that
    asynchronous kernels are charged to the stage that launched them. A module called by several
    threads at once (RoIAlign on CPU) counts from the first call's start to the last call's end.
    """

    def __init__(self, net: Any, sync: Callable[[], None]) -> None:
        self.sync = sync
        self.times: dict[str, float] = {}
        self._start: dict[str, float] = {}
        self._active: dict[str, int] = {}
        self._lock = threading.Lock()
        self._handles = []
        for name, path in STAGES:
            module = net.get_submodule(path)
            self._handles.append(module.register_forward_pre_hook(self._pre(name)))
            self._handles.append(module.register_forward_hook(self._post(name)))

    def _pre(self, name: str) -> Callable[..., None]:
        def hook(*_: Any) -> None:
            self.sync()
            with self._lock:
                if not self._active.get(name):
                    self._start[name] = time.perf_counter()
                self._active[name] = self._active.get(name, 0) + 1
        return hook

    def _post(self, name: str) -> Callable[..., None]:
        def hook(*_: Any) -> None:
            self.sync()
            with self._lock:
                self._active[name] -= 1
                if not self._active[name]:
                    self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - self._start[name]
        return hook

    def remove(self) -> None:
        for h in self._handles:
            h.remove()


def count_flops(run: Callable[[], Any]) -> tuple[int, dict[str, dict]]:
    """FLOPs of run() (a multiply-add counts two), in total and per module, as torch's FlopCounterMode
    counts them."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        run()
    return counter.get_total_flops(), counter.get_flop_counts()


def matmul_peak(device: str, dtype: Any, n: int, seconds: float = 1.0) -> float:
    """GFLOP/s of an n x n matrix product (best of repeats for about `seconds`)."""
    import torch
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    a @ b
    sync()
    best, spent = float("inf"), 0.0
    while spent < seconds:
        t = time.perf_counter()
        a @ b
        sync()
        dt = time.perf_counter() - t
        best, spent = min(best, dt), spent + dt
    return 2 * n ** 3 / best / 1e9


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# ------------------------------------------------------------------------------------ benchmarks


def bench_network(args: argparse.Namespace) -> dict[str, Any]:
    """Per-stage times, FLOPs, throughput and memory of the full pipeline on one synthetic image."""
    t0 = time.perf_counter()
    import torch
    import dope.network.dopenet  # noqa: F401  (torchvision: counted here, not in the model's load time)
    torch.set_float32_matmul_precision("high")  # as the command line runs (Winograd's 3x3 convolutions)
    from dope.detector import DOPE, postprocess_outputs
    from dope.drawing.draw2d import draw_result
    t_import = time.perf_counter() - t0

    checkpoint = args.model or synthetic_checkpoint()
    width, height = args.size
    image = synthetic_image(height, width)
    t = time.perf_counter()
    det = DOPE(checkpoint, device=args.device, precision=args.precision, max_proposals=args.max_proposals,
               threads=args.threads, channels_last=args.channels_last, download=False, progress=False)
    t_load = time.perf_counter() - t
    cuda = det.device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if cuda:
        torch.cuda.reset_peak_memory_stats()

    stages = StageTimer(det.net, sync)
    per_run: list[dict[str, float]] = []

    def one_pass() -> dict[str, float]:
        stages.times.clear()
        t = time.perf_counter()
        out = det.network([image])[0]  # includes uint8 -> float and the copy back to numpy
        sync()
        t_net = time.perf_counter() - t
        t = time.perf_counter()
        res = postprocess_outputs(out, height, width, det.postprocess, det.checkpoint.ppi_kwargs, det.min_score)
        t_post = time.perf_counter() - t
        t = time.perf_counter()
        draw_result(np.ascontiguousarray(image[:, :, ::-1]), res, channels="bgr")
        t_draw = time.perf_counter() - t
        times = dict(stages.times)
        times["decoding"] = t_net - sum(times.values())  # anchor-pose decoding, mapping back, to numpy
        times.update(postprocess=t_post, drawing=t_draw, network=t_net, total=t_net + t_post + t_draw,
                     people=float(len(res.body)))
        return times

    first = one_pass()
    for _ in range(args.runs):
        per_run.append(one_pass())
    stages.remove()
    med = {k: statistics.median(r[k] for r in per_run) for k in per_run[0]}

    x = torch.from_numpy(image.copy()).permute(2, 0, 1).to(det.device, det.dtype).div(255)
    flops, by_module = count_flops(lambda: det.net([x]))
    stage_flops = {name: sum(by_module.get(f"DOPENet.{path}", {}).values()) for name, path in STAGES}

    # Half-precision products are emulated, hundreds of times slower, on CPUs without native
    # support (AVX2 ones): a small matrix keeps that measurement short.
    sizes = {"fp32": 4096 if cuda else 2048, "bf16": 4096 if cuda else 512, "fp16": 4096 if cuda else 512}
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    peaks = {name: matmul_peak(str(det.device), dtypes[name], n, seconds=0.5) for name, n in sizes.items()}
    return dict(device=str(det.device), dtype=str(det.dtype).replace("torch.", ""), threads=torch.get_num_threads(),
                channels_last=det.channels_last, size=f"{width}x{height}", proposals=det.net.max_proposals,
                import_s=t_import, load_s=t_load, first=first, median=med, flops=flops, stage_flops=stage_flops,
                matmul_gflops=peaks, peak_rss_mb=peak_rss_mb(),
                cuda_max_allocated_mb=torch.cuda.max_memory_allocated() / 2 ** 20 if cuda else None)


def print_network(r: dict[str, Any]) -> None:
    med, first = r["median"], r["first"]
    print(f"device {r['device']} ({r['dtype']}, {r['threads']} threads, channels_last {r['channels_last']}), "
          f"image {r['size']}, {r['proposals']} proposals; imports {r['import_s']:.2f} s, model load {r['load_s']:.2f} s")
    print(f"{'stage':<12} {'median s':>9} {'first s':>8} {'GFLOP':>8} {'GFLOP/s':>8}")
    for name in [s for s, _ in STAGES] + ["decoding", "postprocess", "drawing"]:
        gf = r["stage_flops"].get(name, 0) / 1e9
        flops = f"{gf:8.1f} {gf / med[name]:8.1f}" if gf else ""
        print(f"{name:<12} {med[name]:9.3f} {first[name]:8.3f} {flops}".rstrip())
    gf = r["flops"] / 1e9
    print(f"{'network':<12} {med['network']:9.3f} {first['network']:8.3f} {gf:8.1f} {gf / med['network']:8.1f}")
    print(f"{'total':<12} {med['total']:9.3f} {first['total']:8.3f}   -> {1 / med['total']:.2f} images/s "
          f"({1 / med['network']:.2f} for the network alone); {int(med['people'])} bodies found")
    peaks = ", ".join(f"{k} {v:.1f}" for k, v in r["matmul_gflops"].items())
    dtype = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}[r["dtype"]]
    print(f"matrix-multiply peak (GFLOP/s): {peaks}; the network reaches "
          f"{100 * gf / med['network'] / r['matmul_gflops'][dtype]:.0f}% of the {dtype} peak")
    mem = f"peak RSS {r['peak_rss_mb']:.0f} MiB"
    if r["cuda_max_allocated_mb"] is not None:
        mem += f", CUDA max allocated {r['cuda_max_allocated_mb']:.0f} MiB"
    print(mem)


def agreement(reference: Any, other: Any, min_score: float, max_px: float, top: Optional[int] = None) -> float:
    """Fraction of the reference detections (a `PartArrays`) scoring at least min_score (or of the
    `top` best ones) that `other` has too: a detection whose 2D pose is within max_px (mean joint
    distance, pixels); each used once. Both are by decreasing score."""
    wanted = reference.pose2d[:top] if top else reference.pose2d[reference.scores >= min_score]
    if not len(wanted):
        return float("nan")
    free = np.ones(len(other), bool)
    found = 0
    for pose in wanted:
        dist = np.where(free, np.linalg.norm(other.pose2d - pose, axis=-1).mean(-1), np.inf)
        if len(dist) and dist.min() <= max_px:
            found += 1
            free[dist.argmin()] = False
    return found / len(wanted)


def bench_proposals(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Network + post-processing time and agreement with the first count, per count of proposals."""
    from dope.detector import DOPE, postprocess_outputs
    from dope.parts import PART_NAMES
    width, height = args.size
    image = synthetic_image(height, width)
    from dope.network.checkpoint import read_checkpoint
    checkpoint = read_checkpoint(args.model or synthetic_checkpoint())  # read once, built per count
    rows, reference = [], None
    for n in args.sweep_proposals:
        # The proposal count is part of the network's config: one network per count.
        det = DOPE(checkpoint, device=args.device, precision=args.precision, max_proposals=n,
                   threads=args.threads, channels_last=args.channels_last, download=False, progress=False)
        result = None

        def run() -> None:
            nonlocal result
            out = det.network([image])[0]
            result = postprocess_outputs(out, height, width, det.postprocess, det.checkpoint.ppi_kwargs,
                                         det.min_score)

        run()  # warm-up
        seconds = median_time(run, args.runs)
        reference = reference or result
        rows.append(dict(proposals=n, seconds=seconds, found={p: len(result[p]) for p in PART_NAMES},
                         agreement={p: agreement(reference[p], result[p], args.agree_score, args.agree_px)
                                    for p in PART_NAMES},
                         top={p: agreement(reference[p], result[p], 0.0, args.agree_px, args.agree_top)
                              for p in PART_NAMES}))
    return rows


def print_proposals(rows: Sequence[dict[str, Any]], args: argparse.Namespace) -> None:
    first = rows[0]
    print(f"network + post-processing, image {args.size[0]}x{args.size[1]}: time, and agreement with "
          f"{first['proposals']} proposals: share of its detections scoring >= {args.agree_score} / of its "
          f"{args.agree_top} best, found within {args.agree_px} px (detections found)")
    print(f"{'proposals':>9} {'seconds':>8} {'speed-up':>8}  " + "  ".join(f"{p:>21}" for p in first["found"]))
    for r in rows:
        cells = "  ".join(f"{100 * r['agreement'][p]:5.1f}% / {100 * r['top'][p]:5.1f}% ({r['found'][p]:>4})"
                          for p in r["found"])
        print(f"{r['proposals']:>9} {r['seconds']:8.2f} {first['seconds'] / r['seconds']:7.2f}x  {cells}")


def bench_ppi(args: argparse.Namespace) -> list[tuple[str, str, int, float, float, float]]:
    """Median times of postprocess.ppi and nms on synthetic 1000-box proposal sets, per part, and
    one run of the plain PPI of tests/ppi_reference.py (the published algorithm step by step,
    Python loops over people, modes and candidates), whose detections are checked to be the same."""
    from dope.postprocessing.proposals import nms, ppi
    sys.path.insert(0, os.path.join(HERE, "tests"))
    try:
        from ppi_reference import ppi_reference
    finally:
        sys.path.remove(os.path.join(HERE, "tests"))
    sets = [(f"noise {noise}", part, synthetic_proposals(part, num_boxes=args.boxes, num_people=args.people,
                                                      pose_noise=noise), PPI_KWARGS[part])
            for noise in args.pose_noise for part in ("body", "hand", "face")]
    if args.ppi_network:
        outputs, kwargs = network_proposals(args)
        sets += [("network", part, outputs[part], {**kwargs[part], "K": kwargs[part].get("K", PPI_KWARGS[part]["K"])})
                 for part in ("body", "hand", "face")]
    rows = []
    for setting, part, arrays, kw in sets:
        found = ppi(*arrays, (720, 1280), **kw)
        t_ppi = median_time(lambda: ppi(*arrays, (720, 1280), **kw), args.runs)
        t_nms = median_time(lambda: nms(*arrays, K=kw["K"]), args.runs)
        t = time.perf_counter()
        plain = ppi_reference(*arrays, **kw)
        t_ref = time.perf_counter() - t
        if len(plain) != len(found) or not np.allclose([d["score"] for d in plain], found.scores, atol=1e-5):
            raise RuntimeError(f"{part}, {setting}: ppi and the plain PPI disagree")
        rows.append((setting, part, len(found), t_ppi, t_nms, t_ref))
    return rows


def network_proposals(args: argparse.Namespace) -> tuple[dict[str, tuple[np.ndarray, ...]], dict[str, dict]]:
    """The network's own proposal sets for a 1280x720 synthetic image (--model, or the synthetic
    checkpoint, whose random weights give some 500 small groups per part): per part (scores, boxes,
    pose2d, pose3d), and the checkpoint's PPI settings per part."""
    from dope import DOPE
    det = DOPE(args.model or synthetic_checkpoint(), device="cpu", download=False, progress=False,
               max_proposals=args.max_proposals, threads=args.threads)
    out = det.network([synthetic_image(720, 1280)])[0]
    sets = {part: (out[part]["scores"], out["boxes"], out[part]["pose2d"], out[part]["pose3d"])
            for part in ("body", "hand", "face")}
    return sets, det.checkpoint.ppi_kwargs


def print_ppi(rows: Sequence[tuple[str, str, int, float, float, float]], boxes: int, people: int) -> None:
    print(f"post-processing of {boxes} proposal boxes around {people} people; network: the network's own "
          "proposals for a 1280x720 synthetic image (median; plain: tests/ppi_reference.py, one run):")
    print(f"{'poses':<12} {'part':<6} {'found':>6} {'ppi ms':>8} {'nms ms':>8} {'plain ms':>9} {'ratio':>7}")
    for setting, part, found, t_ppi, t_nms, t_ref in rows:
        # 4 significant digits: the compiled PPI takes a few hundredths of a ms on small sets
        print(f"{setting:<12} {part:<6} {found:>6} {1000 * t_ppi:8.4g} {1000 * t_nms:8.4g} {1000 * t_ref:9.1f} "
              f"{t_ref / t_ppi:6.1f}x")
    ratios = [r[5] / r[3] for r in rows]
    print(f"ppi against the plain PPI: median {statistics.median(ratios):.1f}x, lowest {min(ratios):.1f}x")


# ------------------------------------------------------------------------------------ whole processes


def process_times(command: Sequence[str], env: Optional[dict[str, str]] = None) -> tuple[float, float]:
    """(wall s, CPU s: user + system of the child) of one run of command, which must succeed."""
    import subprocess
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=HERE, env=env)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {proc.stderr.strip()[-500:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def bench_startup(args: argparse.Namespace) -> dict[str, tuple[float, float]]:
    """Medians (wall s, CPU s) of whole processes, run in turn (round-robin) `--startup-rounds`
    times: `import torch`; `import dope; dope.DOPE(checkpoint)`; `dope.py --help`."""
    checkpoint = args.model or synthetic_checkpoint()
    py = sys.executable
    commands = {
        "import torch": [py, "-c", "import torch"],
        "DOPE(checkpoint)": [py, "-c", f"import dope; dope.DOPE({checkpoint!r}, device='cpu', download=False, "
                                       "progress=False)"],
        "dope.py --help": [py, os.path.join(HERE, "dope.py"), "--help"],
    }
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES", "")}
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for name, command in commands.items():  # warm the file cache once, untimed
        process_times(command, env)
    for _ in range(args.startup_rounds):
        for name, command in commands.items():
            runs[name].append(process_times(command, env))
    return {name: (statistics.median(w for w, _ in r), statistics.median(c for _, c in r)) for name, r in runs.items()}


# --fast-paths: each fast path turned off in turn, by a patch applied before dope.py runs (this
# file's business, not the package's), to measure what it buys in the whole one-image command.
FAST_PATHS = {
    "all on": "",
    "Winograd 3x3 convolutions": "import dope.startup as s; s.allow_winograd = lambda: 'precision left alone'",
    "gathered RoIAlign": ("import dope.network.dopenet as d\n"
                          "d.roi_align_gathered = lambda f, b, o, s, r: d.roi_align(f, b, o, s, r, aligned=False)"),
    "the dynamo stand-in": ("import dope.startup as s, torchvision\n"
                                   "s.import_torchvision = lambda: 'plain import'"),
    "skipped teardown": "import dope.startup as s, sys; s.exit_fast = sys.exit",
}
RUN_PATCHED = """import runpy, sys
exec(sys.argv[1])
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def bench_fast_paths(args: argparse.Namespace) -> dict[str, list[float]]:
    """Wall seconds of `dope.py --model CHECKPOINT --image X -q` (default settings) with all fast
    paths, and with each off in turn, interleaved `--startup-rounds` times (the order reversed
    every other round)."""
    import cv2
    import subprocess
    checkpoint = os.path.abspath(args.model or synthetic_checkpoint())
    width, height = args.size
    times: dict[str, list[float]] = {name: [] for name in FAST_PATHS}
    with tempfile.TemporaryDirectory(prefix="dope-fast-paths-") as tmp:
        image = os.path.join(tmp, "photo.png")
        cv2.imwrite(image, synthetic_image(height, width)[:, :, ::-1])
        for r in range(args.startup_rounds):
            for name in (list(FAST_PATHS) if r % 2 == 0 else list(FAST_PATHS)[::-1]):
                command = [sys.executable, "-c", RUN_PATCHED, FAST_PATHS[name], os.path.join(HERE, "dope.py"),
                           "--model", checkpoint, "--image", image, "-q", "--output-dir", os.path.join(tmp, "out")]
                t = time.perf_counter()
                p = subprocess.run(command, capture_output=True, text=True)
                times[name].append(time.perf_counter() - t)
                if p.returncode != 0:
                    from dope.errors import DopeError
                    raise DopeError(f"{name}: the command failed: {p.stderr.strip().splitlines()[-1:]}")
    return times


def print_fast_paths(times: dict[str, list[float]], args: argparse.Namespace) -> None:
    width, height = args.size
    base = statistics.median(times["all on"])
    print(f"whole command, {width}x{height}, {args.startup_rounds} interleaved rounds (median wall s):")
    print(f"  {'':36s} {'median':>7s} {'min':>7s}  {'off / on':>9s}")
    for name, values in times.items():
        m = statistics.median(values)
        label = name if name == "all on" else f"without {name}"
        print(f"  {label:36s} {m:7.2f} {min(values):7.2f}  {m / base:9.3f}")


def bench_reference(args: argparse.Namespace) -> dict[str, Any]:
    """Whole commands on one image, interleaved `--startup-rounds` times: the published pipeline
    (`python REFERENCE/dope.py --model NAME --image X`, run from a temporary copy of its folder whose
    models/NAME.pth.tgz links to the checkpoint: nothing is written in REFERENCE) against this
    project's `python dope.py --model CHECKPOINT --image X` at default settings. Medians (wall s, CPU s)."""
    import shutil
    import cv2
    checkpoint = os.path.abspath(args.model or synthetic_checkpoint())
    if not os.path.isfile(os.path.join(args.reference, "dope.py")):
        from dope.errors import DopeError
        raise DopeError(f"--reference {args.reference!r}: no dope.py there; give the published code's folder")
    width, height = args.size
    py = sys.executable
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "" if args.device in (None, "cpu") else
           os.environ.get("CUDA_VISIBLE_DEVICES", "")}
    with tempfile.TemporaryDirectory(prefix="dope-reference-") as tmp:
        published = os.path.join(tmp, "published")
        shutil.copytree(args.reference, published, ignore=shutil.ignore_patterns("models", ".git", "*.jpg", "*.png"))
        os.makedirs(os.path.join(published, "models"))
        name = "DOPE_v1_0_0"
        os.symlink(checkpoint, os.path.join(published, "models", f"{name}.pth.tgz"))
        images = {}
        for who in ("published", "ours"):  # one copy of the image each: each writes its drawing beside it
            os.makedirs(os.path.join(tmp, who + "-image"))
            images[who] = os.path.join(tmp, who + "-image", "photo.jpg")
            cv2.imwrite(images[who], synthetic_image(height, width)[:, :, ::-1])
        commands = {
            "published": [py, os.path.join(published, "dope.py"), "--model", name, "--image", images["published"]],
            "this project": [py, os.path.join(HERE, "dope.py"), "--model", checkpoint, "--image", images["ours"],
                             "-q"],
        }
        runs: dict[str, list[tuple[float, float]]] = {k: [] for k in commands}
        for _ in range(args.startup_rounds):
            for who, command in commands.items():
                runs[who].append(process_times(command, env))
    return {who: (statistics.median(w for w, _ in r), statistics.median(c for _, c in r)) for who, r in runs.items()}


def print_reference(r: dict[str, tuple[float, float]], args: argparse.Namespace) -> None:
    width, height = args.size
    print(f"end to end, one {width}x{height} image at default settings, whole processes, median of "
          f"{args.startup_rounds} interleaved rounds")
    print(f"{'command':<14} {'wall s':>7} {'CPU s':>7}")
    for who, (wall, cpu) in r.items():
        print(f"{who:<14} {wall:7.2f} {cpu:7.2f}")
    print(f"speed-up over the published pipeline: {r['published'][0] / r['this project'][0]:.2f}x (wall)")


def print_startup(r: dict[str, tuple[float, float]], rounds: int) -> None:
    print(f"whole processes, {rounds} interleaved rounds (medians; CPU = user + system, steadier on a busy machine):")
    print(f"{'command':<18} {'wall s':>7} {'CPU s':>7} {'wall over torch':>16}")
    torch_wall = r["import torch"][0]
    for name, (wall, cpu) in r.items():
        over = f"{wall - torch_wall:+16.2f}" if name.startswith("DOPE") else ""
        print(f"{name:<18} {wall:7.2f} {cpu:7.2f} {over}")


def write_video(path: str, frames: int, width: int, height: int) -> None:
    """A short synthetic video (moving colour blobs), MJPG in AVI: what OpenCV writes everywhere."""
    import cv2
    out = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (width, height))
    if not out.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}")
    base = synthetic_image(height, width * 2)
    for i in range(frames):
        shift = (i * 8) % width
        out.write(np.ascontiguousarray(base[:, shift:shift + width, ::-1]))
    out.release()


def bench_batch(args: argparse.Namespace,
                batch_sizes: Sequence[int] = (1, 2, 4)) -> tuple[str, list[tuple[int, float, int]]]:
    """Frames per second of DOPE.stream on a short synthetic video, per batch size, on the CPU unless
    --device says otherwise (e.g. --device cuda --precision fp16 --model DOPErealtime_v1_0_0):
    (device and dtype, rows): a row (batch size, frames/s, frames) per batch size, each timed after
    one untimed pass (allocation, kernel choice)."""
    from dope.detector import DOPE
    width, height = (320, 240) if args.size == (1280, 720) else args.size
    det = DOPE(args.model or synthetic_checkpoint(small=True), device=args.device or "cpu", precision=args.precision,
               max_proposals=args.max_proposals or BATCH_PROPOSALS, threads=args.threads, download=False,
               progress=False)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        video = os.path.join(tmp, "clip.avi")
        write_video(video, args.images, width, height)
        for n in batch_sizes:
            for _ in range(2):  # the second pass is the one kept
                t = time.perf_counter()
                count = sum(1 for _ in det.stream(video, batch_size=n))
                seconds = time.perf_counter() - t
            rows.append((n, count / seconds, count))
    return f"{det.device} ({str(det.dtype).replace('torch.', '')})", rows


def print_batch(device: str, rows: Sequence[tuple[int, float, int]], args: argparse.Namespace) -> None:
    size = "320x240" if args.size == (1280, 720) else f"{args.size[0]}x{args.size[1]}"
    size += f", {args.model}" if args.model else ", the small synthetic checkpoint (320/512 input)"
    print(f"video of {rows[0][2]} frames, {size}, {device}, "
          f"{args.max_proposals or BATCH_PROPOSALS} proposals:")
    print(f"{'batch size':>10} {'frames/s':>9} {'vs 1':>6}")
    for n, fps, _ in rows:
        print(f"{n:>10} {fps:9.2f} {fps / rows[0][1]:5.2f}x")


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT, e.g. 1280x720, got {text!r}") from None
    if w < 32 or h < 32:
        raise argparse.ArgumentTypeError(f"size {text!r} is too small (at least 32x32)")
    return w, h


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench.py", description=__doc__.splitlines()[0])
    p.add_argument("--model", help="checkpoint path (default: a synthetic checkpoint in the cache folder)")
    p.add_argument("--size", type=parse_size, default=(1280, 720), metavar="WxH",
                   help="synthetic image size (default: 1280x720)")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "fp16", "bf16"))
    p.add_argument("--threads", type=positive_int, metavar="N", help="CPU threads (default: torch's choice, one per core)")
    p.add_argument("--channels-last", dest="channels_last", action="store_true", default=None,
                   help="force the channels-last memory layout (default: the DOPE class's choice)")
    p.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    p.add_argument("--max-proposals", type=positive_int, metavar="N", help="proposals kept after the RPN (default 1000)")
    p.add_argument("--runs", type=positive_int, default=3, help="timed passes after the warm-up (default: 3)")
    p.add_argument("--network", action="store_true",
                   help="the per-stage network times (what runs without any of --ppi, --startup, --batch)")
    p.add_argument("--ppi", action="store_true", help="time the post-processing alone on synthetic proposal sets, "
                                                      "against the plain PPI of tests/ppi_reference.py")
    p.add_argument("--startup", action="store_true",
                   help="whole processes, interleaved: DOPE(checkpoint) against `import torch`, and dope.py --help")
    p.add_argument("--startup-rounds", type=positive_int, default=5, help="--startup: rounds (default: 5)")
    p.add_argument("--reference", metavar="DIR",
                   help="the published DOPE code's folder: time its dope.py against ours on one image, whole "
                        "processes, interleaved (--startup-rounds rounds; the checkpoint is linked into a "
                        "temporary copy of DIR, nothing is written in DIR)")
    p.add_argument("--fast-paths", action="store_true",
                   help="the whole one-image command with every fast path, and without each in turn, interleaved "
                        "(--startup-rounds rounds): what each buys (docs/performance.md)")
    p.add_argument("--batch", action="store_true",
                   help="frames/s on a short synthetic video with batch sizes 1, 2 and 4, on CPU or --device (the small "
                        "synthetic model, 320x240 frames and 100 proposals unless --model, --size, --max-proposals; "
                        "--images frames)")
    p.add_argument("--boxes", type=positive_int, default=1000, help="--ppi: proposal boxes per set (default: 1000)")
    p.add_argument("--people", type=positive_int, help="--ppi: people per set (default: 6); --exports: people in "
                                                        "the clip (default: 5)")
    p.add_argument("--exports", action="store_true",
                   help="time the camera-space placement and every export format on a synthetic clip")
    p.add_argument("--frames", type=positive_int, default=1000, help="--exports: frames in the clip (default: 1000)")
    p.add_argument("--ppi-network", action="store_true",
                   help="--ppi: also time the network's own proposal sets of a 1280x720 synthetic image "
                        "(--model, or the synthetic checkpoint)")
    p.add_argument("--pose-noise", type=float, nargs="+", default=[0.05, 0.15], metavar="S",
                   help="--ppi: anchor-pose noise levels (default: 0.05 0.15), see synthetic_proposals")
    p.add_argument("--sweep-proposals", type=positive_int, nargs="+", metavar="N",
                   help="time the network and post-processing with each of these proposal counts, and compare "
                        "the detections with those of the first count")
    p.add_argument("--agree-score", type=float, default=1.0,
                   help="--sweep-proposals: compare detections scoring at least this (default: 1.0)")
    p.add_argument("--agree-top", type=positive_int, default=10,
                   help="--sweep-proposals: also compare the best this many detections (default: 10)")
    p.add_argument("--agree-px", type=float, default=5.0,
                   help="--sweep-proposals: same detection when the 2D poses are within this mean distance "
                        "(pixels, default: 5)")
    p.add_argument("--ray", action="store_true",
                   help="images/s in one process and on a local Ray cluster with 1 and 2 CPU workers (small "
                        "synthetic model and images unless --model), then an estimate for N GPU workers")
    p.add_argument("--images", type=positive_int, default=8,
                   help="--ray: images per run; --batch: frames in the video (default: 8)")
    p.add_argument("--gpu-tflops", type=float, default=400.0,
                   help="--ray: a GPU's dense fp16 peak, TFLOP/s, for the estimate (default: 400)")
    p.add_argument("--gpu-efficiency", type=float, default=0.3,
                   help="--ray: fraction of that peak the network reaches (default: 0.3)")
    p.add_argument("--gpu-post-s", type=float, default=0.06,
                   help="--ray: post-processing seconds per image on a worker's CPU (default: 0.06, PPI on a photo's "
                        "proposals, see docs/performance.md)")
    p.add_argument("--tracking", action="store_true",
                   help="tracking and smoothing on synthetic scenes: identity switches, MOTA, IDF1, error, jitter, "
                        "lag, time per frame; then per scene family, on tuning and on held-out scenes, on held-out "
                        "scenes of four other generators (benchmarks/foreign.py, third.py, fourth.py, fifth.py), and "
                        "crowd timings (benchmarks/tracking.py; about 30 minutes on 2 cores)")
    p.add_argument("--tracking-seeds", type=int, nargs="+", default=[0, 1, 2], metavar="SEED",
                   help="--tracking: scenes to average over (default: 0 1 2)")
    p.add_argument("--tracking-out", metavar="DIR",
                   help="--tracking: also write the last scene as DIR/raw.jsonl and DIR/truth.jsonl")
    p.add_argument("--tracking-every", type=positive_int, nargs="+", metavar="N",
                   help="--tracking: instead, keep every Nth frame of the scenes, fill the others as dope.py "
                        "--every N --fill-skipped does, and print the 2D/3D errors against running on every frame")
    p.add_argument("--tracking-held-out", type=int, nargs="+", metavar="SEED",
                   help="--tracking: held-out seeds of every scene family and of the other generators' kinds "
                        "(default: benchmarks/scenes.py's HELD_OUT_SEEDS, benchmarks/foreign.py's "
                        "FOREIGN_HELD_OUT_SEEDS); tuning seeds are TUNING_SEEDS")
    p.add_argument("--tracking-crowd", type=int, nargs="*", default=[200, 1500], metavar="N",
                   help="--tracking: time crowds of 200 people and of 1500 detections per frame (N <= 500: "
                        "people, above: detections per frame); none: no crowd timing")
    p.add_argument("--crowd", action="store_true",
                   help="JSON Lines reading and writing on a synthetic crowd clip, old code against today's, and "
                        "whole replays (dope.py --from-json) with and without tracking (benchmarks/crowd.py)")
    p.add_argument("--crowd-frames", type=positive_int, default=8, metavar="N", help="--crowd: frames (default: 8)")
    p.add_argument("--crowd-detections", type=positive_int, default=1400, metavar="N",
                   help="--crowd: detections per frame, about (default: 1400)")
    p.add_argument("--crowd-replays", type=positive_int, default=1, metavar="N",
                   help="--crowd: whole replays of each kind, interleaved, the least kept (default: 1; this "
                        "shared machine's figures vary by a third from run to run)")
    p.add_argument("--crowd-baseline", metavar="DIR",
                   help="--crowd: also replay with the dope.py of another checkout (e.g. the code before issue 33: "
                        "mkdir DIR; git archive 64d32ee | tar -x -C DIR), interleaved, for the ratio")
    p.add_argument("--students", action="store_true",
                   help="frames/s on CPU of ResNet-18/34 students beside ResNet-50 at several input sizes and "
                        "proposal counts, and MediaPipe Holistic where installed (benchmarks/students.py)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the results")
    return p


def bench_ray(args: argparse.Namespace) -> None:
    """--ray: measured CPU throughputs, then the on-paper GPU estimate (see benchmarks/throughput.py)."""
    import torch
    from benchmarks.throughput import gpu_estimate, measure, print_rows
    from dope.detector import DOPE
    width, height = (320, 240) if args.model is None and args.size == (1280, 720) else args.size
    images = [synthetic_image(height, width, seed=i) for i in range(args.images)]
    checkpoint = args.model or synthetic_checkpoint(small=True)
    print(f"{args.images} images of {width}x{height}, {args.max_proposals or 1000} proposals, CPU")
    print_rows(measure(checkpoint, images, max_proposals=args.max_proposals, threads=args.threads))
    # The estimate: FLOPs of the published setting (synthetic weights, 1280x720 unless --size).
    width, height = args.size
    det = DOPE(args.model or synthetic_checkpoint(), device="cpu", download=False, progress=False)
    x = torch.from_numpy(synthetic_image(height, width)).permute(2, 0, 1).float().div(255)
    gflop = count_flops(lambda: det.net([x]))[0] / 1e9
    print(f"\non paper, {width}x{height}, 1000 proposals: {gflop:.0f} GFLOP per image; GPUs of {args.gpu_tflops:g} "
          f"TFLOP/s at {args.gpu_efficiency:.0%}, post-processing {args.gpu_post_s:g} s per image on each worker's CPU")
    for n, rate in gpu_estimate(gflop, args.gpu_post_s, (1, 2, 4, 8, 16), args.gpu_tflops, args.gpu_efficiency):
        print(f"  {n:>2} GPU workers: {rate:6.1f} images/s")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    if args.exports:
        from benchmarks.exports import bench_exports, format_report
        print(format_report(bench_exports(args.frames, args.people or 5)))
        return 0
    if args.crowd:
        from benchmarks.crowd import report as crowd_report, run_benchmark as run_crowd_benchmark
        print(crowd_report(run_crowd_benchmark(args.crowd_frames, args.crowd_detections, runs=args.runs,
                                                replays=args.crowd_replays, baseline=args.crowd_baseline)))
        return 0
    if args.students:
        from benchmarks.students import bench_students, report as students_report
        print(students_report(bench_students(runs=args.runs)))
        return 0
    args.people = args.people or 6
    if args.ray:
        bench_ray(args)
        return 0
    if args.tracking and args.tracking_every:
        from benchmarks.tracking import interpolation_report, run_interpolation
        print(interpolation_report(run_interpolation(seeds=args.tracking_seeds, everys=args.tracking_every)))
        return 0
    if args.tracking:
        from benchmarks.scenes import HELD_OUT_SEEDS
        from benchmarks.tracking import crowd_report, families_report, report, run_benchmark, run_crowd, run_held_out
        print(report(run_benchmark(seeds=args.tracking_seeds, write=args.tracking_out)))
        print()
        from benchmarks.foreign import FOREIGN_HELD_OUT_SEEDS
        print(families_report(run_held_out(held_out_seeds=args.tracking_held_out or HELD_OUT_SEEDS,
                                           foreign_seeds=args.tracking_held_out or FOREIGN_HELD_OUT_SEEDS)))
        if args.tracking_crowd:
            print()
            print(crowd_report([run_crowd(n) if n <= 500 else run_crowd(None, detections_per_frame=n)
                                for n in args.tracking_crowd]))
            from benchmarks.crowd import replay_difference_report
            for n in args.tracking_crowd:
                if n > 500:  # the issue's own measure: whole processes, imports and all
                    print(replay_difference_report(n))
        return 0
    from dope.errors import DopeError
    try:
        if args.sweep_proposals:
            print_proposals(bench_proposals(args), args)
            return 0
        # --network, --ppi, --startup, --batch, --reference and --fast-paths combine, in this order; none: --network
        sections = [s for s in ("network", "ppi", "startup", "batch", "reference", "fast_paths") if getattr(args, s)] \
            or ["network"]
        for i, section in enumerate(sections):
            if i:
                print()
            if section == "network":
                print_network(bench_network(args))
            elif section == "reference":
                print_reference(bench_reference(args), args)
            elif section == "ppi":
                print_ppi(bench_ppi(args), args.boxes, args.people)
            elif section == "startup":
                print_startup(bench_startup(args), args.startup_rounds)
            elif section == "fast_paths":
                print_fast_paths(bench_fast_paths(args), args)
            else:
                print_batch(*bench_batch(args), args)
    except DopeError as e:
        print(f"bench.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
