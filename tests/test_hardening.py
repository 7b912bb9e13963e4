"""Hostile inputs and outputs (issue 15): nothing of the user's lost or damaged, no traceback.

Each class of failure is tested on several instances: outputs at symlinks, FIFOs, devices and
inputs; same-named images in sub-folders; bombs and degenerate images inside folder runs; full
and read-only disks; odd option values and checkpoint paths; truncated and empty videos;
duplicates through links; SIGTERM during a run and a download; slow and swapped downloads.
"""
from __future__ import annotations

import errno
import glob
import hashlib
import json
import os
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest
from PIL import Image

import dope
from conftest import ROOT, interrupted
from dope import files
from dope.files import OutputError, OutputGuard, atomic_write, check_output_path, open_output
from dope.inputs import weights
from dope.inputs.sources import ImageError, Video, common_base, expand_images, load_image
from dope.outputs.writers import JsonLinesWriter, VideoWriter

MODEL = "synthetic_seed0"
PROPOSALS = "50"  # fewer proposals: the same code paths, faster


def dope_cli(*args, env=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, os.path.join(ROOT, "dope.py"), *map(str, args)], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, **kw)


def error_line(r_or_code, err: str | None = None, code: int = 1) -> str:
    """The one line of a failed command (a CompletedProcess, or main's code and stderr)."""
    if err is None:
        r_or_code, err = r_or_code.returncode, r_or_code.stderr
    assert r_or_code == code, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def main_error(capsys, *argv) -> str:
    """dope.main in this process for a command that must fail before any model loads."""
    code = dope.main([str(a) for a in argv])
    return error_line(code, capsys.readouterr().err)


def hidden(folder) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.startswith("."))


def save_image(path, width=64, height=48, value=90):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    Image.fromarray(np.full((height, width, 3), value, np.uint8)).save(path)
    return path


@pytest.fixture
def fifo_reader(tmp_path):
    """A FIFO and a thread that reads everything written into it: (path, function returning the bytes)."""
    path = tmp_path / "pipe"
    os.mkfifo(path)
    got: list[bytes] = []

    def read():
        with open(path, "rb") as f:
            got.append(f.read())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()

    def result() -> bytes:
        thread.join(20)
        assert not thread.is_alive(), "nothing closed the FIFO"
        return got[0]

    yield path, result
    if thread.is_alive():  # unblock the reader if the test failed before writing
        with open(path, "wb"):
            pass


def char_device(tmp_path):
    """A null device of our own (so that a failing test cannot damage /dev/null)."""
    path = tmp_path / "null"
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, OSError) as e:
        pytest.skip(f"cannot make a device node here ({e}); the FIFO tests cover writing in place")
    return path


# -------------------------------------------------------------- 1. outputs that are not regular files


def test_symlinked_output_replaces_the_target_and_keeps_the_link(tmp_path):
    real = tmp_path / "real" / "out.json"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    atomic_write(link, b"new")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_bytes() == b"new"
    assert hidden(tmp_path) == [] and hidden(real.parent) == []
    # a dangling link: its target is created, the link stays
    dangling = tmp_path / "dangling.jsonl"
    dangling.symlink_to(tmp_path / "real" / "made.jsonl")
    with JsonLinesWriter(dangling) as w:
        w.write({"a": 1})
    assert dangling.is_symlink() and json.loads((real.parent / "made.jsonl").read_text()) == {"a": 1}
    # a link in a chain of links, to a video
    video = tmp_path / "real" / "v.mp4"
    (tmp_path / "l1.mp4").symlink_to(video)
    (tmp_path / "l2.mp4").symlink_to(tmp_path / "l1.mp4")
    with VideoWriter(tmp_path / "l2.mp4", fps=10) as w:
        w.write(np.zeros((16, 16, 3), np.uint8))
    assert (tmp_path / "l2.mp4").is_symlink() and (tmp_path / "l1.mp4").is_symlink() and video.is_file()


def test_fifo_is_written_in_place_never_replaced(tmp_path, fifo_reader):
    path, received = fifo_reader
    with JsonLinesWriter(path) as w:
        w.write({"frame": 0})
        w.write({"frame": 1})
    assert stat.S_ISFIFO(os.stat(path).st_mode)
    assert [json.loads(x) for x in received().decode().splitlines()] == [{"frame": 0}, {"frame": 1}]
    assert hidden(tmp_path) == []


def test_video_into_a_fifo_is_staged_elsewhere_and_copied(tmp_path, fifo_reader):
    path, received = fifo_reader
    with VideoWriter(path, fps=10) as w:  # mp4 needs a seekable file: staged in the temporary folder
        for i in range(3):
            w.write(np.full((16, 16, 3), 80 * i, np.uint8))
    data = received()
    assert stat.S_ISFIFO(os.stat(path).st_mode)
    assert b"ftyp" in data[:64] and len(data) > 500
    assert hidden(tmp_path) == []


def test_character_device_is_written_in_place(tmp_path):
    dev = char_device(tmp_path)
    atomic_write(dev, b"x" * 1000)
    with JsonLinesWriter(dev) as w:
        w.write({"a": 1})
    assert stat.S_ISCHR(os.stat(dev).st_mode) and hidden(tmp_path) == []


def test_folders_disks_and_sockets_are_refused(tmp_path):
    with pytest.raises(OutputError, match="is a folder"):
        atomic_write(tmp_path, b"x")
    blk = tmp_path / "disk"
    try:
        os.mknod(blk, stat.S_IFBLK | 0o600, os.makedev(7, 0))
    except OSError:
        blk = None
    if blk is not None:
        with pytest.raises(OutputError, match="block device"):
            open_output(blk)
        assert stat.S_ISBLK(os.stat(blk).st_mode)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock"))
    try:
        with pytest.raises(OutputError, match="socket"):
            JsonLinesWriter(tmp_path / "sock")
    finally:
        sock.close()
    with pytest.raises(OutputError, match="is a file, not a folder"):
        (tmp_path / "f").write_text("x")
        check_output_path(tmp_path / "f" / "out.json")
    assert hidden(tmp_path) == []


def test_json_to_standard_output(checkpoint_path, fixture_image, tmp_path):
    r = dope_cli("--model", checkpoint_path, "--image", fixture_image, "--json", "-", "--no-overlay",
                 "--max-proposals", PROPOSALS)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)  # stdout holds the JSON and nothing else; the logs went to stderr
    assert (got["height"], got["width"]) == (480, 640) and got["model"] == MODEL
    assert "model synthetic_seed0" in r.stderr
    # a symlink of our own to this process's standard output (as /dev/stdout is): written in place
    link = tmp_path / "stdout"
    link.symlink_to("/proc/self/fd/1")
    r = dope_cli("--model", checkpoint_path, "--image", fixture_image, "--json", link, "--no-overlay", "-q",
                 "--max-proposals", PROPOSALS)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["model"] == MODEL
    assert link.is_symlink() and os.readlink(link) == "/proc/self/fd/1"
    # a folder run with its progress bar: JSON Lines on stdout, the bar and the logs on stderr
    folder = tmp_path / "shots"
    save_image(folder / "a.png")
    save_image(folder / "b.png", value=10)
    r = dope_cli("--model", checkpoint_path, "--image", folder, "--json", "-", "--no-overlay", "--max-proposals",
                 PROPOSALS)
    assert r.returncode == 0, r.stderr
    assert [os.path.basename(json.loads(x)["image"]) for x in r.stdout.splitlines()] == ["a.png", "b.png"]
    assert "image/s" in r.stderr or "2/2" in r.stderr


def test_download_through_a_symlinked_model_file(tmp_path, checkpoint_path):
    data = open(checkpoint_path, "rb").read()
    with serve({"/m/DOPE_v1_0_0.pth.tgz": lambda h: h.send_body(data)}) as url:
        models, store = tmp_path / "models", tmp_path / "store"
        models.mkdir()
        store.mkdir()
        (models / "DOPE_v1_0_0.pth.tgz").symlink_to(store / "DOPE_v1_0_0.pth.tgz")  # dangling until downloaded
        path = weights.fetch_checkpoint("DOPE_v1_0_0", str(models), f"{url}/m", progress=False)
    assert os.path.islink(path) and (store / "DOPE_v1_0_0.pth.tgz").read_bytes() == data
    assert hidden(models) == [] and hidden(store) == []


# ------------------------------------------------------------------- 2. outputs that would collide


def test_same_named_images_in_sub_folders_keep_both_drawings(checkpoint_path, tmp_path):
    trip = tmp_path / "trip"
    save_image(trip / "day1" / "IMG_0001.jpg", value=40)
    save_image(trip / "day2" / "IMG_0001.jpg", value=200)
    save_image(trip / "day2" / "deeper" / "IMG_0001.jpg", value=120)
    out = tmp_path / "out"
    r = dope_cli("--model", checkpoint_path, "--image", str(trip / "**" / "*.jpg"), "--output-dir", out,
                 "--max-proposals", PROPOSALS, "--json", tmp_path / "all.jsonl")
    assert r.returncode == 0, r.stderr
    drawings = sorted(os.path.relpath(p, out) for p in glob.glob(str(out / "**" / "*.jpg"), recursive=True))
    assert drawings == [f"day1/IMG_0001.jpg_{MODEL}.jpg", f"day2/IMG_0001.jpg_{MODEL}.jpg",
                        f"day2/deeper/IMG_0001.jpg_{MODEL}.jpg"]
    means = [cv2.imread(str(out / d)).mean() for d in drawings]
    assert len({round(m) for m in means}) == 3  # three different drawings, none written over another
    assert len((tmp_path / "all.jsonl").read_text().splitlines()) == 3


def test_output_names_mirror_the_folder_the_inputs_were_named_from(tmp_path):
    trip = tmp_path / "trip"
    assert common_base([str(trip / "**" / "*.jpg")]) == str(trip)
    assert common_base([str(trip / "day1"), str(trip / "day2" / "x.jpg")]) == str(trip)
    assert files.output_path(str(trip / "day2" / "x.jpg"), "M", "out", base=str(trip)) == os.path.join(
        "out", "day2", "x.jpg_M.jpg")
    assert files.output_path(str(trip / "x.jpg"), "M", "out", base=str(trip)) == os.path.join("out", "x.jpg_M.jpg")
    assert files.output_path(str(trip / "x.jpg"), "M", None) == str(trip / "x.jpg_M.jpg")


def test_a_path_is_never_handed_out_twice_in_one_run(tmp_path):
    guard = OutputGuard()
    first = guard.claim(tmp_path / "a.jpg_M.jpg")
    second = guard.claim(tmp_path / "a.jpg_M.jpg")
    (tmp_path / "link.jpg").symlink_to(tmp_path / "a.jpg_M.jpg")
    third = guard.claim(tmp_path / "link.jpg")  # the same file by another name
    assert first == str(tmp_path / "a.jpg_M.jpg")
    assert len({first, second, third}) == 3 and second.endswith("a.jpg_M-2.jpg")


# -------------------------------------------------------------------- 3. outputs that are inputs


@pytest.fixture
def garbage_model(tmp_path):
    """A checkpoint that would fail to load: errors about outputs must come before the model loads."""
    path = tmp_path / "garbage.pth"
    path.write_bytes(b"not a checkpoint" * 10)
    return path


def test_outputs_that_are_inputs_are_refused_before_the_model_loads(capsys, tmp_path, garbage_model,
                                                                    checkpoint_path):
    image = save_image(tmp_path / "photo.png")
    before = image.read_bytes()
    line = main_error(capsys, "--model", garbage_model, "--image", image, "--json", image)
    assert "--json" in line and "would overwrite an input" in line and "photo.png" in line
    os.link(image, tmp_path / "hardlink.json")
    line = main_error(capsys, "--model", garbage_model, "--image", image, "--json", tmp_path / "hardlink.json")
    assert "would overwrite an input" in line
    (tmp_path / "sym.json").symlink_to(garbage_model)
    line = main_error(capsys, "--model", garbage_model, "--image", image, "--json", tmp_path / "sym.json")
    assert "would overwrite an input" in line and "garbage.pth" in line
    line = main_error(capsys, "--model", garbage_model, "--image", image, "--json", garbage_model)
    assert "would overwrite an input" in line
    # a drawing's name that is an input given on the command line
    drawing = save_image(tmp_path / "photo.png_garbage.jpg")
    line = main_error(capsys, "--model", garbage_model, "--image", image, drawing)
    assert "drawing" in line and "photo.png_garbage.jpg" in line and "would overwrite an input" in line
    # the saved detections replayed
    saved = tmp_path / "saved.jsonl"
    saved.write_text(json.dumps({"image": str(image), "height": 48, "width": 64, "body": [], "hand": [],
                                 "face": []}) + "\n")
    line = main_error(capsys, "--from-json", saved, "--json", saved)
    assert "would overwrite an input" in line
    assert image.read_bytes() == before and garbage_model.read_bytes() == b"not a checkpoint" * 10
    assert drawing.is_file() and (tmp_path / "sym.json").is_symlink()
    # an official model about to be downloaded into the models folder is an input too
    os.environ["DOPE_MODELS"] = str(tmp_path / "models")
    try:
        line = main_error(capsys, "--model", "DOPE_v1_0_0", "--image", image, "--no-download", "--json",
                          tmp_path / "models" / "DOPE_v1_0_0.pth.tgz")
    finally:
        del os.environ["DOPE_MODELS"]
    assert "would overwrite an input" in line


def test_video_drawing_onto_an_input_is_refused(capsys, tmp_path, garbage_model):
    clip = tmp_path / "clip.mp4"
    w = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10, (32, 32))
    for _ in range(3):
        w.write(np.zeros((32, 32, 3), np.uint8))
    w.release()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "clip.mp4_garbage.mp4").symlink_to(clip)  # the drawing's name leads to the input
    line = main_error(capsys, "--model", garbage_model, "--video", clip, "--output-dir", tmp_path / "out")
    assert "would overwrite an input" in line and "clip.mp4" in line


# ------------------------------------------------- 6, 7. bombs and degenerate images in folder runs


def png_header_only(path, width, height):
    """A PNG that announces width x height pixels and holds almost nothing: Pillow refuses it on opening."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
                     + chunk(b"IEND", b""))
    return path


def test_bombs_and_degenerate_images_are_refused_one_line_each(tmp_path, monkeypatch):
    with pytest.raises(ImageError, match="decompression bomb"):
        load_image(png_header_only(tmp_path / "bomb.png", 100_000, 100_000))
    with pytest.raises(ImageError, match="decompression bomb"):
        load_image(png_header_only(tmp_path / "wide.png", 400_000, 1_000))
    with pytest.raises(ImageError, match="1x3000 pixels: too thin"):
        load_image(save_image(tmp_path / "thin.png", 1, 3000))
    with pytest.raises(ImageError, match="5000x2 pixels: too thin"):
        load_image(save_image(tmp_path / "flat.png", 5000, 2))
    assert load_image(save_image(tmp_path / "tiny.png", 1, 1)).shape == (1, 1, 3)  # small, not thin: fine
    # between Pillow's limit and twice it, Pillow only warns (two lines of Python warning): read, no warning
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_image(save_image(tmp_path / "big.png", 40, 40)).shape == (40, 40, 3)
    with pytest.raises(ImageError, match="decompression bomb"):
        load_image(save_image(tmp_path / "big2.png", 100, 100))  # over twice the limit


def test_folder_run_skips_bad_images_and_goes_on(checkpoint_path, tmp_path):
    folder = tmp_path / "shots"
    save_image(folder / "a_good.jpg")
    png_header_only(folder / "b_bomb.png", 100_000, 100_000)
    save_image(folder / "c_thin.png", 1, 3000)
    save_image(folder / "d_flat.png", 5000, 2)
    (folder / "e_truncated.jpg").write_bytes((folder / "a_good.jpg").read_bytes()[:200])
    save_image(folder / "z_good.png")
    r = dope_cli("--model", checkpoint_path, "--image", folder, "--json", tmp_path / "out.jsonl", "--max-proposals",
                 PROPOSALS, "-q")
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    skipped = [line for line in lines if line.startswith("skipped:")]
    assert len(skipped) == 4, r.stderr
    for name in ("b_bomb.png", "c_thin.png", "d_flat.png", "e_truncated.jpg"):
        assert sum(name in line for line in skipped) == 1, r.stderr
    assert "4 of 6 images could not be read" in lines[-1]
    records = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    # every input keeps its place; those that could not be read are {"image", "error"} records
    assert [os.path.basename(d["image"]) for d in records] == ["a_good.jpg", "b_bomb.png", "c_thin.png",
                                                               "d_flat.png", "e_truncated.jpg", "z_good.png"]
    assert [os.path.basename(d["image"]) for d in records if "error" not in d] == ["a_good.jpg", "z_good.png"]
    assert (folder / f"a_good.jpg_{MODEL}.jpg").is_file() and (folder / f"z_good.png_{MODEL}.jpg").is_file()


# ------------------------------------------------ 10. full disks, read-only folders, files in the way


@pytest.fixture
def small_disk(tmp_path):
    """A 64 kB tmpfs (root, where mounting is allowed)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode:
        pytest.skip("cannot mount a tmpfs here; test_full_disk_simulated covers the class")
    yield mnt
    subprocess.run(["umount", str(mnt)])


def test_full_disk_is_one_line_and_leaves_nothing(small_disk):
    (small_disk / "old.jsonl").write_text("old\n")
    with pytest.raises(OutputError, match="no space left on device; free some space") as e:
        atomic_write(small_disk / "big.bin", b"x" * 200_000)
    assert "big.bin" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(OutputError, match="no space left"):
        with JsonLinesWriter(small_disk / "old.jsonl") as w:
            for i in range(10_000):
                w.write({"frame": i, "padding": "x" * 100})
    assert (small_disk / "old.jsonl").read_text() == "old\n"  # the old file as it was
    assert (small_disk / "old.partial.jsonl").read_text().startswith('{"frame": 0')  # what was written, kept aside
    (small_disk / "old.partial.jsonl").unlink()
    assert hidden(small_disk) == []
    assert not (small_disk / "big.bin").exists()
    # a disk already full is found before any work, when the output is checked
    filler = small_disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        with pytest.raises(OSError) as full:
            while True:
                f.write(b"x" * 4096)
        assert full.value.errno == errno.ENOSPC
    with pytest.raises(OutputError, match="no space left on device"):
        check_output_path(small_disk / "out.json")
    assert sorted(os.listdir(small_disk)) == ["filler", "old.jsonl"]


def test_full_disk_simulated(tmp_path, monkeypatch):
    # Any write that fails with ENOSPC (here: every one) gives one line and no leftover.
    real_open = open

    class Full:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name):
            return getattr(self.f, name)

    monkeypatch.setattr("builtins.open", lambda *a, **k: Full(real_open(*a, **k)))
    with pytest.raises(OutputError, match="no space left on device"):
        atomic_write(tmp_path / "x.jpg", b"data")
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []
    # /dev/full is a device that always answers ENOSPC: written in place, so the error is its own
    if os.path.exists("/dev/full"):
        with pytest.raises(OutputError, match="no space left"):
            atomic_write("/dev/full", b"x" * 10)


@pytest.fixture
def read_only_folder(tmp_path):
    mnt = tmp_path / "ro"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode:
        pytest.skip("cannot mount a read-only tmpfs here; test_unwritable_folders_simulated covers the class")
    yield mnt
    subprocess.run(["umount", str(mnt)])


def test_read_only_folders_fail_before_the_model_loads(capsys, tmp_path, read_only_folder, garbage_model):
    image = save_image(tmp_path / "p.png")
    line = main_error(capsys, "--model", garbage_model, "--image", image, "--json", read_only_folder / "o.json")
    assert "read-only file system" in line and "write elsewhere" in line
    line = main_error(capsys, "--model", garbage_model, "--image", image, "--output-dir", read_only_folder)
    assert "read-only file system" in line and str(read_only_folder) in line
    line = main_error(capsys, "--model", garbage_model, "--image", image, "--output-dir", read_only_folder / "sub")
    assert "cannot create --output-dir" in line and "read-only" in line


def test_unwritable_folders_simulated(tmp_path, monkeypatch):
    # As root, permission bits do not stop writes: simulate EACCES where the probe file is created.
    real_open = open

    def refusing(path, mode="r", *a, **k):
        if "x" in mode:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return real_open(path, mode, *a, **k)

    monkeypatch.setattr("builtins.open", refusing)
    with pytest.raises(OutputError, match="permission denied; check the permissions"):
        check_output_path(tmp_path / "out.json")
    with pytest.raises(OutputError, match="permission denied"):
        JsonLinesWriter(tmp_path / "out.jsonl")


def test_files_in_the_way_and_missing_folders(capsys, tmp_path, garbage_model):
    image = save_image(tmp_path / "p.png")
    (tmp_path / "afile").write_text("x")
    line = main_error(capsys, "--model", garbage_model, "--image", image, "--output-dir", tmp_path / "afile")
    assert "--output-dir" in line and "not a folder" in line
    line = main_error(capsys, "--model", garbage_model, "--image", image, "--output-dir", tmp_path / "afile" / "sub")
    assert "afile" in line and "not a folder" in line
    line = main_error(capsys, "--model", garbage_model, "--image", image, "--json", tmp_path / "afile" / "o.json")
    assert "is a file, not a folder" in line
    # a missing folder for --json is made (issue 21), so the run goes on to the (garbage) checkpoint
    line = main_error(capsys, "--model", garbage_model, "--image", image, "--json", tmp_path / "nowhere" / "o.json")
    assert "nowhere" not in line and "checkpoint" in line
    line = main_error(capsys, "--model", garbage_model, "--image", image, "--json", tmp_path)
    assert "is a folder" in line
    assert (tmp_path / "afile").read_text() == "x" and hidden(tmp_path) == []


# -------------------------------------------------------------------------- 11. odd option values


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "abc"])
def test_min_score_must_be_a_finite_score(capsys, tmp_path, value):
    with pytest.raises(SystemExit) as e:
        dope.main(["--image", "x.jpg", "--postprocess", "nms", f"--min-score={value}"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--min-score" in err and "Traceback" not in err


def test_min_score_above_one_is_refused_for_nms(capsys, tmp_path):
    line = main_error(capsys, "--image", save_image(tmp_path / "p.png"), "--postprocess", "nms", "--min-score", "1.5")
    assert "--min-score" in line and "[0, 1]" in line


def test_checkpoint_paths_that_are_not_files_say_what_they_are(capsys, tmp_path):
    image = save_image(tmp_path / "p.png")
    line = main_error(capsys, "--model", tmp_path, "--image", image, "--no-overlay", "--json", tmp_path / "o.jsonl")
    assert "is a folder, not a checkpoint file" in line and "does not exist" not in line
    line = main_error(capsys, "--model", "/dev/zero", "--image", image, "--no-overlay", "--json", tmp_path / "o.jsonl")
    assert "/dev/zero" in line and "character device" in line and "does not exist" not in line
    os.mkfifo(tmp_path / "fifo.pth")
    line = main_error(capsys, "--model", tmp_path / "fifo.pth", "--image", image, "--no-overlay", "--json", tmp_path / "o.jsonl")
    assert "FIFO" in line
    (tmp_path / "broken.pth").symlink_to(tmp_path / "gone.pth")
    line = main_error(capsys, "--model", tmp_path / "broken.pth", "--image", image, "--no-overlay", "--json", tmp_path / "o.jsonl")
    assert "broken symbolic link" in line


def test_unreadable_checkpoint_is_not_called_corrupt(tmp_path, monkeypatch, checkpoint_path):
    import torch
    from dope.network import checkpoint

    def no_permission(path, *a, **k):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)

    monkeypatch.setattr(torch, "load", no_permission)
    with pytest.raises(checkpoint.CheckpointError) as e:
        checkpoint.read_checkpoint(checkpoint_path)
    assert "permission denied" in str(e.value) and "corrupt" not in str(e.value)

    def io_error(path, *a, **k):
        raise OSError(errno.EIO, os.strerror(errno.EIO), path)

    monkeypatch.setattr(torch, "load", io_error)
    with pytest.raises(checkpoint.CheckpointError) as e:
        checkpoint.read_checkpoint(checkpoint_path)
    assert "Input/output error" in str(e.value) and "corrupt" not in str(e.value)


def test_special_files_as_images_say_what_they_are(tmp_path):
    os.mkfifo(tmp_path / "pipe.jpg")
    for path, what in (("/dev/zero", "character device"), (str(tmp_path / "pipe.jpg"), "FIFO")):
        with pytest.raises(ImageError, match=what):
            expand_images([path])
        with pytest.raises(ImageError, match=what):
            load_image(path)


# ------------------------------------------------------------------ 12. truncated and empty videos


def write_clip(path, frames, size=(64, 48)):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, size)
    for i in range(frames):
        w.write(np.full((size[1], size[0], 3), (i * 7) % 255, np.uint8))
    w.release()
    return path


def damage(path, keep_share: float):
    """Overwrite the video data after the first `keep_share` of it: the index still announces every frame."""
    data = bytearray(path.read_bytes())
    start, end = data.find(b"mdat"), data.find(b"moov")
    assert 0 < start < end, "expected the mdat box before moov"
    cut = start + 8 + int((end - start) * keep_share)
    data[cut:end] = b"\xff" * (end - cut)
    path.write_bytes(bytes(data))


def test_truncated_video_warns(tmp_path, caplog):
    clip = write_clip(tmp_path / "clip.mp4", 300)
    damage(clip, 0.01)
    video = Video(str(clip))
    assert video.frame_count == 300
    with caplog.at_level("WARNING"):
        n = sum(1 for _ in video)
    assert 0 <= n < 100 and video.frames_read == n
    assert any(f"only {n} of the 300 frames" in r.getMessage() and "truncated" in r.getMessage()
               for r in caplog.records)
    intact = write_clip(tmp_path / "intact.mp4", 30)
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert sum(1 for _ in Video(str(intact))) == 30
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_empty_and_undecodable_videos_fail_with_one_line(checkpoint_path, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    empty = tmp_path / "empty.avi"
    w = cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    w.release()
    broken = write_clip(tmp_path / "broken.mp4", 300)
    damage(broken, 0.0)
    r = dope_cli("--model", checkpoint_path, "--video", empty, "--json", out / "e.jsonl", "--output-dir", out,
                 "--max-proposals", PROPOSALS, "-q")
    line = error_line(r)
    assert "empty.avi" in line and "no frame" in line and "nothing was written" in line
    r = dope_cli("--model", checkpoint_path, "--video", broken, "--json", out / "b.jsonl", "--output-dir", out,
                 "--max-proposals", PROPOSALS, "-q")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "broken.mp4" in r.stderr.splitlines()[-1] and "announces 300 frames" in r.stderr.splitlines()[-1]
    assert os.listdir(out) == []


# ------------------------------------------------------------------------------- 14. duplicates


def test_links_and_loops_give_each_image_once(tmp_path):
    trip = tmp_path / "trip"
    save_image(trip / "a" / "x.jpg")
    save_image(trip / "b" / "y.jpg")
    (trip / "a" / "loop").symlink_to("..")  # trip/a/loop/a/loop/... : a loop that ** follows
    (trip / "b" / "again.jpg").symlink_to(trip / "a" / "x.jpg")
    os.link(trip / "b" / "y.jpg", trip / "b" / "hard.jpg")
    found = expand_images([str(trip / "**" / "*.jpg")])
    assert found == [str(trip / "a" / "x.jpg"), str(trip / "b" / "hard.jpg")] or found == [
        str(trip / "a" / "x.jpg"), str(trip / "b" / "y.jpg")]
    assert len(found) == 2
    # the same file named by several specs: once, at its first place
    assert expand_images([str(trip / "a" / "x.jpg"), str(trip / "a"), str(trip / "b" / "again.jpg")]) == [
        str(trip / "a" / "x.jpg")]


# ------------------------------------------------------------------------------- 15. SIGTERM


def test_sigterm_during_a_run_keeps_what_was_written_and_leaves_no_temporary_file(checkpoint_path, tmp_path):
    clip = write_clip(tmp_path / "long.mp4", 40, (160, 120))
    out = tmp_path / "frames.jsonl"
    # SIGTERM right after the second record (tests/conftest.py: interrupted), whatever the machine's speed
    p = subprocess.run([sys.executable, os.path.join(ROOT, "dope.py"), "--model", checkpoint_path, "--video", clip,
                        "--json", out, "--max-proposals", PROPOSALS], capture_output=True, text=True, timeout=600,
                       env=interrupted("line", 2, "TERM"))
    err = p.stderr
    assert p.returncode == 143, err
    assert "terminated" in err and "Traceback" not in err
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert 2 <= len(records) < 40 and [d["frame"] for d in records] == list(range(len(records)))
    assert (tmp_path / f"long.mp4_{MODEL}.mp4").is_file()
    assert hidden(tmp_path) == []


class Handler(BaseHTTPRequestHandler):
    routes: dict = {}

    def do_GET(self):
        route = self.server.routes.get(self.path)
        if route is None:
            return self.send_error(404)
        try:
            route(self)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def send_body(self, data: bytes, announced: int | None = None, every_s: float = 0.0, step: int = 0):
        self.send_response(200)
        self.send_header("Content-Length", str(len(data) if announced is None else announced))
        self.end_headers()
        if not every_s:
            self.wfile.write(data)
            return
        for i in range(0, len(data), step):
            self.wfile.write(data[i:i + step])
            self.wfile.flush()
            if self.server.stop.wait(every_s):
                return

    def log_message(self, *args):
        pass


class serve:
    """A local HTTP server on 127.0.0.1 for `routes[path] = function(handler)`; the base URL."""

    def __init__(self, routes):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.routes = routes
        self.server.stop = threading.Event()

    def __enter__(self) -> str:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc):
        self.server.stop.set()
        self.server.shutdown()
        self.server.server_close()


def test_sigterm_during_a_download_leaves_nothing(tmp_path, fixture_image):
    models = tmp_path / "models"
    models.mkdir()
    trickle = {"/s/DOPE_v1_0_0.pth.tgz": lambda h: h.send_body(b"\0" * 1_000_000, every_s=0.05, step=1000)}
    with serve(trickle) as url:
        # SIGTERM after the first chunk is written (tests/conftest.py: interrupted)
        env = interrupted("download", 1, "TERM", env={**os.environ, "DOPE_MODELS": str(models),
                                                      "DOPE_DOWNLOAD_URL": f"{url}/s"})
        p = subprocess.run([sys.executable, os.path.join(ROOT, "dope.py"), "--model", "DOPE_v1_0_0", "--image",
                            fixture_image, "--no-overlay", "--json", str(tmp_path / "o.jsonl")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    err = p.stderr
    assert p.returncode == 143, err
    assert "terminated" in err and "run the same command again" in err and "Traceback" not in err
    assert os.listdir(models) == []


# ------------------------------------------------------------------------------- 16. downloads


def test_a_trickling_server_fails_within_the_deadline(tmp_path, monkeypatch):
    routes = {
        # a byte every 0.2 s: no single read times out, the whole would take hours
        "/trickle/DOPE_v1_0_0.pth.tgz": lambda h: h.send_body(b"\0" * 100_000, every_s=0.2, step=1),
        # a byte every 20 s: each read waits longer than what is left of the deadline
        "/stall/DOPE_v1_0_0.pth.tgz": lambda h: h.send_body(b"\0" * 100, every_s=20, step=1),
    }
    with serve(routes) as url:
        for case in ("trickle", "stall"):
            models = tmp_path / case
            monkeypatch.setenv("DOPE_DOWNLOAD_TIMEOUT", "1.5")
            start = time.monotonic()
            late = r"did not finish within 1.5 s \(set DOPE_DOWNLOAD_TIMEOUT=SECONDS to allow more\)"
            with pytest.raises(weights.DownloadError, match=late):
                weights.fetch_checkpoint("DOPE_v1_0_0", str(models), f"{url}/{case}", progress=False)
            # far below what the server would take (hours; 20 s for a single byte of "stall"), with a
            # margin for a loaded machine: not a race, the deadline is the only way to end this soon
            assert time.monotonic() - start < 15.0, case
            assert os.listdir(models) == []
    monkeypatch.setenv("DOPE_DOWNLOAD_TIMEOUT", "soon")
    with pytest.raises(weights.DownloadError, match="DOPE_DOWNLOAD_TIMEOUT='soon' is not a positive number"):
        weights.fetch_checkpoint("DOPE_v1_0_0", str(tmp_path / "x"), "http://127.0.0.1:9", progress=False)


def test_pinned_hash_refuses_a_swapped_file(tmp_path, monkeypatch, checkpoint_path):
    data = open(checkpoint_path, "rb").read()
    right = hashlib.sha256(data).hexdigest()
    with serve({"/m/DOPE_v1_0_0.pth.tgz": lambda h: h.send_body(data)}) as url:
        monkeypatch.setitem(weights.OFFICIAL_SHA256, "DOPE_v1_0_0", "0" * 64)  # what a swapped file would give
        models = tmp_path / "models"
        with pytest.raises(weights.DownloadError, match=f"SHA-256 is {right}, not the 0000"):
            weights.fetch_checkpoint("DOPE_v1_0_0", str(models), f"{url}/m", progress=False)
        assert os.listdir(models) == []
        monkeypatch.setitem(weights.OFFICIAL_SHA256, "DOPE_v1_0_0", right.upper())
        path = weights.fetch_checkpoint("DOPE_v1_0_0", str(models), f"{url}/m", progress=False)
        assert open(path, "rb").read() == data and hidden(models) == []
    assert set(weights.OFFICIAL_SHA256) == set(weights.KNOWN_MODELS)
