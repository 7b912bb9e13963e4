"""The docs run: every shell command and Python example of README.md and docs/*.md is executed.

Fenced blocks: ```bash, ```sh and ```console (its `$ ` lines) are shell, ```python is Python;
```json, ```text, ```bibtex and the like are shown, not run. Every fence names its language, so
that no command slips through unrun. The blocks of a page run in page order in one temporary
folder (see `page_folder`); its Python blocks run in this process and share one namespace.

- `dope` and `python dope.py` run this checkout's command (the installed `dope` when the virtual
  environment has one), with `--max-proposals 10` added unless the block gives a count (or replays
  saved detections, which takes none); Python blocks get the same default through the network's
  published proposal count. Other `python X.py` naming a file of the checkout run that file.
- `$DOPE_MODELS` holds synthetic checkpoints named like the official ones (the fixtures' small
  320/512 input size), so `--model DOPE_v1_0_0` and `DOPE("DOPE_v1_0_0")` never download;
  downloads go to an address that refuses at once.
- A block exits with 0, or with the code its comment names (`# exit code 1`).
- `<!-- not run: REASON -->` just before a block marks one that cannot run here (installing
  packages, a camera, a real cluster); `<!-- needs: NAME, ... -->` one that needs an optional
  command or Python module: skipped without it, a failure with DOPE_CI=1.
"""
from __future__ import annotations

import glob
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import FIXTURES, ROOT, SMALL
from make_synthetic_checkpoint import build_checkpoint

PAGES = ["README.md"] + sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))
SHELL = {"bash", "sh", "console"}
PYTHON = {"python"}
SHOWN = {"json", "text", "bibtex", "yaml", "toml", "ini", "diff", "html"}  # shown, never run
PROPOSALS = "10"
MIN_BLOCKS_RUN = 20
README_MAX_LINES = 200
CI = os.environ.get("DOPE_CI") == "1"
NO_SERVER = "http://127.0.0.1:9/dope"  # the discard port: a download attempt fails at once

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[\w+-]*)[^\n]*$")
MARKER = re.compile(r"^\s*<!--\s*(?P<kind>not run|needs)\s*:?(?P<text>.*?)-->\s*$")
EXIT_CODE = re.compile(r"#\s*exit code (\d+)")
PY_FILE = re.compile(r"\bpython3?[ \t]+(?!-)(?P<path>[\w./-]+\.py)\b")


@dataclass
class Block:
    page: str
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    not_run: Optional[str] = None  # the reason, when marked `not run`
    needs: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.not_run is None and self.lang in SHELL | PYTHON

    @property
    def exit_code(self) -> int:
        codes = set(EXIT_CODE.findall(self.code))
        assert len(codes) <= 1, f"{self.where}: several exit codes {codes}"
        return int(codes.pop()) if codes else 0


def parse(page: str) -> list[Block]:
    """The fenced blocks of a page, with the markers on the lines just before each."""
    lines = open(os.path.join(ROOT, page), encoding="utf-8").read().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m["indent"], m["fence"], m["lang"].lower()
        start, body = i, []
        i += 1
        while i < len(lines) and not re.match(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", lines[i]):
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i].lstrip())
            i += 1
        assert i < len(lines), f"{page}:{start + 1}: a fence that never closes"
        i += 1
        block = Block(page, start + 1, lang, "\n".join(body) + "\n")
        j = start - 1
        while j >= 0 and (not lines[j].strip() or MARKER.match(lines[j])):  # markers and blank lines above
            marker = MARKER.match(lines[j])
            if marker and marker["kind"] == "not run":
                block.not_run = marker["text"].strip()
            elif marker:
                block.needs = tuple(n.strip() for n in marker["text"].split(",") if n.strip())
            j -= 1
        blocks.append(block)
    return blocks


def shell_code(block: Block) -> str:
    """The block as a bash script: `python dope.py` is `dope`, other checkout scripts by full path."""
    code = block.code
    if block.lang == "console":  # the commands are the `$ ` lines (and their continuations)
        kept, going_on = [], False
        for line in code.splitlines():
            if line.startswith("$ ") or going_on:
                kept.append(line[2:] if line.startswith("$ ") else line)
                going_on = line.rstrip().endswith("\\")
        code = "\n".join(kept) + "\n"

    def script(m: re.Match) -> str:
        path = m["path"]
        if path == "dope.py":
            return "dope"
        full = os.path.join(ROOT, path)
        return f"python {full}" if not os.path.isabs(path) and os.path.isfile(full) else m[0]
    return "set -eo pipefail\n" + PY_FILE.sub(script, code)


def missing(needs: tuple[str, ...]) -> list[str]:
    """The needed commands or Python modules that are not here."""
    return [n for n in needs if shutil.which(n) is None and importlib.util.find_spec(n) is None]


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def docs_models(tmp_path_factory, checkpoint_dict) -> str:
    """A models folder with synthetic checkpoints under the official names (small input size)."""
    folder = tmp_path_factory.mktemp("docs_models")
    torch.save(checkpoint_dict, folder / "DOPE_v1_0_0.pth")
    torch.save(build_checkpoint(1, half=True, dope_kwargs=SMALL), folder / "DOPErealtime_v1_0_0.pth")
    return str(folder)


@pytest.fixture(scope="session")
def docs_bin(tmp_path_factory) -> str:
    """A folder for PATH with `dope`: this checkout's command, with fewer proposals by default."""
    folder = tmp_path_factory.mktemp("docs_bin")
    venv_bin = os.path.dirname(sys.executable)
    installed = shutil.which("dope", path=venv_bin)
    command = f'"{installed}"' if installed else f'"{sys.executable}" "{os.path.join(ROOT, "dope.py")}"'
    wrapper = folder / "dope"
    wrapper.write_text(
        "#!/usr/bin/env bash\n"
        "# the docs' `dope`: this checkout's command, with fewer proposals unless told otherwise\n"
        f"extra=(--max-proposals {PROPOSALS})\n"
        'for a in "$@"; do\n'
        '  case "$a" in --max-proposals|--max-proposals=*|--from-json|--from-json=*|-h|--help|--version|--list-models)'
        ' extra=();; esac\n'
        "done\n"
        f'exec {command} "$@" "${{extra[@]}}"\n')
    wrapper.chmod(0o755)
    return str(folder)


def write_video(path: str, image: np.ndarray, frames: int, fps: float = 10.0) -> None:
    """A short mp4 of `image` (BGR) sliding sideways by 4 pixels a frame."""
    h, w = image.shape[:2]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened(), path
    for i in range(frames):
        writer.write(np.roll(image, 4 * i, axis=1))
    writer.release()


@pytest.fixture
def page_folder(tmp_path) -> str:
    """What the pages' examples name: photo.jpg (640x480), clip.mp4 (4 frames, 320x240, 10 fps),
    shots/ (a.jpg, b.jpg, more/c.jpg) and corpus/ (signer1.mp4, signer2.mp4, 3 frames each)."""
    rgb = np.asarray(Image.open(os.path.join(FIXTURES, "synthetic_480x640.png")).convert("RGB"))
    Image.fromarray(rgb).save(tmp_path / "photo.jpg", quality=95)
    small = cv2.resize(np.ascontiguousarray(rgb[:, :, ::-1]), (320, 240), interpolation=cv2.INTER_AREA)
    write_video(str(tmp_path / "clip.mp4"), small, 4)
    (tmp_path / "shots" / "more").mkdir(parents=True)
    for name, image in (("a.jpg", small), ("b.jpg", small[:, ::-1]), ("more/c.jpg", small[::-1])):
        cv2.imwrite(str(tmp_path / "shots" / name), image)
    (tmp_path / "corpus").mkdir()
    for k, name in enumerate(("signer1.mp4", "signer2.mp4")):
        write_video(str(tmp_path / "corpus" / name), np.roll(small, 40 * k, axis=1), 3)
    return str(tmp_path)


# ------------------------------------------------------------------------------------------- tests


def test_every_block_runs_or_says_why():
    blocks = [b for page in PAGES for b in parse(page)]
    for b in blocks:
        assert b.lang, f"{b.where}: a fence without a language (bash, python, json, text...)"
        assert b.lang in SHELL | PYTHON | SHOWN, f"{b.where}: unknown language {b.lang!r}"
        if b.not_run is not None:
            assert b.not_run, f"{b.where}: <!-- not run: REASON --> needs its reason"
            assert b.lang in SHELL | PYTHON, f"{b.where}: only commands and examples are marked not run"
        b.exit_code  # one code at most
    running = [b for b in blocks if b.runs]
    assert len(running) > MIN_BLOCKS_RUN, f"only {len(running)} blocks would run"
    assert len(open(os.path.join(ROOT, "README.md"), encoding="utf-8").read().splitlines()) <= README_MAX_LINES


RAN: dict[str, int] = {}  # page -> blocks executed, for test_enough_blocks_ran


@pytest.mark.parametrize("page", PAGES)
def test_page_runs(page, page_folder, docs_models, docs_bin, monkeypatch):
    blocks = [b for b in parse(page) if b.runs]
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "DOPE_DOWNLOAD_URL")}
    env.update(PATH=os.pathsep.join([docs_bin, os.path.dirname(sys.executable), env.get("PATH", "")]),
               PYTHONPATH=ROOT, DOPE_MODELS=docs_models, DOPE_DOWNLOAD_URL=NO_SERVER,
               XDG_CACHE_HOME=os.path.join(page_folder, ".cache"))
    # The Python blocks run here, in the page's folder, with the same models and proposals...
    monkeypatch.chdir(page_folder)
    for k in ("DOPE_MODELS", "DOPE_DOWNLOAD_URL", "XDG_CACHE_HOME"):
        monkeypatch.setenv(k, env[k])
    monkeypatch.setattr("dope.network.checkpoint.PUBLISHED_MAX_PROPOSALS", int(PROPOSALS), raising=False)
    # ... and what an example may set for its own program (api.md opts in to "high") is undone after it.
    precision, threads = torch.get_float32_matmul_precision(), torch.get_num_threads()
    try:
        ran, skipped = run_blocks(blocks, page_folder, env)
    finally:
        torch.set_float32_matmul_precision(precision)
        torch.set_num_threads(threads)
    assert ran + len(skipped) == len(blocks)
    RAN[page] = ran
    if skipped:
        warnings.warn(f"{page}: not run for want of optional tools: {'; '.join(skipped)}")


def run_blocks(blocks: list[Block], folder: str, env: dict[str, str]) -> tuple[int, list[str]]:
    """Run a page's blocks in order: (blocks run, blocks skipped for want of an optional tool)."""
    namespace: dict = {"__name__": "__docs__"}
    ran, skipped = 0, []
    for block in blocks:
        absent = missing(block.needs)
        if absent:
            assert not CI, f"{block.where} needs {', '.join(absent)} (DOPE_CI=1)"
            skipped.append(f"{block.where} ({', '.join(absent)})")
            continue
        if block.lang in PYTHON:
            assert block.exit_code == 0, f"{block.where}: Python examples must succeed"
            exec(compile(block.code, block.where, "exec"), namespace)
        else:
            run = subprocess.run(["bash", "-c", shell_code(block)], cwd=folder, env=env,
                                 capture_output=True, text=True, timeout=600)
            assert run.returncode == block.exit_code, (
                f"{block.where} exited with {run.returncode}, not {block.exit_code}:\n{block.code}\n"
                f"--- stdout\n{run.stdout[-3000:]}\n--- stderr\n{run.stderr[-3000:]}")
        ran += 1
    return ran, skipped


def test_enough_blocks_ran():
    if set(RAN) != set(PAGES):
        pytest.skip("needs every page's test to have run in this session")
    assert sum(RAN.values()) > MIN_BLOCKS_RUN, RAN


def test_site_builds_strictly(tmp_path):
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None:
        assert not CI, "the docs extra is missing (DOPE_CI=1)"
        pytest.skip("mkdocs and mkdocstrings (the docs extra) are not installed")
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
