"""The package as pip installs it (pyproject.toml): one version, a wheel holding the `dope` package
only (no top-level model.py, postprocess.py or visu.py in site-packages), and the `dope` command."""
from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile

import pytest

from conftest import ROOT

PYPROJECT = tomllib.load(open(os.path.join(ROOT, "pyproject.toml"), "rb"))


def test_one_version():
    from dope import __version__
    assert PYPROJECT["project"]["version"] == __version__
    changelog = open(os.path.join(ROOT, "CHANGELOG.md"), encoding="utf-8").read()
    assert f"## {__version__}" in changelog  # every release says what changed


def test_the_command_is_the_scripts_main():
    assert PYPROJECT["project"]["scripts"] == {"dope": "dope.cli:console", "dope-train": "dope.training.cli:console",
                                               "dope-label-holistic": "dope.training.cli:label_console"}
    p = subprocess.run([sys.executable, os.path.join(ROOT, "dope.py"), "--version"], capture_output=True, text=True)
    from dope import __version__
    assert p.returncode == 0 and p.stdout.strip() == f"dope.py {__version__}"
    import importlib
    for target in PYPROJECT["project"]["scripts"].values():  # every command's function is there
        module, name = target.split(":")
        assert callable(getattr(importlib.import_module(module), name)), target


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), ROOT],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    (name,) = [n for n in os.listdir(out) if n.endswith(".whl")]
    return zipfile.ZipFile(out / name)


def test_the_wheel_holds_the_package_only(wheel):
    tops = {n.split("/")[0] for n in wheel.namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"dope"}, sorted(tops)
    names = set(wheel.namelist())
    assert "dope/cli.py" in names and "dope/network/dopenet.py" in names
    assert not [n for n in names if n.startswith(("dope/tests", "benchmarks/")) or n.endswith((".c", ".so"))]
    entry = wheel.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "dope = dope.cli:console" in entry


def test_extras_are_the_one_list():
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert {"exports", "html", "pose", "ray", "visvis", "docs", "all"} <= set(extras)
    assert not [f for f in os.listdir(ROOT) if f.startswith("requirements")]  # no second list to disagree
