"""torchvision, imported without `torch._dynamo` and without what DOPE does not use, and its operators.

Why: torchvision 0.2x's `ops/roi_align.py` runs `from torch._dynamo.utils import is_compile_supported`
at import time, and `import torch._dynamo` costs about 1 s (sympy, torch.fx's symbolic shapes, the
whole compiler front end): half of torch's own import, for a function only called when deterministic
algorithms are requested on a GPU. `import_torchvision` therefore imports torchvision with a
stand-in for that one name, which imports the real one on its first call; the stand-in leaves
`sys.modules` right after, so `torch.compile` and `torch.onnx` work as usual later. And where
Python would run `torchvision/__init__.py` (every model, dataset and transform) before any of its
sub-modules, the packages DOPE does not need whole are registered empty and run their own
__init__ when first used (DEFERRED_PACKAGES). torchvision.ops's ONNX export rules, whose module
imports torch.onnx (60 ms), are registered when torch.onnx is first imported, by anyone (ONNX_RULES).

`roi_align` and `nms` call torchvision's registered operators (`torch.ops.torchvision.*`) directly;
`roi_align_gathered` is the same RoIAlign as one weighted gather, about 4x faster on a CPU.
`skip_random_init` lets a network be built on the meta device without torch._dynamo either.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import sys
import types
from typing import Callable, Iterator, Optional, Union

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode

log = logging.getLogger(__name__)

# The one dynamo name torchvision's import needs (torchvision/ops/roi_align.py, 0.18 to 0.29 at least).
DYNAMO_UTILS = "torch._dynamo.utils"


# torchvision packages whose __init__ imports all they hold (every model, dataset and transform:
# 0.1 s more than the network uses). They are made as empty modules, and each runs its own
# __init__ the first time a name it lacks is asked for (`torchvision.__version__`,
# `torchvision.models.alexnet`, `from torchvision import transforms`): for the code that uses
# them, nothing changes.
DEFERRED_PACKAGES = ("torchvision", "torchvision.models", "torchvision.models.detection", "torchvision.transforms")
# What the network uses: the compiled operators (extension), ops, and the modules dopenet.py imports.
USED_MODULES = ("torchvision.extension", "torchvision.ops", "torchvision.models.resnet",
                "torchvision.models.detection.anchor_utils", "torchvision.models.detection.rpn",
                "torchvision.models.detection.transform")


_importing_parts = False  # True while import_torchvision imports USED_MODULES

# torchvision.ops registers its ONNX export rules (roi_align, roi_pool, nms) as it is imported, from
# a module that imports torch.onnx (60 ms, in every run). That module is made without running it,
# with a stand-in `_register_custom_op` that runs it and its registration as soon as torch.onnx is
# imported (by anyone: `--runtime onnxruntime`, a user's torch.onnx.export), or at once if it is.
ONNX_RULES = "torchvision.ops._register_onnx_ops"


def _is_tracing() -> object:
    """torchvision._is_tracing, as torchvision/__init__.py defines it (the tracing state, or None)."""
    return torch._C._get_tracing_state()


# Names of a deferred package that the network calls on every pass: set on the empty package, so
# that a pass does not complete it (torchvision's detection transform, NMS and poolers ask for
# `torchvision._is_tracing()`; completing torchvision then took 80 ms of the first pass). When the
# package completes, its __init__ defines them again, the same.
RUNTIME_NAMES = {"torchvision": {"_is_tracing": _is_tracing}}


def _is_compile_supported(device_type: str) -> bool:
    """Stand-in for torch._dynamo.utils.is_compile_supported: the real one, imported on first call."""
    from torch._dynamo.utils import is_compile_supported
    return is_compile_supported(device_type)


@contextlib.contextmanager
def _dynamo_stand_in() -> Iterator[None]:
    """Within it, `torch._dynamo.utils` is a stand-in holding is_compile_supported, unless dynamo is
    imported already; it leaves sys.modules after, so torch.compile and torch.onnx work as usual."""
    if "torch._dynamo" in sys.modules or DYNAMO_UTILS in sys.modules:
        yield
        return
    stand_in = types.ModuleType(DYNAMO_UTILS, "Stand-in while torchvision is imported (wholebody.network.ops).")
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


def _after_import(name: str, then: Callable[[], None]) -> None:
    """Call then() right after module `name` is first imported (at once if it is already)."""
    if name in sys.modules:
        then()
        return

    class Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname: str, path: object = None, target: object = None
                      ) -> Optional[importlib.machinery.ModuleSpec]:
            if fullname != name:
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec(fullname)  # as the other finders find it
            if spec is not None and spec.loader is not None:
                run = spec.loader.exec_module  # this spec's own loader: wrapped for this one import

                def exec_module(module: types.ModuleType) -> None:
                    run(module)
                    del spec.loader.exec_module  # type: ignore[union-attr]
                    then()

                spec.loader.exec_module = exec_module  # type: ignore[method-assign]
            return spec

    sys.meta_path.insert(0, Finder())


def _onnx_rules_stand_in() -> None:
    """ONNX_RULES as a module made but not run, whose `_register_custom_op` waits for torch.onnx."""
    spec = importlib.machinery.PathFinder.find_spec(ONNX_RULES, importlib.util.find_spec("torchvision.ops")
                                                    .submodule_search_locations)
    if spec is None or spec.loader is None:
        return  # another torchvision: its own import goes on as it would have
    module = importlib.util.module_from_spec(spec)

    def register() -> None:
        try:
            spec.loader.exec_module(module)  # type: ignore[union-attr]  (its own _register_custom_op)
            module._register_custom_op()
        except Exception as e:  # noqa: BLE001  (never break the import of torch.onnx)
            log.warning("torchvision's ONNX export rules (roi_align, nms) could not be registered: %s", e)

    module._register_custom_op = lambda: _after_import("torch.onnx", register)  # type: ignore[attr-defined]
    sys.modules[ONNX_RULES] = module


def _deferred_package(name: str) -> types.ModuleType:
    """Package `name`, registered without running its __init__, which runs on first use of a name it lacks."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        raise ImportError(f"{name} is not a package here")
    module = importlib.util.module_from_spec(spec)

    def complete(attribute: str) -> object:
        if _importing_parts and importlib.machinery.PathFinder.find_spec(f"{name}.{attribute}", module.__path__):
            # `from . import x` of a sub-module asks first: Python imports it when told it is missing
            raise AttributeError(f"module {name!r} has no attribute {attribute!r}")
        del module.__getattr__  # once: names missing while __init__ runs are sub-modules to import
        try:
            with _dynamo_stand_in():
                spec.loader.exec_module(module)  # type: ignore[union-attr]
        except ImportError:
            # asked from within one of its own sub-modules being imported (a circle __init__ cannot
            # run in yet): that import goes on as it would have, and the package completes later
            module.__getattr__ = complete  # type: ignore[attr-defined]
            raise AttributeError(f"module {name!r} has no attribute {attribute!r}") from None
        return getattr(module, attribute)

    module.__getattr__ = complete  # type: ignore[attr-defined]  (PEP 562)
    for attribute, value in RUNTIME_NAMES.get(name, {}).items():
        setattr(module, attribute, value)
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
    return module


def import_torchvision() -> types.ModuleType:
    """`import torchvision` as far as the network needs it: without torch._dynamo (about 1 s) and
    without the models, datasets and transforms it does not use (0.1 s); the rest is imported when
    first asked for (see DEFERRED_PACKAGES). A no-op when torchvision is imported already.

    If a torchvision version does not lend itself to this (a module it needs is missing, or it
    imports more of dynamo than the stand-in has), torchvision is imported again in full, with the
    stand-in, and without it if need be: the saving is lost, nothing else.
    """
    if "torchvision" in sys.modules:
        return sys.modules["torchvision"]
    global _importing_parts
    try:
        _importing_parts = True
        with _dynamo_stand_in():
            for name in DEFERRED_PACKAGES:
                _deferred_package(name)
            _onnx_rules_stand_in()
            for name in USED_MODULES:
                importlib.import_module(name)
        return sys.modules["torchvision"]
    except Exception as e:  # noqa: BLE001  (any failure: fall back on the plain import)
        log.debug("importing torchvision in part failed (%s): importing all of it", e)
        _forget_torchvision()
    finally:
        _importing_parts = False
    try:
        with _dynamo_stand_in():
            import torchvision
    except ImportError as e:  # a name the stand-in lacks: undo the partial import, import normally
        log.debug("torchvision needs more of torch._dynamo than the stand-in has (%s): importing it normally", e)
        _forget_torchvision()
        import torchvision
    return torchvision


import_torchvision()  # loads torchvision's compiled operators (torch.ops.torchvision.*)


class skip_random_init(TorchFunctionMode):
    """Within it, initialising meta tensors (`normal_`, `torch.nn.init.*_`, ...) does nothing.

    Meta tensors hold no values, so nothing is lost; but torch's meta kernel of `normal_` is a
    Python reference that imports torch._dynamo (about 1 s), and ResNet's and the RPN head's
    initialisations call it on every convolution. Other tensors and functions are untouched.
    """

    SKIPPED = frozenset([getattr(torch.Tensor, n) for n in ("normal_", "uniform_", "log_normal_", "cauchy_",
                                                             "exponential_", "geometric_", "random_")]
                        # torch.nn.init's functions dispatch to the mode themselves, and what they
                        # call inside runs with the mode off: they are skipped as a whole.
                        + [getattr(torch.nn.init, n) for n in dir(torch.nn.init)
                           if n.endswith("_") and not n.startswith("_")])

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        if func in self.SKIPPED:
            tensor = args[0] if args else kwargs.get("tensor")  # torch.nn.init's take it by keyword
            if isinstance(tensor, Tensor) and tensor.is_meta:
                return tensor
        return func(*args, **kwargs)


def roi_align(input: Tensor, boxes: Union[Tensor, list[Tensor]], output_size: Union[int, tuple[int, int]],
              spatial_scale: float = 1.0, sampling_ratio: int = -1, aligned: bool = False) -> Tensor:
    """RoIAlign, a drop-in for `torchvision.ops.roi_align` (same arguments, same kernel, same results).

    input (N, C, H, W); boxes: (K, 5) rows (image index, x1, y1, x2, y2), or a list of N tensors
    (L_i, 4) of x1 y1 x2 y2, in input pixels / spatial_scale. Returns (K, C, out_h, out_w).
    Unlike torchvision's, it never falls back to the Python implementation (torchvision does so
    under deterministic algorithms on a GPU, for a deterministic backward pass).
    """
    out_h, out_w = (output_size, output_size) if isinstance(output_size, int) else output_size
    if isinstance(boxes, (list, tuple)):
        for b in boxes:
            if b.dim() != 2 or b.size(1) != 4:
                raise ValueError(f"boxes in a list must be (L, 4) tensors, got {tuple(b.shape)}")
        index = torch.cat([torch.full((len(b), 1), i, dtype=b.dtype, device=b.device) for i, b in enumerate(boxes)])
        rois = torch.cat([index, torch.cat(list(boxes))], 1)
    else:
        if boxes.dim() != 2 or boxes.size(1) != 5:
            raise ValueError(f"boxes must be a (K, 5) tensor or a list of (L, 4) tensors, got {tuple(boxes.shape)}")
        rois = boxes
    if rois.dtype != input.dtype:  # as torchvision's: the kernel takes one dtype
        rois = rois.to(input.dtype)
    return torch.ops.torchvision.roi_align(input, rois, float(spatial_scale), int(out_h), int(out_w),
                                           int(sampling_ratio), bool(aligned))


def roi_align_gathered(input: Tensor, boxes: list[Tensor], output_size: int, spatial_scale: float,
                       sampling_ratio: int) -> Tensor:
    """`roi_align(..., aligned=False)` with a fixed sampling ratio, as one weighted gather: each
    output cell is a weighted sum of at most 4 x ratio² feature-map pixels, all of whose C channels
    are contiguous in a channels-last map, so `torch.nn.functional.embedding_bag` (vectorised over
    channels, threaded over cells) computes every cell at once: about 4x faster than torchvision's
    CPU kernel on 1000 proposals (which loops channel by channel on one core), for the same
    features to float noise (sums taken in another order: 1e-6 relative). The sample points and
    their weights follow torchvision's kernel step for step (roi_align_kernel.cpp: boxes at least
    1 px, samples beyond a pixel outside the map count as 0, others clamped to the map).

    input (N, C, H, W) float32 (any layout; channels-last needs no copy); boxes: per image (L_i, 4)
    x1 y1 x2 y2 in input pixels / spatial_scale. Returns (sum L_i, C, out, out), channels-last.
    A box with a non-finite coordinate gives NaN features (torchvision's kernel reads out of bounds).
    """
    n, c, height, width = input.shape
    out, ratio = int(output_size), int(sampling_ratio)
    if ratio <= 0:
        raise ValueError(f"roi_align_gathered needs a fixed sampling ratio, got {sampling_ratio}")
    if not sum(len(b) for b in boxes):
        return input.new_zeros((0, c, out, out)).contiguous(memory_format=torch.channels_last)
    rois = torch.cat([b.to(input.dtype) for b in boxes])
    image = torch.cat([torch.full((len(b),), i, dtype=torch.int64, device=input.device) for i, b in enumerate(boxes)])
    rois = rois * spatial_scale
    finite = torch.isfinite(rois).all(1)
    rois = torch.where(finite[:, None], rois, torch.zeros_like(rois))
    x1, y1, x2, y2 = rois.unbind(1)
    bins = torch.arange(out, dtype=input.dtype, device=input.device)
    samples = torch.arange(ratio, dtype=input.dtype, device=input.device) + 0.5

    def axis(start: Tensor, end: Tensor, size: int) -> tuple[Tensor, ...]:
        """Per box, bin and sample along one axis: (low, high) pixels, their weights, and whether
        the sample falls outside (it then counts as 0). Shapes (L, out, ratio)."""
        step = torch.clamp(end - start, min=1.0) / out
        # the kernel's order of operations: start + bin * step + (sample + .5) * step / ratio
        v = (start[:, None, None] + bins[None, :, None] * step[:, None, None]) \
            + (samples[None, None, :] * step[:, None, None]) / ratio
        outside = (v < -1.0) | (v > size)
        v = torch.clamp(v, min=0.0)
        low = v.to(torch.int64)
        last = low >= size - 1
        low = torch.where(last, torch.full_like(low, size - 1), low)
        high = torch.where(last, low, low + 1)
        v = torch.where(last, low.to(v.dtype), v)
        frac = v - low.to(v.dtype)
        return low, high, frac, 1.0 - frac, outside

    y_low, y_high, ly, hy, y_out = axis(y1, y2, height)
    x_low, x_high, lx, hx, x_out = axis(x1, x2, width)
    # Samples indexed (box, bin y, sample y, bin x, sample x): y terms on dims 1-2, x terms on 3-4.
    def y(t: Tensor) -> Tensor:
        return t[:, :, :, None, None]

    def x(t: Tensor) -> Tensor:
        return t[:, None, None, :, :]

    row = (image * height)[:, None, None, None, None]
    index = torch.stack([(row + y(y_low)) * width + x(x_low), (row + y(y_low)) * width + x(x_high),
                         (row + y(y_high)) * width + x(x_low), (row + y(y_high)) * width + x(x_high)], -1)
    keep = ~(y(y_out) | x(x_out))
    scale = 1.0 / (ratio * ratio)  # the kernel's mean over samples (a power of two: exact)
    weight = torch.stack([y(hy) * x(hx), y(hy) * x(lx), y(ly) * x(hx), y(ly) * x(lx)], -1) \
        * (keep[..., None] * scale)
    cells = len(rois) * out * out
    # one bag per (box, bin y, bin x): its samples' 4 pixels each
    index = index.permute(0, 1, 3, 2, 4, 5).reshape(cells, -1)
    weight = weight.permute(0, 1, 3, 2, 4, 5).reshape(cells, -1)
    # rows of C contiguous channels (no copy when channels-last; embedding_bag's fast kernels want them)
    table = input.permute(0, 2, 3, 1).reshape(n * height * width, c).contiguous()
    pooled = torch.nn.functional.embedding_bag(index, table, per_sample_weights=weight, mode="sum")
    pooled = pooled.reshape(len(rois), out, out, c).permute(0, 3, 1, 2)  # channels-last (L, C, out, out)
    if not bool(finite.all()):
        pooled = pooled.masked_fill(~finite[:, None, None, None], float("nan"))
    return pooled


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Indexes (int64, by decreasing score) of the boxes (N, 4) x1 y1 x2 y2 kept by non-maximum
    suppression at IoU > iou_threshold: `torchvision.ops.nms`."""
    return torch.ops.torchvision.nms(boxes, scores, float(iou_threshold))

