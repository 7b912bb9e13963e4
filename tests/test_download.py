"""Downloading the official checkpoints, against a local HTTP server playing NAVER's.

The server (127.0.0.1, random port) serves the session's synthetic checkpoint under the official
name, and broken variants under other base addresses: /<case>/DOPE_v1_0_0.pth.tgz. The CLI is
pointed at it with DOPE_DOWNLOAD_URL and at an empty models folder with DOPE_MODELS.
"""
from __future__ import annotations

import filecmp
import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

import dope
from dope.inputs import weights as download
from conftest import ROOT, interrupted

NAME = "DOPE_v1_0_0"
FILE = NAME + ".pth.tgz"
SLOW_SIZE = 50_000_000  # announced by the route that stalls, for the Ctrl-C test


class CheckpointServer(ThreadingHTTPServer):
    """Serves `routes[path] = (body bytes or a file path, announced length or None)`; logs request paths."""
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.routes: dict[str, tuple[object, int | None]] = {}
        self.requests: list[str] = []
        self.stalled = threading.Event()  # the slow route has sent its first bytes
        self.release = threading.Event()  # the slow route may end

    def url(self, case: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{case}"


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: the connection closes after each response, so a short body reads as an early end.
    server: CheckpointServer

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        if self.path.startswith("/slow/"):
            return self._stall()
        if self.path not in self.server.routes:
            return self.send_error(404)
        body, announced = self.server.routes[self.path]
        data = open(body, "rb").read() if isinstance(body, str) else body
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data) if announced is None else announced))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _stall(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(SLOW_SIZE))
        self.end_headers()
        try:
            self.wfile.write(b"\0" * 65536)
            self.wfile.flush()
            self.server.stalled.set()
            self.server.release.wait(60)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server(checkpoint_path, tmp_path_factory):
    srv = CheckpointServer()
    head = open(checkpoint_path, "rb").read(1 << 20)
    wrong = tmp_path_factory.mktemp("wrong") / "wrong.pth"
    torch.save({"state_dict": {"conv.weight": torch.zeros(2, 3)}, "half": False}, wrong)
    srv.routes = {
        f"/ok/{FILE}": (checkpoint_path, None),
        f"/truncated/{FILE}": (head, None),  # honest length, but only the first MiB of the file
        f"/short/{FILE}": (head, os.path.getsize(checkpoint_path)),  # announces the whole file, sends 1 MiB
        f"/html/{FILE}": (b"<html><body>Please log in to the Wi-Fi</body></html>", None),
        f"/wrong/{FILE}": (str(wrong), None),  # a torch file, but not the DOPE network's tensors
    }
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()


def dope_cli(*args, env, **kw):
    return subprocess.run([sys.executable, os.path.join(ROOT, "dope.py"), *map(str, args)], capture_output=True,
                          text=True, env={**os.environ, **env}, **kw)


def requests_for(srv: CheckpointServer, case: str) -> list[str]:
    return [r for r in srv.requests if r.startswith(f"/{case}/")]


@pytest.fixture(scope="module")
def first_run(server, tmp_path_factory, fixture_image):
    """One CLI command on an empty models folder: download, then inference."""
    models = tmp_path_factory.mktemp("models_ok")
    out = tmp_path_factory.mktemp("out") / "result.json"
    env = {"DOPE_MODELS": str(models), "DOPE_DOWNLOAD_URL": server.url("ok")}
    r = dope_cli("--model", NAME, "--image", fixture_image, "--json", out, "--no-overlay", env=env)
    return r, models, out, env


def test_download_then_inference_in_one_command(first_run, server, checkpoint_path):
    r, models, out, _ = first_run
    assert r.returncode == 0, r.stderr
    assert requests_for(server, "ok") == [f"/ok/{FILE}"]
    # Only the final file: no temporary file left beside it, and the bytes served, unchanged.
    assert os.listdir(models) == [FILE]
    assert filecmp.cmp(models / FILE, checkpoint_path, shallow=False)
    # What it fetches, its size and the licence were said before the bar.
    size = download.format_size(os.path.getsize(checkpoint_path))
    assert f"downloading {NAME} ({size}) from {server.url('ok')}/{FILE}" in r.stderr
    assert "CC BY-NC-SA 4.0" in r.stderr
    assert "100%" in r.stderr  # tqdm's bar reached the end
    result = json.loads(out.read_text())
    assert result["model"] == NAME
    assert (result["height"], result["width"]) == (480, 640)
    assert len(result["body"]) > 0  # random weights detect plenty


def test_second_run_does_not_download(first_run, server, fixture_image, tmp_path):
    _, models, _, env = first_run
    before = len(server.requests)
    out = tmp_path / "again.json"
    r = dope_cli("--model", NAME, "--image", fixture_image, "--json", out, "--no-overlay", "-q", env=env)
    assert r.returncode == 0, r.stderr
    assert server.requests[before:] == []
    assert "downloading" not in r.stderr and "%|" not in r.stderr  # -q: no messages, no progress bar
    assert json.loads(out.read_text())["model"] == NAME
    assert os.listdir(models) == [FILE]


def run_main(capsys, monkeypatch, models, base_url, *extra) -> tuple[int, str]:
    """dope.main in this process (the CLI's own code path, without paying a torch import per case)."""
    monkeypatch.setenv("DOPE_MODELS", str(models))
    monkeypatch.setenv("DOPE_DOWNLOAD_URL", base_url)
    image = os.path.join(ROOT, "tests", "fixtures", "synthetic_480x640.png")
    # --json: --no-overlay alone would write nothing, an error before the model loads (issue 21)
    code = dope.main(["--model", NAME, "--image", image, "--no-overlay", "--json", str(models / "out.json"), "-q",
                      *extra])
    return code, capsys.readouterr().err


def one_line_error(code: int, err: str, *fragments: str) -> str:
    assert code == 1
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(("dope.py: error: ", "dope: error: "))
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("case, fragments", [
    ("missing", ["HTTP 404", "to get it by hand", "CC BY-NC-SA 4.0", FILE]),
    ("truncated", ["not a usable DOPE checkpoint", "corrupt or truncated", "run the command again"]),
    ("short", ["stopped after 1048576 of", "run the command again"]),
    ("html", ["not a usable DOPE checkpoint", "run the command again"]),
    ("wrong", ["not a usable DOPE checkpoint", "missing tensor", "run the command again"]),
])
def test_bad_downloads_leave_nothing(server, tmp_path, capsys, monkeypatch, case, fragments):
    models = tmp_path / "models"
    models.mkdir()
    code, err = run_main(capsys, monkeypatch, models, server.url(case))
    line = one_line_error(code, err, *fragments)
    assert f"{server.url(case)}/{FILE}" in line  # names the address, never the temporary file
    assert ".part" not in line
    assert requests_for(server, case) != []
    assert os.listdir(models) == []


def test_no_download_gives_manual_instructions(server, tmp_path, capsys, monkeypatch):
    before = len(server.requests)
    code, err = run_main(capsys, monkeypatch, tmp_path, server.url("ok"), "--no-download")
    one_line_error(code, err, "downloading is off", f"{server.url('ok')}/{FILE}", str(tmp_path / FILE),
                   "CC BY-NC-SA 4.0")
    assert server.requests[before:] == []
    assert os.listdir(tmp_path) == []


def test_offline_gives_manual_instructions(tmp_path, capsys, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on: the connection is refused
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/models"
    code, err = run_main(capsys, monkeypatch, tmp_path, url)
    one_line_error(code, err, "cannot reach", "offline", f"{url}/{FILE}", str(tmp_path / FILE), "CC BY-NC-SA 4.0")
    assert os.listdir(tmp_path) == []


# Background jobs of non-interactive shells start with SIGINT ignored, and Python then keeps it
# ignored: install the KeyboardInterrupt handler explicitly, as an interactive terminal would have.
WITH_SIGINT = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
               "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")


def test_ctrl_c_leaves_nothing_and_says_how_to_retry(server, tmp_path, fixture_image):
    models = tmp_path / "models"
    models.mkdir()
    # SIGINT (as Ctrl-C) once the first chunk is written (tests/conftest.py: interrupted); the slow
    # route then holds the rest back, so the download cannot end first
    env = interrupted("download", 1, "INT", env={**os.environ, "DOPE_MODELS": str(models),
                                                 "DOPE_DOWNLOAD_URL": server.url("slow")})
    try:
        proc = subprocess.run([sys.executable, "-c", WITH_SIGINT, os.path.join(ROOT, "dope.py"), "--model", NAME,
                               "--image", fixture_image, "--no-overlay", "--json", str(tmp_path / "o.json")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, timeout=300)
    finally:
        server.release.set()
    stderr = proc.stderr
    assert server.stalled.is_set(), "the download never started"
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "run the same command again" in stderr
    assert "Traceback" not in stderr
    assert os.listdir(models) == []


def test_list_models_without_image(server, tmp_path):
    (tmp_path / FILE).write_bytes(b"x" * 2_500_000)  # listing reads sizes, not contents
    (tmp_path / "mine.pth").write_bytes(b"y" * 999)
    (tmp_path / "README.md").write_text("not a model")
    (tmp_path / f".{FILE}.123-abcd.part").write_bytes(b"z")
    before = len(server.requests)
    r = dope_cli("--list-models", env={"DOPE_MODELS": str(tmp_path), "DOPE_DOWNLOAD_URL": server.url("ok")})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert str(tmp_path) in lines[0]
    row = {line.split()[0]: line for line in lines[1:-1]}
    assert set(row) == {NAME, "DOPErealtime_v1_0_0", "mine"}
    assert "2.5 MB" in row[NAME] and str(tmp_path / FILE) in row[NAME]
    assert "not downloaded" in row["DOPErealtime_v1_0_0"]
    assert f"{server.url('ok')}/DOPErealtime_v1_0_0.pth.tgz" in row["DOPErealtime_v1_0_0"]
    assert "999 B" in row["mine"] and "not an official model" in row["mine"]
    assert "CC BY-NC-SA 4.0" in lines[-1]
    assert server.requests[before:] == []


def test_no_input_is_a_clear_error():
    r = dope_cli("--model", NAME, env={})
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "nothing to process" in r.stderr and "--image" in r.stderr


def test_format_size():
    assert download.format_size(None) == "size unknown"
    assert download.format_size(999) == "999 B"
    assert download.format_size(194_656_897) == "194.7 MB"
    assert download.format_size(3_200_000_000) == "3.2 GB"
