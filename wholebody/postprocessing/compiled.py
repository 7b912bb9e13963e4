"""PPI's candidates and box groups, mode search and mode means in C (modes.c), compiled on first
use and cached.

    kernels()  the compiled functions (a `Kernels`), or None where they cannot be had

The first process that needs it compiles modes.c with the system's C compiler ($CC, else cc, gcc
or clang; 0.5-1.5 s with the check, once), checks it against proposals.py's numpy code on a small set, and keeps
it as `cache_dir()/kernels/modes-<key>.so`; later processes load that file (about 1 ms). The key
hashes the source, the compiler flags and the CPU (its architecture and instruction-set flags), so a
cache shared by different machines holds one build per kind of CPU and none is loaded on a CPU it was
not built for. Where no compiler works, the build fails or the check disagrees, this returns None
(logged once) and ppi uses its numpy code, which gives the same decisions and the same detections up
to float rounding in the means. DOPE_COMPILED=0 turns the compiled code off.
Nothing here is imported or built before a PPI runs.
"""
from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import threading
from typing import Callable, Optional

import numpy as np

from wholebody.files import cache_dir, staging_path

log = logging.getLogger("dope")

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "modes.c")
# IEEE float32 arithmetic as numpy does it: no fused multiply-adds, no fast-math reordering
STRICT = ["-O3", "-ffp-contract=off", "-fno-math-errno", "-fPIC", "-shared"]
FLAG_SETS = (["-march=native"] + STRICT, STRICT)  # the CPU's vector instructions, else the baseline
COMPILE_TIMEOUT_S = 120
ENV_SWITCH = "DOPE_COMPILED"

_lock = threading.Lock()
_loaded: dict[str, Optional["Kernels"]] = {}


class Kernels:
    """modes.c's functions through ctypes (which releases the GIL while they run)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lib = ctypes.CDLL(path)
        p, i64 = ctypes.c_void_p, ctypes.c_int64
        self._modes = self._lib.ppi_best_modes
        self._modes.argtypes = [p, p, p, p, p, ctypes.c_int, p, i64, ctypes.c_int, ctypes.c_float, ctypes.c_float,
                                p, p, p, p]
        self._modes.restype = ctypes.c_int
        self._people = self._lib.ppi_box_people
        self._people.argtypes = [p, i64, i64, ctypes.c_double, ctypes.c_int, p, ctypes.c_double, ctypes.c_int, p, p, p, p]
        self._people.restype = i64

    def best_modes(self, pose3d: np.ndarray, pose2d: np.ndarray, flat: np.ndarray, s: np.ndarray,
                   legs: Optional[np.ndarray], leg_joints: int, starts: np.ndarray, th: float,
                   min_mode_score: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every group's (top candidate (G,), score (G,), mean 2D pose (G, J, 2), mean 3D pose (G, J, 3)).

        pose3d (rows, J, 3) and pose2d (rows, J, 2) float32, C-contiguous; flat (C,) each candidate's
        row, sorted by group; s (C,) float32 scores; legs (C,) float32 leg weights of the first
        leg_joints joints, or None; starts (G,) where each group begins."""
        j = pose3d.shape[1]
        g = len(starts)
        bounds = np.append(starts, len(flat)).astype(np.int64)
        flat = np.ascontiguousarray(flat, dtype=np.int64)
        top = np.empty(g, np.int64)
        best = np.empty(g, np.float64)
        mean2d = np.empty((g, j, 2), np.float32)
        mean3d = np.empty((g, j, 3), np.float32)
        if self._modes(_ptr(pose3d), _ptr(pose2d), _ptr(flat), _ptr(s), _ptr(legs), leg_joints, _ptr(bounds), g, j,
                       th, min_mode_score, _ptr(top), _ptr(best), _ptr(mean2d), _ptr(mean3d)) != 0:
            raise MemoryError("ppi_best_modes: out of memory")
        return top, best, mean2d, mean3d

    def box_people(self, scores: np.ndarray, boxes: np.ndarray, score_th: float, th_iou: float
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """PPI's candidates grouped into people by proposal-box IoU: (flat (C,) each candidate's
        row n * A + a in the (N * A, ...) pose arrays, s (C,) its score, starts (G,) where each
        group begins), the candidates by group. scores (N, A + 1) and boxes (N, 4) float32;
        the thresholds are compared as numpy compares them with float32 arrays."""
        scores, boxes = np.ascontiguousarray(scores), np.ascontiguousarray(boxes)
        n, a = scores.shape[0], scores.shape[1] - 1
        flat = np.empty(n * a, np.int64)
        s = np.empty(n * a, np.float32)
        starts = np.empty(n + 1, np.int64)
        groups = ctypes.c_int64(0)
        th32 = np.result_type(scores.dtype, score_th) == np.float32
        iou32 = np.result_type(np.float32, th_iou) == np.float32
        total = self._people(_ptr(scores), n, a, float(score_th), int(th32), _ptr(boxes), float(th_iou), int(iou32),
                             _ptr(flat), _ptr(s), _ptr(starts), ctypes.byref(groups))
        if total < 0:
            raise MemoryError("ppi_box_people: out of memory")
        return flat[:total], s[:total], starts[:groups.value]


def _ptr(a: Optional[np.ndarray]) -> Optional[int]:
    return None if a is None else a.ctypes.data


def kernels(check: Callable[["Kernels"], Optional[str]]) -> Optional["Kernels"]:
    """The compiled functions, built or loaded once per process; None where they cannot be had
    (no C compiler, a failed build or check, DOPE_COMPILED=0). check(kernels): None if a fresh
    build decides as the numpy code does, else what differs (the build is then not used)."""
    if os.environ.get(ENV_SWITCH, "1").strip().lower() in ("0", "no", "off", "false"):
        return None
    folder = os.path.join(cache_dir(), "kernels")
    if folder in _loaded:
        return _loaded[folder]
    with _lock:
        if folder not in _loaded:
            _loaded[folder] = _build_or_load(folder, check)
        return _loaded[folder]


def cpu_signature() -> str:
    """The machine's architecture and instruction-set flags (Linux: /proc/cpuinfo's first 'flags'
    or 'Features' line), which a build with -march=native depends on."""
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    flags = line.split(":", 1)[1].strip()
                    break
    except OSError:
        flags = platform.processor()
    return f"{platform.system()} {platform.machine()} {flags}"


def build_key(source: bytes, flags: list[str], cpu: str) -> str:
    """The cache key of one build: the source, the flags and the CPU (`cpu_signature`)."""
    h = hashlib.sha256(source)
    h.update(repr(flags).encode())
    h.update(cpu.encode())
    return h.hexdigest()[:20]


def compiler() -> Optional[str]:
    """$CC, else the first of cc, gcc, clang on the PATH; None if none is."""
    for name in ([os.environ["CC"]] if os.environ.get("CC") else ["cc", "gcc", "clang"]):
        path = shutil.which(name)
        if path:
            return path
    return None


def _build_or_load(folder: str, check: Callable[[Kernels], Optional[str]]) -> Optional[Kernels]:
    try:
        with open(SOURCE, "rb") as f:
            source = f.read()
    except OSError as e:
        log.info("ppi: numpy code (compiled mode search unavailable: %s)", e)
        return None
    reasons, cpu, cc = [], cpu_signature(), compiler()
    for flags in FLAG_SETS:
        path = os.path.join(folder, f"modes-{build_key(source, flags, cpu)}.so")
        failed = path + ".failed"
        if os.path.isfile(path):
            try:
                return Kernels(path)
            except OSError as e:  # damaged: built again below
                reasons.append(f"{path}: {e}")
        if os.path.exists(failed):  # this build failed on this machine before: not tried again
            reasons.append(f"{flags[0]}: failed before ({failed})")
            continue
        if cc is None:  # not marked as failed: a compiler installed later is used
            reasons.append("no C compiler (cc, gcc, clang; or set CC)")
            break
        problem = _build(cc, path, flags, check)
        if problem is None:
            return Kernels(path)
        reasons.append(problem)
        _mark_failed(failed, problem)
    log.info("ppi: numpy code (compiled mode search unavailable: %s)", "; ".join(reasons))
    return None


def _build(cc: str, path: str, flags: list[str], check: Callable[[Kernels], Optional[str]]) -> Optional[str]:
    """Compile modes.c with `cc` to `path` (staged, checked, then renamed into place); None, or
    what went wrong."""
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        return f"cannot make {folder}: {e}"
    if os.path.lexists(path) and not os.path.isfile(path):
        return f"{path} is in the way and is not a regular file"
    staged = staging_path(path, ".so")
    try:
        try:
            run = subprocess.run([cc, *flags, "-o", staged, SOURCE], capture_output=True, text=True,
                                 timeout=COMPILE_TIMEOUT_S)
        except (OSError, subprocess.SubprocessError) as e:
            return f"{cc} could not run: {e}"
        if run.returncode != 0:
            return f"{cc} {' '.join(flags)}: {(run.stderr.strip().splitlines() or ['failed'])[-1]}"
        try:
            problem = check(Kernels(staged))
        except OSError as e:
            problem = f"the build does not load: {e}"
        except Exception as e:  # noqa: BLE001  (any failure of the check means: not used)
            problem = f"the build's check failed: {e!r}"
        if problem:
            return problem
        os.replace(staged, path)
        return None
    finally:
        if os.path.lexists(staged):
            try:
                os.unlink(staged)
            except OSError:
                pass


def _mark_failed(path: str, problem: str) -> None:
    try:
        with open(path, "x") as f:
            f.write(problem + "\n")
    except OSError:
        pass


def clear_loaded() -> None:
    """Forget what this process loaded (tests: a new cache folder, or DOPE_COMPILED changed)."""
    with _lock:
        _loaded.clear()

