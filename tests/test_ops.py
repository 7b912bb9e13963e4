"""wholebody/network/ops.py: torchvision without torch._dynamo and unused packages at startup, its operators unchanged."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import torch

from conftest import ROOT
from wholebody.network import ops


def run_python(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_loading_a_model_imports_no_dynamo_and_leaves_it_importable(checkpoint_path):
    out = run_python(f"""
        import sys
        import dope
        det = dope.DOPE({checkpoint_path!r}, device="cpu")
        print("dynamo at startup:", "torch._dynamo" in sys.modules, "utils:", "torch._dynamo.utils" in sys.modules)
        import numpy as np
        det(np.zeros((64, 96, 3), np.uint8))
        print("dynamo after a pass:", "torch._dynamo" in sys.modules)
        import torch._dynamo.utils
        r = sys.modules["torchvision.ops.roi_align"]  # the module (torchvision.ops.roi_align is the function)
        print("real:", torch._dynamo.utils.is_compile_supported("cpu"), r.is_compile_supported("cpu"))
        """)
    assert "dynamo at startup: False utils: False" in out
    assert "dynamo after a pass: False" in out
    assert "real: True True" in out  # the stand-in gave way to the real module


NMS_EXPORT = textwrap.dedent("""
    import io, warnings
    import torch, torchvision

    class NMS(torch.nn.Module):
        def forward(self, boxes, scores):
            return torchvision.ops.nms(boxes, scores, 0.5)

    warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
    f = io.BytesIO()
    # opset 11's NonMaxSuppression for torchvision::nms is torchvision's own ONNX rule: without
    # it, the export fails ("unrecognized namespace torchvision::nms")
    torch.onnx.export(NMS(), (torch.tensor([[0., 0., 4., 4.], [1., 1., 5., 5.]]), torch.tensor([0.9, 0.8])),
                      f, dynamo=False, opset_version=11)
    print("exported:", b"NonMaxSuppression" in f.getvalue())
    """)


def test_loading_a_model_imports_no_onnx_and_onnx_export_still_has_torchvisions_rules(checkpoint_path):
    out = run_python(textwrap.dedent(f"""
        import sys
        import dope
        det = dope.DOPE({checkpoint_path!r}, device="cpu")
        import numpy as np
        det(np.zeros((64, 96, 3), np.uint8))
        print("onnx after a pass:", "torch.onnx" in sys.modules)
        """) + NMS_EXPORT)
    assert "onnx after a pass: False" in out
    assert "exported: True" in out  # registered when torch.onnx was imported


def test_onnx_imported_before_the_model_gets_torchvisions_rules_at_once(checkpoint_path):
    out = run_python(textwrap.dedent(f"""
        import torch.onnx
        import dope
        dope.DOPE({checkpoint_path!r}, device="cpu")
        """) + NMS_EXPORT)
    assert "exported: True" in out


def test_torchvision_imported_before_still_works():
    out = run_python("""
        import sys, torchvision
        assert "torch._dynamo" in sys.modules  # torchvision's own import pulls it in
        from wholebody.network import ops
        print(ops.import_torchvision() is torchvision)
        """)
    assert out.strip() == "True"


def test_loading_a_model_imports_only_the_torchvision_it_uses(checkpoint_path):
    out = run_python(f"""
        import sys
        import dope
        det = dope.DOPE({checkpoint_path!r}, device="cpu")
        unused = ("torchvision.datasets", "torchvision.io", "torchvision.models.alexnet",
                  "torchvision.models.detection.mask_rcnn")
        print("loaded:", sorted(n for n in unused if n in sys.modules))
        import numpy as np
        det(np.zeros((64, 96, 3), np.uint8))  # the transform and the RPN's NMS ask torchvision._is_tracing()
        dope.DOPE({checkpoint_path!r}, device="cpu", postprocess="nms")(np.zeros((64, 96, 3), np.uint8))
        print("after passes:", sorted(n for n in unused if n in sys.modules))
        import torchvision
        print("tracing:", torchvision._is_tracing(), torchvision.__version__ is not None,
              torchvision._is_tracing.__module__)  # the package completed: its own function again
        """)
    assert "loaded: []" in out
    assert "after passes: []" in out  # a pass does not complete the deferred packages (80 ms)
    assert "tracing: None True torchvision" in out


def test_the_rest_of_torchvision_is_there_when_asked_for(checkpoint_path):
    # what a script may do with torchvision after loading DOPE: every name is where it always is
    out = run_python(f"""
        import sys, types
        import dope
        dope.DOPE({checkpoint_path!r}, device="cpu")
        import torchvision
        from importlib.metadata import version
        print("version", torchvision.__version__.split("+")[0] == version("torchvision").split("+")[0])
        from torchvision import transforms
        from torchvision.models import alexnet, resnet18
        import torchvision.transforms.functional as TF
        print("function", isinstance(alexnet, types.FunctionType), callable(resnet18), callable(TF.hflip))
        print("compose", transforms.Compose.__name__, torchvision.datasets.MNIST.__name__)
        m = torchvision.models.detection.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=3)
        print("built", type(m).__name__, torchvision.ops.box_iou.__name__)
        """)
    assert "version True" in out and "function True True True" in out
    assert "compose Compose MNIST" in out and "built MaskRCNN box_iou" in out


def test_a_torchvision_submodule_imported_directly_after_dope(checkpoint_path):
    out = run_python(f"""
        import dope
        dope.DOPE({checkpoint_path!r}, device="cpu")
        import torchvision.models.detection.mask_rcnn as mr
        import torchvision.models.detection as det
        print(mr.MaskRCNN.__name__, det.keypointrcnn_resnet50_fpn.__name__)
        """)
    assert out.split() == ["MaskRCNN", "keypointrcnn_resnet50_fpn"]


def test_roi_align_is_torchvisions():
    import torchvision
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(2, 8, 20, 30, generator=g)
    boxes = []
    for n in (7, 5):
        xy = torch.rand(n, 2, generator=g) * 200
        boxes.append(torch.cat([xy, xy + 1 + torch.rand(n, 2, generator=g) * 150], 1))
    for kw in (dict(spatial_scale=1 / 16, sampling_ratio=2), dict(spatial_scale=0.1, sampling_ratio=-1, aligned=True)):
        expected = torchvision.ops.roi_align(feats, boxes, (7, 7), **kw)
        assert expected.shape == (12, 8, 7, 7)
        assert torch.equal(ops.roi_align(feats, boxes, (7, 7), **kw), expected)
        assert torch.equal(ops.roi_align(feats, boxes, 7, **kw), expected)
        rois = torch.cat([torch.cat([torch.full((len(b), 1), float(i)), b], 1) for i, b in enumerate(boxes)])
        assert torch.equal(ops.roi_align(feats, rois, 7, **kw), expected)


def test_roi_align_rejects_boxes_of_the_wrong_shape():
    import pytest
    with pytest.raises(ValueError, match="boxes"):
        ops.roi_align(torch.zeros(1, 2, 4, 4), torch.zeros(3, 4), 2)
    with pytest.raises(ValueError, match="boxes"):
        ops.roi_align(torch.zeros(1, 2, 4, 4), [torch.zeros(3, 5)], 2)


def test_nms_is_torchvisions():
    import torchvision
    g = torch.Generator().manual_seed(1)
    xy = torch.rand(300, 2, generator=g) * 500
    boxes = torch.cat([xy, xy + 10 + torch.rand(300, 2, generator=g) * 100], 1)
    scores = torch.rand(300, generator=g)
    keep = ops.nms(boxes, scores, 0.3)
    assert 10 < len(keep) < 300
    assert torch.equal(keep, torchvision.ops.nms(boxes, scores, 0.3))


def test_skip_random_init_skips_meta_tensors_only():
    cpu = torch.zeros(1000)
    with ops.skip_random_init():
        layer = torch.nn.Conv2d(4, 8, 3, device="meta")
        torch.nn.init.normal_(cpu)
        cpu2 = torch.zeros(10).uniform_()
    assert layer.weight.is_meta and layer.weight.shape == (8, 4, 3, 3)
    assert cpu.std() > 0.5 and (cpu2 > 0).all()  # initialised as usual
