"""--runtime onnxruntime / openvino (network/runtimes.py): parity with the fixtures, the ONNX cache
keyed by the weights, and one-line errors. With DOPE_CI=1 a missing runtime fails the tests."""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

import pytest

from conftest import FIXTURES, ROOT, SMALL
from dope import DOPE, DopeError
from make_synthetic_checkpoint import build_checkpoint
from parity import assert_result_close
from wholebody.inputs.sources import load_image
from wholebody.network.runtimes import FUSED, GRAPHS, weights_key

if os.environ.get("DOPE_CI") != "1":  # CI installs requirements-onnx.txt and requirements-openvino.txt
    for _name in (*FUSED, "onnx"):
        pytest.importorskip(_name)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """DOPE_CACHE for the module: a fresh folder, so that the first DOPE of a runtime exports."""
    folder = str(tmp_path_factory.mktemp("dope-cache"))
    before = os.environ.get("DOPE_CACHE")
    os.environ["DOPE_CACHE"] = folder
    yield folder
    if before is None:
        del os.environ["DOPE_CACHE"]
    else:
        os.environ["DOPE_CACHE"] = before


def expected(postprocess: str) -> dict:
    with gzip.open(os.path.join(FIXTURES, f"network_seed0_{postprocess}.json.gz"), "rt") as f:
        return json.load(f)


@pytest.mark.parametrize("runtime", FUSED)
def test_parity_with_the_fixtures(runtime, cache, checkpoint_dict, fixture_image):
    # the published pipeline's outputs, to the parity tolerances (scores 1e-5, 2D 0.01 px, 3D 1e-4)
    image = load_image(fixture_image)
    for postprocess in ("ppi", "nms"):
        det = DOPE(checkpoint_dict, device="cpu", runtime=runtime, postprocess=postprocess)
        assert det.net.backbone.compiled is not None and det.net.roi_heads.dope_head.compiled is not None
        assert_result_close(det(image).to_dict(), expected(postprocess))


def test_graphs_cached_per_weights(cache, checkpoint_dict):
    det = DOPE(checkpoint_dict, device="cpu", runtime="onnxruntime")
    folder = os.path.join(cache, "onnx", weights_key(det.net))
    paths = [os.path.join(folder, f"{g}.onnx") for g in GRAPHS]
    stamps = [os.stat(p).st_mtime_ns for p in paths]
    DOPE(checkpoint_dict, device="cpu", runtime="openvino")  # the same graphs, not exported again
    assert [os.stat(p).st_mtime_ns for p in paths] == stamps
    other = DOPE(build_checkpoint(1, dope_kwargs=SMALL), device="cpu")
    assert weights_key(other.net) != weights_key(det.net)  # other weights, other graphs
    assert sorted(os.listdir(folder)) == sorted(f"{g}.onnx" for g in GRAPHS)  # no staging file left


def test_runtime_refused_where_it_cannot_run(checkpoint_dict):
    with pytest.raises(DopeError, match="fp32"):
        DOPE(checkpoint_dict, device="cpu", runtime="onnxruntime", precision="bf16")
    with pytest.raises(DopeError, match="unknown runtime"):
        DOPE(checkpoint_dict, device="cpu", runtime="tensorrt")


def dope(*args: str, cwd: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, os.path.join(ROOT, "dope.py"), *args], cwd=cwd,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=600)


def test_cli_runtime_json_equals_the_fixtures(cache, checkpoint_path, fixture_image, tmp_path):
    p = dope("--model", checkpoint_path, "--image", fixture_image, "--json", "out.json", "--no-overlay",
             "--runtime", "onnxruntime", "-q", cwd=str(tmp_path), env={"DOPE_CACHE": cache})
    assert p.returncode == 0, p.stderr
    assert_result_close(json.loads((tmp_path / "out.json").read_text()), expected("ppi"))


@pytest.mark.parametrize("runtime", FUSED)
def test_missing_runtime_is_one_line_before_loading(runtime, fixture_image, tmp_path):
    code = (f"import sys; sys.modules[{runtime!r}] = None; sys.path.insert(0, sys.argv[1]); "
            "from wholebody.cli import main; sys.exit(main(sys.argv[2:]))")
    p = subprocess.run([sys.executable, "-c", code, ROOT, "--model", "nowhere.pth", "--image", fixture_image,
                        "--runtime", runtime, "--json", "out.json"], cwd=str(tmp_path), capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 1
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and f"--runtime {runtime} needs {runtime}" in lines[0], p.stderr
    assert f"requirements-{'onnx' if runtime == 'onnxruntime' else 'openvino'}.txt" in lines[0]
    assert not os.listdir(tmp_path)  # refused before the (missing) model and the outputs
