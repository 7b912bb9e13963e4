"""The command line's start-up tricks (dope/startup.py), and the library's manners: `import
dope`, `DOPE(...)` and a pass leave the user's process as they found it.

The premise tests fail when torchvision changes under the trick: then it must be rethought (and
docs/performance.md's row with it)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT

DOPE = os.path.join(ROOT, "dope.py")


def run_python(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# ------------------------------------------------------------------ the premise of import_torchvision


def test_plain_torchvision_imports_dynamo_through_roi_align():
    # What the trick saves: if torchvision stops importing torch._dynamo, the trick has no purpose.
    out = run_python("""
        import sys, torchvision
        print("dynamo:", "torch._dynamo" in sys.modules)
        """)
    assert "dynamo: True" in out
    import importlib.util
    source = open(importlib.util.find_spec("torchvision.ops.roi_align").origin, encoding="utf-8").read()
    # the one name the stand-in provides, taken where the stand-in stands
    assert "from torch._dynamo.utils import is_compile_supported" in source


def test_import_torchvision_skips_dynamo_and_leaves_it_importable():
    out = run_python("""
        import sys
        from dope import startup
        print("how:", startup.import_torchvision())
        print("dynamo:", "torch._dynamo" in sys.modules, "utils:", "torch._dynamo.utils" in sys.modules)
        import torch, torchvision
        r = sys.modules["torchvision.ops.roi_align"]
        print("operators:", torchvision.ops.nms(torch.zeros(1, 4) + torch.tensor([0., 0., 2., 2.]), torch.ones(1), 0.5).tolist())
        import torch._dynamo.utils
        print("real:", torch._dynamo.utils.is_compile_supported("cpu"), r.is_compile_supported("cpu"))
        print("compile:", torch.compile(lambda x: x + 1, backend="eager")(torch.ones(2)).tolist())
        """)
    assert "how: torchvision without torch._dynamo" in out
    assert "dynamo: False utils: False" in out
    assert "operators: [0]" in out
    assert "real: True True" in out  # the stand-in gave way to the real module
    assert "compile: [2.0, 2.0]" in out


def test_import_torchvision_falls_back_on_the_plain_import():
    # a torchvision that takes more from dynamo than the stand-in has: imported plainly, and said
    out = run_python("""
        import contextlib, sys, types
        from dope import startup

        @contextlib.contextmanager
        def lacking():
            sys.modules[startup.DYNAMO_UTILS] = types.ModuleType(startup.DYNAMO_UTILS)  # no is_compile_supported
            try:
                yield
            finally:
                del sys.modules[startup.DYNAMO_UTILS]

        startup.dynamo_stand_in = lacking
        print("how:", startup.import_torchvision())
        import torchvision
        print("works:", torchvision.ops.roi_align.__name__, "torch._dynamo" in sys.modules)
        """)
    assert "how: plain import of torchvision (its stand-in failed)" in out
    assert "works: roi_align True" in out


def test_the_command_says_what_its_start_up_did(checkpoint_path, fixture_image, tmp_path):
    p = subprocess.run([sys.executable, DOPE, "--model", checkpoint_path, "--image", fixture_image, "--json",
                        str(tmp_path / "o.json"), "--no-overlay", "--max-proposals", "20", "-v"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "start-up: torchvision without torch._dynamo" in p.stderr
    assert "fast paths:" in p.stderr


# ------------------------------------------------------------------------------ the library's manners


GUEST = """
import gc, sys, types
import torch
def state():
    return (list(sys.meta_path), list(sys.path_hooks), torch.get_num_threads(), torch.is_grad_enabled(),
            torch.get_float32_matmul_precision(), torch.serialization.get_default_mmap_options(),
            torch.get_default_dtype(), torch.are_deterministic_algorithms_enabled(),
            bool((torch.tensor([1e-40]) * 1).item() != 0))  # no flush-denormal
torch.set_float32_matmul_precision("medium")  # a user's own settings, which must stay theirs
torch.set_num_threads(1)
before = state()
import dope
import numpy as np
det = dope.DOPE({checkpoint!r}, device="cpu", max_proposals=50)
det(np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8))
after = state()
print("same:", before == after)
if before != after:
    print(before, after)
fake = [n for n, m in sys.modules.items() if n.startswith("torchvision")
        and (not isinstance(m, types.ModuleType) or m.__spec__ is None or not getattr(m, "__file__", None))]
print("stand-ins:", fake)
print("dynamo:", "torch._dynamo" in sys.modules)  # the start's saving holds in the library too
"""


def test_the_library_leaves_the_process_as_it_found_it(checkpoint_path):
    out = run_python(GUEST.format(checkpoint=checkpoint_path))
    assert "same: True" in out, out
    assert "stand-ins: []" in out
    assert "dynamo: False" in out


def test_threads_change_only_when_asked(checkpoint_path):
    out = run_python(f"""
        import torch, dope
        torch.set_num_threads(1)
        dope.DOPE({checkpoint_path!r}, device="cpu", max_proposals=10)
        print("untouched:", torch.get_num_threads())
        dope.DOPE({checkpoint_path!r}, device="cpu", max_proposals=10, threads=2)
        print("asked:", torch.get_num_threads())
        """)
    assert "untouched: 1" in out and "asked: 2" in out


@pytest.mark.parametrize("package", ["dope"])
def test_no_file_of_the_package_starts_a_compiler_or_loads_a_library_it_built(package):
    root = os.path.join(ROOT, package)
    for folder, _, files in os.walk(root):
        for name in files:
            assert not name.endswith((".c", ".so", ".cpp")), name
            if name.endswith(".py"):
                text = open(os.path.join(folder, name), encoding="utf-8").read()
                for needle in ("ctypes", "CDLL", "subprocess.run([cc", "gcc", "clang"):
                    assert needle not in text, (name, needle)


# ------------------------------------------------------------------------------- quick_assignment


def test_quick_assignment_is_scipys_function_without_scipy_optimize():
    # The premise: scipy's linear_sum_assignment is its compiled module startup.LSAP's (in the
    # scipy installed here); if scipy moves or changes it, this fails and the fast path must be rethought.
    out = run_python("""
        import sys
        import numpy as np
        from dope.startup import quick_assignment
        solve = quick_assignment()
        print("loaded:", solve is not None)
        print("scipy modules:", sorted(m for m in sys.modules if m.startswith("scipy")))
        rng = np.random.default_rng(0)
        costs = [rng.normal(size=(int(rng.integers(1, 30)), int(rng.integers(1, 30)))) for _ in range(50)]
        mine = [[list(x) for x in solve(c)] for c in costs]
        from scipy.optimize import linear_sum_assignment
        print("same:", mine == [[list(x) for x in linear_sum_assignment(c)] for c in costs])
        """)
    assert "loaded: True" in out
    assert "scipy modules: []" in out  # nothing of scipy left in sys.modules, as found
    assert "same: True" in out


@pytest.mark.parametrize("prelude, said", [
    ("import scipy.optimize", None),  # imported already: nothing to save
    ("importlib.machinery.EXTENSION_SUFFIXES[:] = ['.moved']", "not found"),
    # (its first load fails: the plain import's own load of it must work)
    ("E = importlib.machinery.ExtensionFileLoader; first, create = [], E.create_module; "
     "E.create_module = lambda self, spec: create(self, spec) if first or not spec.name.endswith('_lsap') "
     "else (first.append(1), 1 / 0)", "did not load alone (division by zero)"),
])
def test_quick_assignment_falls_back_on_the_plain_import(prelude, said):
    out = run_python(f"""
        import importlib.machinery, logging, sys
        import numpy as np
        from dope.startup import quick_assignment
        from dope.motion.assignment import assign_pairs, use_loader
        logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, format="%(message)s")
        {prelude}
        use_loader(quick_assignment)  # as the command does
        print(sorted(assign_pairs(np.array([0, 0, 1]), np.array([0, 1, 0]), np.array([0.0, 1.0, 0.5]))))
        print("scipy.optimize:", "scipy.optimize" in sys.modules)
        """)
    assert "[(0, 1), (1, 0)]\nscipy.optimize: True" in out  # the plain import solved it
    if said:
        assert f"the tracker imports scipy.optimize" in out and said in out, out


def test_the_command_loads_the_assignment_alone(tmp_path):
    from benchmarks.crowd import make_crowd
    clip = tmp_path / "crowd.jsonl"
    make_crowd(str(clip), frames=3, detections=600)  # new detections every frame: tracks compete
    p = subprocess.run([sys.executable, DOPE, "--from-json", str(clip), "--json", str(tmp_path / "o.jsonl"), "-v"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "start-up: the tracker's linear_sum_assignment loaded from _lsap" in p.stderr


@pytest.mark.parametrize("jitter, loaded", [(None, True), (2.0, False)])
def test_a_crowd_replay_imports_no_scipy(tmp_path, jitter, loaded):
    # What 0.4-0.6 s of CPU (50-70 ms a frame of an 8-frame replay of 1,500 detections) went into
    # unseen once (docs/performance.md, crowds): a replay of a crowd, tracked and smoothed, imports
    # nothing of scipy; where tracks compete (new detections every frame) it loads the assignment's
    # compiled module alone, and where the crowd stays (moved 2 px a frame) not even that.
    from benchmarks.crowd import make_crowd
    clip = tmp_path / "crowd.jsonl"
    make_crowd(str(clip), frames=4, detections=1500, jitter=jitter)
    out = run_python(f"""
        import sys
        from dope.cli import main
        code = main(["--from-json", {str(clip)!r}, "--json", {str(tmp_path / "o.jsonl")!r}, "-q"])
        code += main(["--from-json", {str(clip)!r}, "--json", {str(tmp_path / "p.jsonl")!r}, "-q", "--smooth", "online"])
        print("code", code)
        print("scipy:", sorted(m for m in sys.modules if m.startswith("scipy")))
        print("numpy.ma:", "numpy.ma" in sys.modules)
        from dope.motion import assignment
        print("solver loaded:", assignment._solver is not None)
        """)
    assert "code 0" in out
    assert "scipy: []" in out, out
    assert f"solver loaded: {loaded}" in out
    # nor numpy.ma (13 ms), which np.unique and np.median import on first use (round 18)
    assert "numpy.ma: False" in out, out


# ------------------------------------------------------------------------------------- exit_fast


EXIT = """
import atexit, sys
import torch
from dope.startup import exit_fast
{prelude}
atexit.register(lambda: print("handler ran", flush=True))
print("buffered", end="")  # no newline, no flush: exit_fast must flush it
exit_fast(3)
"""


@pytest.mark.parametrize("prelude, how", [("", "fast"), ("del atexit._run_exitfuncs", "plain")])
def test_exit_fast_runs_the_handlers_flushes_and_keeps_the_code(prelude, how):
    # the premise: CPython's private atexit._run_exitfuncs (a Python without it gets the plain exit)
    import atexit
    assert callable(getattr(atexit, "_run_exitfuncs", None))
    p = subprocess.run([sys.executable, "-c", EXIT.format(prelude=prelude)], capture_output=True, text=True,
                       timeout=300, cwd=ROOT)
    assert p.returncode == 3, p.stderr
    assert p.stdout == "bufferedhandler ran\n", (how, p.stdout)


def test_one_detector_shared_by_two_threads_gives_the_sequential_results(checkpoint_path, fixture_image):
    import threading
    import numpy as np
    from PIL import Image
    from dope import DOPE
    det = DOPE(checkpoint_path, device="cpu", max_proposals=100)
    rgb = np.asarray(Image.open(fixture_image).convert("RGB"))
    images = [rgb, np.ascontiguousarray(rgb[::-1]), np.ascontiguousarray(rgb[:, ::-1]), rgb[:400, :500]]
    want = [det(im).to_dict() for im in images]
    got: dict[int, list] = {0: [], 1: []}
    errors = []

    def work(k: int) -> None:
        try:
            for _ in range(2):
                got[k].append([det(im).to_dict() for im in (images if k == 0 else images[::-1])])
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert not errors
    assert all(run == want for run in got[0]) and all(run == want[::-1] for run in got[1])
    assert det.timings["network"] > 0
