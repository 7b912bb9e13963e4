"""Where the network's convolutions run on a CPU: eager PyTorch (the default) or a fused runtime.

`--runtime onnxruntime` or `openvino` exports the three convolution stacks of the network to ONNX,
once per checkpoint, and runs them in that runtime; everything between them stays in PyTorch and
torchvision, unchanged (image transform, anchors, proposal decoding and NMS, RoIAlign, the part
predictors and the anchor-pose decoding):

    backbone   image batch (N, 3, H, W)          -> feature map (N, 1024, H/16, W/16)   [dynamic N, H, W]
    rpn_head   feature map                       -> objectness (N, 15, h, w), deltas (N, 60, h, w)
    roi_head   RoI features (R, 1024, 7, 7)      -> (R, 2048) pooled stage-4 features   [dynamic R]

The graphs are cached under `cache_dir()`/onnx/<key>/, where the key hashes the checkpoint's
weights (and this export's version): another checkpoint, or the same one edited, gets graphs of
its own. Deleting the folder is always safe; the next run exports again (about 20 s).

The runtimes are optional extras: onnxruntime (requirements-onnx.txt) and OpenVINO
(requirements-openvino.txt, which reads the same ONNX files). fp32 on CPU only.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import logging
import os
import warnings
from typing import Any, Callable, Optional

import numpy as np
import torch
from torch import Tensor, nn

from wholebody.errors import DopeError
from wholebody.files import cache_dir

log = logging.getLogger("dope")

FUSED = ("onnxruntime", "openvino")  # with "torch", detector.RUNTIMES
EXPORT_VERSION = 1  # bump when the graphs' cut or inputs change: old caches are then left unused
OPSET = 17
INSTALL = {"onnxruntime": "pip install -r requirements-onnx.txt (or: pip install onnxruntime onnx)",
           "openvino": "pip install -r requirements-openvino.txt (or: pip install openvino onnx)"}
GRAPHS = ("backbone", "rpn_head", "roi_head")


def check_runtime(runtime: str, device: torch.device, fp32: bool) -> None:
    """DopeError unless `runtime` is known, installed, and can run on this device (and in fp32 or
    not, as `fp32` says); checked before the checkpoint is read."""
    if runtime == "torch":
        return
    if runtime not in FUSED:
        raise DopeError(f"unknown runtime {runtime!r}; use one of torch, {', '.join(FUSED)}")
    if device.type != "cpu":
        raise DopeError(f"--runtime {runtime} runs on the CPU: add --device cpu (on {device.type}, use --runtime torch)")
    if not fp32:
        raise DopeError(f"--runtime {runtime} runs in fp32; use --precision fp32 (or --runtime torch)")
    _import(runtime)


def _import(runtime: str) -> Any:
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
        if runtime == "onnxruntime":
            import onnxruntime
            return onnxruntime
        import openvino
        return openvino
    except ImportError:
        raise DopeError(f"--runtime {runtime} needs {runtime} and onnx, which are not installed: "
                        f"{INSTALL[runtime]}") from None


def weights_key(net: nn.Module) -> str:
    """A hex digest of the network's weights (names, shapes, dtypes, bytes) and of this export's version."""
    h = hashlib.sha256(json.dumps({"export": EXPORT_VERSION, "opset": OPSET, "torch": torch.__version__.split("+")[0]})
                       .encode())
    for name, t in sorted(net.state_dict().items()):
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:24]


class _Backbone(nn.Module):
    def __init__(self, stages: nn.Module) -> None:
        super().__init__()
        self.r = stages.resnet_backbone

    def forward(self, x: Tensor) -> Tensor:
        r = self.r
        return r.layer3(r.layer2(r.layer1(r.maxpool(r.relu(r.bn1(r.conv1(x)))))))


class _RPNHead(nn.Module):
    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        t = torch.relu(self.head.conv(x))
        return self.head.cls_logits(t), self.head.bbox_pred(t)


class _RoIHead(nn.Module):
    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.r = head.resnet_backbone

    def forward(self, x: Tensor) -> Tensor:
        return torch.flatten(self.r.avgpool(self.r.layer4(x)), 1)


def _export(net: nn.Module, folder: str) -> dict[str, str]:
    """The three ONNX graphs of `net` in `folder` (exported there when missing): {graph name: path}."""
    from wholebody.files import atomic_write, make_folder
    paths = {g: os.path.join(folder, f"{g}.onnx") for g in GRAPHS}
    if all(os.path.isfile(p) for p in paths.values()):
        return paths
    make_folder(folder)
    log.info("exporting the network to ONNX for this checkpoint, once (cached in %s)", folder)
    rpn_head = net.rpn.head
    jobs = {
        "backbone": (_Backbone(net.backbone), torch.zeros(1, 3, 64, 96), {"image": {0: "n", 2: "h", 3: "w"}},
                     ["features"]),
        "rpn_head": (_RPNHead(rpn_head), torch.zeros(1, 1024, 4, 6), {"features": {0: "n", 2: "h", 3: "w"}},
                     ["objectness", "deltas"]),
        "roi_head": (_RoIHead(net.roi_heads.dope_head), torch.zeros(2, 1024, 7, 7), {"rois": {0: "r"}},
                     ["pooled"]),
    }
    for name, (module, example, axes, outputs) in jobs.items():
        if os.path.isfile(paths[name]):
            continue
        graph = io.BytesIO()
        with warnings.catch_warnings(), _quiet_exporter():
            warnings.simplefilter("ignore")
            torch.onnx.export(module.eval(), (example,), graph, input_names=list(axes), output_names=outputs,
                              dynamic_axes={**axes, **{o: {0: next(iter(axes.values()))[0]} for o in outputs}},
                              opset_version=OPSET, dynamo=False)
        atomic_write(paths[name], graph.getvalue())  # a killed export leaves no half graph
    return paths


@contextlib.contextmanager
def _quiet_exporter():
    """torch.onnx's own logger is chatty at INFO: keep it to warnings for the export's duration."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _sessions(runtime: str, paths: dict[str, str], threads: int) -> dict[str, Callable[..., list[np.ndarray]]]:
    """{graph name: run(input array) -> output arrays} for each graph, in `runtime`."""
    rt = _import(runtime)
    runs: dict[str, Callable[..., list[np.ndarray]]] = {}
    if runtime == "onnxruntime":
        options = rt.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        for name, path in paths.items():
            session = rt.InferenceSession(path, options, providers=["CPUExecutionProvider"])
            runs[name] = lambda x, s=session, feed=session.get_inputs()[0].name: s.run(None, {feed: x})
        return runs
    core = rt.Core()
    for name, path in paths.items():
        compiled = core.compile_model(path, "CPU", {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"})
        runs[name] = lambda x, c=compiled: [c(x)[o] for o in c.outputs]
    return runs


def _on_tensors(run: Callable[[np.ndarray], list[np.ndarray]], x: Tensor) -> list[Tensor]:
    """A graph's outputs for a float32 CPU tensor, as tensors (no copy where the runtime allows)."""
    x = x.detach().float().contiguous()  # channels-last inputs are made NCHW-contiguous for ONNX
    return [torch.from_numpy(np.ascontiguousarray(y)) for y in run(x.numpy())]


def use_runtime(net: nn.Module, runtime: str, threads: Optional[int] = None,
                folder: Optional[str] = None) -> None:
    """Run `net`'s backbone, RPN head and RoI head in `runtime` from now on (torch: back to eager).

    net: a DOPENet on the CPU in fp32; threads: the runtime's threads (default: torch's count);
    folder: where the graphs are kept (default: cache_dir()/onnx/<weights key>)."""
    stages, rpn_head, roi_head = net.backbone, net.rpn.head, net.roi_heads.dope_head
    if runtime == "torch":
        stages.compiled = rpn_head.compiled = roi_head.compiled = None
        return
    check_runtime(runtime, net.device, net.dtype == torch.float32)
    folder = folder or os.path.join(cache_dir(), "onnx", weights_key(net))
    try:
        paths = _export(net, folder)
    except DopeError as e:
        raise DopeError(f"{e} (the ONNX cache: set DOPE_CACHE to a writable folder)") from None
    runs = _sessions(runtime, paths, threads or torch.get_num_threads())
    stages.compiled = lambda x: _on_tensors(runs["backbone"], x)[0]
    rpn_head.compiled = functools.partial(_on_tensors, runs["rpn_head"])
    roi_head.compiled = lambda x: _on_tensors(runs["roi_head"], x)[0]
    log.debug("network convolutions in %s (graphs in %s)", runtime, folder)
