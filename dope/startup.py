"""What makes the start quick, and what the command line alone may do to its own process.

Each earns its place in the one-image command (docs/performance.md has the figures and the command
that measures them), is checked as it runs and falls back on the plain way with a line under
`-v`, and has a test that fails when the dependency it leans on changes (tests/test_startup.py):

- `import_torchvision` (the library too, when the network is first imported): torchvision 0.2x's
  `ops/roi_align.py` runs `from torch._dynamo.utils import is_compile_supported` when it is
  imported, and importing torch._dynamo (sympy, torch.fx's symbolic shapes, the compiler front
  end) costs about as much as torch itself, for a function only called under deterministic
  algorithms on a GPU. For the duration of that one `import torchvision` statement,
  `torch._dynamo.utils` is a stand-in module whose `is_compile_supported` imports the real one on
  its first call; it leaves `sys.modules` right after. What remains is what an ordinary import
  leaves, less torch._dynamo: real torchvision modules, no finder, nothing deferred;
  `torch.compile` and `torch.onnx` import dynamo as usual later.

The command line alone (never `import dope` or `DOPE(...)`):
- `allow_winograd`: torch's float32 matmul precision "high" (the library follows whatever the
  user set, "highest" by default; see network/winograd.py).
- `quick_assignment`: the tracker's `scipy.optimize.linear_sum_assignment` from scipy's compiled
  module of it alone, without importing `scipy.optimize` (0.4 s of CPU, 50 ms a frame of an
  8-frame replay of a crowd; see motion/assignment.py).
- `exit_fast`: skip the interpreter's teardown once every output is closed (see there).
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import types
from typing import Any, Callable, Iterator, NoReturn, Optional

log = logging.getLogger("dope")

# The one name torchvision's import takes from dynamo (torchvision/ops/roi_align.py, 0.18 to 0.29 at least).
DYNAMO_UTILS = "torch._dynamo.utils"


def _is_compile_supported(device_type: str) -> bool:
    """Stand-in for torch._dynamo.utils.is_compile_supported: the real one, imported on first call."""
    from torch._dynamo.utils import is_compile_supported
    return is_compile_supported(device_type)


@contextlib.contextmanager
def dynamo_stand_in() -> Iterator[None]:
    """Within it, `torch._dynamo.utils` is a stand-in holding is_compile_supported, unless dynamo is
    imported already; it leaves sys.modules after."""
    if "torch._dynamo" in sys.modules or DYNAMO_UTILS in sys.modules:
        yield
        return
    stand_in = types.ModuleType(DYNAMO_UTILS, "Stand-in while torchvision is imported (dope.startup).")
    stand_in.is_compile_supported = _is_compile_supported  # type: ignore[attr-defined]
    sys.modules[DYNAMO_UTILS] = stand_in
    try:
        yield
    finally:
        if sys.modules.get(DYNAMO_UTILS) is stand_in:
            del sys.modules[DYNAMO_UTILS]


def _forget_torchvision() -> None:
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]


_imported: list[str] = []  # what import_torchvision did, once per process


def import_torchvision() -> str:
    """Import torchvision without torch._dynamo; what was done, for `-v`'s list of fast paths.

    A torchvision that needs more of dynamo than the stand-in has is imported again, plainly: the
    saving is lost, nothing else.
    """
    if _imported:
        return _imported[0]
    _imported.append(_import_torchvision())
    return _imported[0]


def _import_torchvision() -> str:
    if "torchvision" in sys.modules:
        return "torchvision imported already: nothing to do"
    try:
        with dynamo_stand_in():
            import torchvision  # noqa: F401
    except ImportError as e:
        _forget_torchvision()
        log.debug("start-up: torchvision needs more of torch._dynamo than its stand-in has (%s); "
                  "imported plainly", e)
        import torchvision  # noqa: F401
        return "plain import of torchvision (its stand-in failed)"
    if "torch._dynamo" in sys.modules:
        return "torchvision imported torch._dynamo all the same"
    return "torchvision without torch._dynamo"


def allow_winograd() -> str:
    """torch's float32 matmul precision "high" for this process, which lets the CPU network run its
    3x3 convolutions as Winograd products (network/winograd.py); what was done, for `-v`."""
    import torch
    if torch.get_float32_matmul_precision() == "highest":
        torch.set_float32_matmul_precision("high")
    return f"float32 matmul precision {torch.get_float32_matmul_precision()!r}"


# scipy's compiled module that holds linear_sum_assignment (scipy/optimize/_lsap*.so in the scipy
# the tests run on, 1.17; a scipy that keeps it elsewhere, or wraps it in Python, gets the plain import)
LSAP = "scipy.optimize._lsap"


def quick_assignment() -> Optional[Callable[[Any], Any]]:
    """scipy.optimize.linear_sum_assignment without importing scipy.optimize: its compiled module
    (LSAP) loaded from its file alone, then left out of `sys.modules` as it was; None (then the
    plain import, and `-v` says why) where scipy.optimize is imported already (nothing to save),
    or the compiled module is not where LSAP says, or it does not solve a known problem."""
    import importlib.machinery
    import importlib.util
    if "scipy.optimize" in sys.modules:
        return None
    try:
        spec = importlib.util.find_spec("scipy")  # (finds the package without importing it)
        folder = os.path.join(list(spec.submodule_search_locations or [])[0], "optimize")  # type: ignore[union-attr]
        path = next(p for p in (os.path.join(folder, "_lsap" + s) for s in importlib.machinery.EXTENSION_SUFFIXES)
                    if os.path.isfile(p))
    except (ImportError, AttributeError, IndexError, StopIteration, ValueError):
        log.debug("start-up: scipy's %s not found; the tracker imports scipy.optimize", LSAP)
        return None
    had = sys.modules.get(LSAP)
    try:
        loader = importlib.machinery.ExtensionFileLoader(LSAP, path)
        module = importlib.util.module_from_spec(importlib.util.spec_from_loader(LSAP, loader))
        loader.exec_module(module)
        solve = module.linear_sum_assignment
        import numpy as np
        rows, cols = solve(np.array([[4.0, 1.0, 3.0], [2.0, 0.0, 5.0], [3.0, 2.0, 2.0]]))
        if list(rows) != [0, 1, 2] or list(cols) != [1, 0, 2]:
            raise ValueError(f"it gave {list(rows)}, {list(cols)} for a known problem")
    except Exception as e:  # (whatever a changed scipy does: the plain import still works)
        log.debug("start-up: scipy's %s did not load alone (%s); the tracker imports scipy.optimize", LSAP, e)
        return None
    finally:
        if had is None:
            sys.modules.pop(LSAP, None)
        else:
            sys.modules[LSAP] = had
    log.debug("start-up: the tracker's linear_sum_assignment loaded from %s alone, not all of scipy.optimize",
              os.path.basename(path))
    return solve


_IMPORTED_AT = time.perf_counter()


def process_age() -> float:
    """Seconds since this process started (Linux: /proc; elsewhere, since this module's import)."""
    try:
        with open("/proc/self/stat", "rb") as f:
            start_ticks = int(f.read().rsplit(b")", 1)[1].split()[19])
        with open("/proc/uptime", "rb") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _IMPORTED_AT


def exit_fast(code: int) -> NoReturn:
    """End the process with `code` (the command's last step), skipping Python's teardown when torch is loaded.

    With torch imported, the interpreter's finalisation (freeing every module and object, then the
    C++ libraries' static destructors) takes a good part of a second, after every output is
    already closed and renamed. What an ordinary exit does that matters still happens: the exit
    handlers (atexit: logging, Ray, temporary folders) run and the standard streams are flushed (a
    failed flush gives exit code 120, as Python's own exit does).
    """
    import atexit
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)  # CPython's, private: checked
    if "torch" not in sys.modules or run_exit_handlers is None:  # nothing slow to skip, or no way to
        if run_exit_handlers is None:
            log.debug("start-up: this Python has no atexit._run_exitfuncs: the usual (slower) exit")
        sys.exit(code)
    run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`| head`), or a stream closed already
            code = code or 120
    os._exit(code)
