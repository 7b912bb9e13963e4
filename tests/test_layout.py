"""The project's layout: the design card's top level, one package, imports one way, no circles,
no standard-library names, the published PPI module, and the API from a user's own folder."""
from __future__ import annotations

import ast
import gzip
import json
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import FIXTURES, ROOT
from parity import assert_part_close

PACKAGE = "dope"
CARD = ("dope.py", "model.py", "postprocess.py", "visu.py", "lcrnet-v2-improved-ppi", "models", "README.md",
        "LICENSE", "tests")
FACES = ("model", "postprocess", "visu")  # the card's top-level modules: public faces of the package
TOP_LEVEL_PY = {"dope.py", "model.py", "postprocess.py", "visu.py", "bench.py", "train.py"}


def project_modules() -> dict[str, str]:
    """Dotted module name -> file, for the package and the top-level files."""
    mods = {}
    for name in os.listdir(ROOT):
        if name.endswith(".py"):  # dope.py, the checkout's script, is `dope.py` (the package is `dope`)
            mods[name if name == "dope.py" else name[:-3]] = os.path.join(ROOT, name)
    for folder, dirs, files in os.walk(os.path.join(ROOT, PACKAGE)):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        rel = os.path.relpath(folder, ROOT).replace(os.sep, ".")
        for f in files:
            if f.endswith(".py"):
                mods[rel if f == "__init__.py" else f"{rel}.{f[:-3]}"] = os.path.join(folder, f)
    return mods


def imports_of(path: str, modules: dict[str, str]) -> set[str]:
    """The project modules a file imports, at any depth (function-level imports count too)."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for n in names:
            if n in modules:
                found.add(n)
    return found


def import_graph() -> dict[str, set[str]]:
    mods = project_modules()
    return {m: imports_of(p, mods) - {m} for m, p in mods.items()}


def test_card_top_level_and_one_package():
    entries = set(os.listdir(ROOT))
    for name in CARD:
        assert name in entries, f"the design card's {name} is missing"
    py = {e for e in entries if e.endswith(".py")}
    assert py == TOP_LEVEL_PY, f"top-level Python files: {sorted(py)}"
    packages = {e for e in entries if os.path.isfile(os.path.join(ROOT, e, "__init__.py"))}
    assert packages == {PACKAGE, "benchmarks"}  # benchmarks: bench.py's and the tests', not installed


def test_every_package_says_what_it_is_for():
    for folder, dirs, files in os.walk(os.path.join(ROOT, PACKAGE)):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        assert "__init__.py" in files, f"{folder} is not a package"
        doc = ast.get_docstring(ast.parse(open(os.path.join(folder, "__init__.py")).read()))
        if folder == os.path.join(ROOT, PACKAGE):  # the package itself: a summary line, then the tour
            assert doc and doc.splitlines()[0].startswith("DOPE:"), "dope/__init__.py needs a docstring"
            continue
        assert doc and len(doc.splitlines()) == 1, f"{folder}/__init__.py needs a one-line docstring"


def test_no_standard_library_names():
    for name in project_modules():
        for piece in name.split("."):
            assert piece not in sys.stdlib_module_names, f"{name} shadows the standard library's {piece}"
    assert not os.path.exists(os.path.join(ROOT, PACKAGE, "dope")), "a dope/ package would shadow dope.py"


def test_no_import_circle():
    graph = import_graph()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                pytest.fail("import circle: " + " -> ".join(path[path.index(n):] + [n]))
            if n not in state:
                visit(n)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_imports_run_one_way():
    """The package never imports the card's top-level files or the benchmarks, and nothing but the
    script, the package's lazy CLI names and the command's own modules imports the CLI."""
    graph = import_graph()
    for m, deps in graph.items():
        if m.startswith(PACKAGE):
            assert not deps & set(FACES + ("bench", "dope.py", "train")), f"{m} imports a top-level module"
            assert not [d for d in deps if d.startswith("benchmarks")], f"{m} imports the benchmarks"
        if f"{PACKAGE}.cli" in deps:
            assert m in ("dope.py", PACKAGE, "bench"), f"{m} imports the CLI"
    # below the command line, nothing sees argparse (a typed RunConfig instead)
    for m, path in project_modules().items():
        if m.startswith(PACKAGE) and m not in (f"{PACKAGE}.cli", f"{PACKAGE}.training.cli"):
            assert "argparse" not in imports_of(path, {"argparse": ""}), f"{m} imports argparse"
    # inputs, network and post-processing know nothing of writers, drawing, the 3D view or the CLI
    later = ("dope.outputs", "dope.drawing", "dope.view3d", "dope.cli", "dope.detector")
    for m, deps in graph.items():
        if m.startswith(("dope.inputs.sources", "dope.network", "dope.postprocessing")):
            assert not [d for d in deps if d.startswith(later)], f"{m} imports a later stage: {deps}"


def test_readme_layout_table_names_everything():
    """The layout table (docs/contributing.md, "## Layout") names every top-level .py file, the
    card's folders and every package folder."""
    page = open(os.path.join(ROOT, "docs", "contributing.md"), encoding="utf-8").read()
    table = page[page.index("## Layout"):]
    end = table.find("\n## ", 4)
    table = table if end < 0 else table[:end]
    top_level_py = {n for n in os.listdir(ROOT) if n.endswith(".py")} | TOP_LEVEL_PY
    for name in top_level_py | {"lcrnet-v2-improved-ppi/", "models/", "tests/"}:
        assert f"`{name}`" in table, f"the layout table of docs/contributing.md misses {name}"
    for folder, dirs, _ in os.walk(os.path.join(ROOT, PACKAGE)):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        rel = os.path.relpath(folder, ROOT).replace(os.sep, "/") + "/"
        assert f"`{rel}`" in table, f"the layout table of docs/contributing.md misses the package {rel}"


def _run(script: str, cwd: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=300)


def test_published_ppi_entry_point_from_another_folder(tmp_path):
    """A script elsewhere appends the folder to sys.path and gets the published function, which
    returns what the fixtures expect (published outputs, defects fixed)."""
    script = textwrap.dedent(f"""
        import json, sys
        import numpy as np
        sys.path.append({os.path.join(ROOT, 'lcrnet-v2-improved-ppi')!r})
        from lcr_net_ppi_improved import LCRNet_PPI_improved
        out = {{}}
        for part in ("body", "hand", "face"):
            for i in (1, 2, 3):
                a = np.load({FIXTURES!r} + f"/ppi_{{part}}_{{i}}.npz")
                kw = json.load(open({FIXTURES!r} + f"/ppi_{{part}}_{{i}}.json"))["ppi_kwargs"]
                dets = LCRNet_PPI_improved(a["scores"], a["boxes"], a["pose2d"], a["pose3d"], a["resolution"], **kw)
                out[f"{{part}}_{{i}}"] = [{{"score": d["score"], "pose2d": d["pose2d"].tolist(),
                                          "pose3d": d["pose3d"].tolist(), "is_right": d.get("hand_isright"),
                                          "keys": sorted(d)}} for d in dets]
        print(json.dumps(out))
    """)
    proc = _run(script, str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    for part in ("body", "hand", "face"):
        for i in (1, 2, 3):
            expected = json.load(open(os.path.join(FIXTURES, f"ppi_{part}_{i}.json")))["ppi"]
            dets = got[f"{part}_{i}"]
            assert dets, f"{part} {i}: nothing detected"
            assert_part_close(dets, expected, part)
            keys = {"score", "pose2d", "pose3d"} | ({"hand_isright"} if part == "hand" else set())
            assert all(set(d["keys"]) == keys for d in dets), dets[0]["keys"]
            assert all(a["score"] >= b["score"] for a, b in zip(dets, dets[1:]))


def test_api_from_a_folder_with_its_own_modules(tmp_path, checkpoint_path, fixture_image):
    """A user's project with its own model.py, postprocess.py, visu.py, results.py and utils.py
    appends this checkout to sys.path and runs the detector."""
    for name in ("model", "postprocess", "visu", "results", "utils", "parts", "sources", "outputs"):
        (tmp_path / f"{name}.py").write_text(f"raise ImportError('the user\\'s own {name}.py was imported')\n")
    script = textwrap.dedent(f"""
        import sys
        sys.path.append({ROOT!r})
        from dope import DOPE
        result = DOPE({checkpoint_path!r}, device="cpu")({fixture_image!r})
        print(len(result.body), len(result.hand), len(result.face))
    """)
    proc = _run(script, str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    expected = json.load(gzip.open(os.path.join(FIXTURES, "network_seed0_ppi.json.gz"), "rt"))
    assert [int(x) for x in proc.stdout.split()] == [len(expected[p]) for p in ("body", "hand", "face")]
