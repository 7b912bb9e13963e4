"""Writing outputs safely: the one helper through which every file this project writes goes.

    check_output_path(path, inputs)   before any work: where `path` leads, or OutputError (one line)
    open_output(path, mode)           an `Output`: staged, then put in place by `commit()`
    atomic_write(path, data)          the two above for a file written at once
    OutputGuard(inputs)               the outputs of one run: never an input, never the same path twice

What a target becomes (`resolve_output`):

- a regular file, or a name that does not exist yet: written under a hidden staging name in the
  same folder (`staging_path`), then renamed over the target, so readers see the old file or the
  new one, never half of it; an interrupted or failed write leaves the old file as it was.
- a symbolic link: followed; the staged file is renamed over the file the link points to, so the
  link stays a link (a dangling link is created at its target).
- a FIFO, a character device (/dev/null, a terminal) or this process's standard output or error
  (`-`, /dev/stdout): written in place, in order, never replaced. A writer that needs a seekable
  file (a video) stages in the temporary folder and copies there at the end.
- a folder, a block device (a disk), a socket, or a path through a file: refused, one line.

Outputs are also refused when they are one of the run's inputs (images, video, checkpoint, saved
detections), compared by real path and by inode (hard links), so that no input is overwritten.
"""
from __future__ import annotations

import errno
import io
import logging
import os
import secrets
import shutil
import stat
import sys
import tempfile
from dataclasses import dataclass
from typing import IO, Any, Iterable, Optional

from dope.errors import DopeError

log = logging.getLogger(__name__)

STDOUT = "-"  # the output name for standard output


class OutputError(DopeError, OSError):
    """An output that cannot or must not be written; the message names it and says what to do."""


def cache_dir() -> str:
    """Where DOPE keeps what it fetches when installed (models/): $DOPE_CACHE, else
    $XDG_CACHE_HOME/dope, else ~/.cache/dope."""
    if os.environ.get("DOPE_CACHE"):
        return os.environ["DOPE_CACHE"]
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "dope")


def staging_path(path: str, suffix: str = ".tmp") -> str:
    """A fresh hidden name beside `path` (same folder, so that os.replace onto `path` is atomic):
    `.NAME.<random><suffix>`. Create it with open(..., "xb"): it then follows the umask."""
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}.{secrets.token_hex(4)}{suffix}")


def describe_kind(path: str) -> str:
    """What a path that is not a regular file is, for messages: 'a folder', 'a FIFO', 'a character
    device', ...; 'missing' when nothing is there, 'a file' for a regular file."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "a broken symbolic link" if os.path.islink(path) else "missing"
    except OSError as e:
        return f"unreadable ({e.strerror})"
    for test, what in ((stat.S_ISREG, "a file"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device (a disk)"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return what
    return "not a regular file"


def output_name(model: str, postprocess: str = "ppi", assign: str = "nearest") -> str:
    """The model part of output names: the model's name, then each setting that is not the default
    (`M`, `M_nms`, `M_unique`, `M_nms_unique`), so that runs with other settings do not overwrite
    each other's drawings. Filters (min score, people, parts) do not change the name."""
    return "_".join([model] + [v for v, default in ((postprocess, "ppi"), (assign, "nearest")) if v != default])


def reason(e: OSError) -> str:
    """An OSError as a short reason with what to do, for one-line messages."""
    hint = {errno.ENOSPC: "free some space or write elsewhere", errno.EDQUOT: "free some space or write elsewhere",
            errno.EROFS: "write elsewhere", errno.EACCES: "check the permissions or write elsewhere",
            errno.EPERM: "check the permissions or write elsewhere"}.get(e.errno or 0)
    text = e.strerror or str(e) or type(e).__name__
    return f"{text.lower()}; {hint}" if hint else text


@dataclass(frozen=True)
class Target:
    """Where an output leads. path: as given (absolute, or '-'); final: where the bytes land (the
    path, or the file a symlink points to); in_place: written directly (FIFO, device, stdout)
    rather than staged and renamed; stream: 'stdout'/'stderr' when it is this process's own."""
    path: str
    final: str
    in_place: bool
    stream: Optional[str] = None


def resolve_output(path: str | os.PathLike) -> Target:
    """Where writing `path` leads (see the module docstring); OutputError for what is refused."""
    path = os.fspath(path)
    if path == STDOUT:
        return Target(STDOUT, STDOUT, True, "stdout")
    path = os.path.abspath(path)
    try:
        st: Optional[os.stat_result] = os.stat(path)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise OutputError(f"cannot write {path!r}: {_file_in_the_way(path)!r} is a file, not a folder; "
                          "give a path inside a folder") from None
    except OSError as e:
        raise OutputError(f"cannot write {path!r}: {reason(e)}") from None
    if st is None:
        # Nothing there, or a dangling symlink: then its target is created, the link stays.
        final = os.path.realpath(path) if os.path.islink(path) else path
        return Target(path, final, False)
    mode = st.st_mode
    if stat.S_ISREG(mode):
        final = os.path.realpath(path)
        if not os.path.exists(final) or not os.path.samefile(final, path):
            raise OutputError(f"cannot write {path!r}: cannot tell which file it leads to; give a plain file path")
        return Target(path, final, False)
    if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
        for fd, name in ((1, "stdout"), (2, "stderr")):
            try:
                if os.path.samestat(st, os.fstat(fd)):
                    return Target(path, path, True, name)
            except OSError:
                pass
        return Target(path, path, True)
    if stat.S_ISDIR(mode):
        raise OutputError(f"cannot write {path!r}: it is a folder; give a file name")
    raise OutputError(f"cannot write {path!r}: it is {describe_kind(path)}, which is never written to; "
                      "give a file name")


def _file_in_the_way(path: str) -> str:
    """The first component of `path` that exists and is not a folder (`path` itself if none)."""
    current = os.sep
    for part in path.split(os.sep)[1:-1]:
        current = os.path.join(current, part)
        if os.path.exists(current) and not os.path.isdir(current):
            return current
    return path


def _existing_folder(folder: str) -> str:
    """The nearest folder at or above `folder` that exists; OutputError if a file is in the way."""
    while not os.path.isdir(folder):
        if os.path.exists(folder):
            raise OutputError(f"cannot write into {folder!r}: it is {describe_kind(folder)}, not a folder; "
                              "give another folder")
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return folder


def probe_folder(folder: str, *, create: bool = False) -> None:
    """Check that files can be written in `folder` (by writing and removing a one-byte hidden file),
    or, when `create`, in the nearest existing folder above it; OutputError (one line) otherwise:
    read-only, no permission, no space left."""
    folder = os.path.abspath(folder)
    if not os.path.isdir(folder):
        if os.path.exists(folder):
            raise OutputError(f"cannot write into {folder!r}: it is {describe_kind(folder)}, not a folder; "
                              "give another folder")
        if not create:
            raise OutputError(f"cannot write into {folder!r}: the folder does not exist; create it first")
        folder = _existing_folder(folder)
    probe = staging_path(os.path.join(folder, "probe"), ".probe")
    try:
        with open(probe, "xb") as f:
            f.write(b"\0")  # one byte: a full disk fails here, not only a read-only one
    except OSError as e:
        if os.path.exists(probe):
            os.unlink(probe)
        raise OutputError(f"cannot write into {folder!r}: {reason(e)}") from None
    os.unlink(probe)


def make_folder(folder: str, *, option: str = "folder") -> None:
    """Create `folder` (and its parents) if missing and check that it can be written (`probe_folder`);
    OutputError (one line naming `option`) when it is a file, lies below a file, or cannot be made."""
    folder = os.path.abspath(folder)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise OutputError(f"{option} {folder!r} is {describe_kind(folder)}, not a folder; give a folder "
                          "(it is made if missing)")
    in_the_way = _file_in_the_way(os.path.join(folder, "x"))
    if in_the_way != os.path.join(folder, "x"):
        raise OutputError(f"cannot create {option} {folder!r}: {in_the_way!r} is a file, not a folder; "
                          "give another folder")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create {option} {folder!r}: {reason(e)}") from None
    probe_folder(folder)


class OutputGuard:
    """The outputs of one run: refuses any that is one of the run's `inputs` (by real path and by
    inode), and never hands out the same output path twice (a later one gets a `-2`, `-3`... name).

    inputs: paths read by the run; they need not exist (a checkpoint about to be downloaded).
    """

    def __init__(self, inputs: Iterable[str | os.PathLike] = ()) -> None:
        self._inputs: dict[str, str] = {}      # real path -> as given
        self._inodes: dict[tuple[int, int], str] = {}
        self._claimed: set[str] = set()
        self._probed: set[str] = set()
        for path in inputs:
            self.add_input(path)

    def add_input(self, path: str | os.PathLike) -> None:
        path = os.fspath(path)
        if path == STDOUT:
            return
        self._inputs.setdefault(os.path.realpath(path), path)
        try:
            st = os.stat(path)
        except OSError:
            return
        if stat.S_ISREG(st.st_mode):
            self._inodes.setdefault((st.st_dev, st.st_ino), path)

    def input_at(self, target: Target) -> Optional[str]:
        """The input that writing `target` would overwrite, or None."""
        if target.stream is not None:
            return None
        hit = self._inputs.get(os.path.realpath(target.final))
        if hit is None and not target.in_place:
            try:
                st = os.stat(target.final)
                hit = self._inodes.get((st.st_dev, st.st_ino))
            except OSError:
                pass
        return hit

    def check(self, path: str | os.PathLike, *, option: str = "output", create_folders: bool = False) -> Target:
        """Where `path` leads, after checking that it may be written: not an input, not refused by
        `resolve_output`, its folder writable (probed once per folder; with `create_folders`, the
        nearest existing folder above it). OutputError naming `option` otherwise."""
        target = resolve_output(path)
        hit = self.input_at(target)
        if hit is not None:
            raise OutputError(f"{option} {os.fspath(path)!r} would overwrite an input of this run ({hit!r}); "
                              "choose another path")
        if not target.in_place:
            folder = os.path.dirname(target.final)
            if folder not in self._probed:
                probe_folder(folder, create=create_folders)
                self._probed.add(folder)
        return target

    def claim(self, path: str | os.PathLike, *, option: str = "output") -> str:
        """`path`, checked (see `check`) and recorded as written by this run; if this run wrote it
        already, the first free `NAME-2.EXT`, `NAME-3.EXT`... instead, with a warning."""
        path = os.fspath(path)
        target = self.check(path, option=option, create_folders=True)
        if target.in_place:
            return path
        key, candidate, n = os.path.realpath(target.final), path, 1
        while key in self._claimed:
            n += 1
            root, ext = os.path.splitext(path)
            candidate = f"{root}-{n}{ext}"
            key = os.path.realpath(self.check(candidate, option=option, create_folders=True).final)
        if candidate != path:
            log.warning("%s was already written by this run: writing %s instead", path, candidate)
        self._claimed.add(key)
        return candidate


def check_output_path(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = (), *,
                      option: str = "output", create_folders: bool = False) -> Target:
    """Where `path` leads, or OutputError (one line naming `option` and the path) when it must not
    or cannot be written: one of `inputs`, a folder, a disk, a folder that is missing or read-only."""
    return OutputGuard(inputs).check(path, option=option, create_folders=create_folders)


class Output:
    """One output being written; make it with `open_output`.

    Write with `write(data)` (or into `file` directly; into `name` for writers that open a file by
    name); then `commit()` puts it in place, or `discard()` leaves the target as it was. As a
    context manager: commit on leaving normally, discard on any exception (Ctrl-C included).

    Attributes: path (as given, absolute), final (where it lands), name (the file being written:
    the staging file, or the target itself when written in place), file (None when mode is None).
    """

    def __init__(self, target: Target, mode: Optional[str], suffix: str, seekable: bool,
                 staging: Optional[str] = None) -> None:
        self.target, self.path, self.final = target, target.path, target.final
        self.closed = False
        self.file: Optional[IO[Any]] = None
        self._copy_to: Optional[str] = None  # an in-place target that gets the staged file at commit
        if target.in_place and mode is not None and not seekable:
            self.staged: Optional[str] = None
            self.name = target.path
            self.file = self._open_in_place(mode)
            return
        if target.in_place:
            # A writer that needs a real file (seeks, or opens the name itself): stage in the
            # temporary folder, never beside a device, and copy into the target at the end.
            self._copy_to = target.path
            self.staged = os.path.join(tempfile.gettempdir(), os.path.basename(staging_path(target.path, suffix)))
        else:
            folder = os.path.dirname(target.final)
            if not os.path.isdir(folder):
                raise OutputError(f"cannot write {self.path!r}: the folder {folder!r} "
                                  f"{'does not exist' if not os.path.exists(folder) else 'is not a folder'}; "
                                  "create it or give another path")
            self.staged = staging or staging_path(target.final, suffix)
        self.name = self.staged
        try:
            # a fixed staging name (--resume's partial file, left by a killed run) is replaced; a fresh one is new
            self.file = open(self.staged, "wb" if staging and not target.in_place else "xb")
        except OSError as e:
            raise OutputError(f"cannot write {self.path!r}: {reason(e)}") from None
        if mode is None:
            self.file.close()  # reserved: the writer opens the name itself
            self.file = None
        elif "b" not in mode:
            self.file = io.TextIOWrapper(self.file, encoding="utf-8")

    def _open_in_place(self, mode: str) -> IO[Any]:
        if self.target.stream is not None:
            stream = getattr(sys, self.target.stream)
            stream.flush()  # what was printed before comes first
            buffer = stream.buffer
            return buffer if "b" in mode else io.TextIOWrapper(buffer, encoding="utf-8", write_through=True)
        try:
            if "b" in mode:
                return open(self.target.path, "wb")
            return open(self.target.path, "w", encoding="utf-8")
        except OSError as e:
            raise OutputError(f"cannot write {self.path!r}: {reason(e)}") from None

    def write(self, data: bytes | str) -> None:
        """Write to the file; OutputError (full disk, device error...) naming the output."""
        assert self.file is not None, "opened with mode=None: write into .name"
        try:
            self.file.write(data)
        except OSError as e:
            raise OutputError(f"cannot write {self.path!r}: {reason(e)}") from None

    def flush(self) -> None:
        assert self.file is not None
        try:
            self.file.flush()
        except OSError as e:
            raise OutputError(f"cannot write {self.path!r}: {reason(e)}") from None

    def _close_file(self) -> None:
        f, self.file = self.file, None
        if f is None:
            return
        if self.target.stream is not None:
            f.flush()
            if isinstance(f, io.TextIOWrapper):
                f.detach()  # the process's own stream stays open
        else:
            f.close()

    def commit(self) -> None:
        """Put the output in place: rename the staged file over the target (or copy it into an in-place
        one). OutputError (the target left as it was, nothing left behind) when that fails."""
        if self.closed:
            return
        self.closed = True
        try:
            self._close_file()
            if self.staged is not None:
                if self._copy_to is not None:
                    with open(self.staged, "rb") as src, open(self._copy_to, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                    os.unlink(self.staged)
                else:
                    os.replace(self.staged, self.final)
        except OSError as e:
            self._remove_staged()
            raise OutputError(f"cannot write {self.path!r}: {reason(e)}") from None

    def discard(self, keep_as: Optional[str] = None) -> Optional[str]:
        """Leave the target as it was. What was staged is removed, or renamed to `keep_as` when given
        (and not something other than a regular file); returns where it was kept, or None."""
        if self.closed:
            return None
        self.closed = True
        try:
            self._close_file()
        except OSError:
            pass
        if self.staged is None or not os.path.exists(self.staged):
            return None
        if keep_as is not None and self._copy_to is None and _replaceable(keep_as):
            try:
                os.replace(self.staged, keep_as)
                return keep_as
            except OSError:
                pass
        self._remove_staged()
        return None

    def _remove_staged(self) -> None:
        if self.staged is not None:
            try:
                os.unlink(self.staged)
            except FileNotFoundError:
                pass

    def __enter__(self) -> "Output":
        return self

    def __exit__(self, exc_type: Optional[type], exc: Optional[BaseException], tb: Any) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def _replaceable(path: str) -> bool:
    """Whether a side file (a partial output) may be renamed over `path`: nothing there, or a regular file."""
    return not os.path.lexists(path) or (os.path.isfile(path) and not os.path.islink(path))


def open_output(path: str | os.PathLike, mode: Optional[str] = "wb", *, suffix: str = ".tmp",
                seekable: bool = False, staging: Optional[str] = None) -> Output:
    """Start writing the output `path` (see the module docstring for what each kind of target gets).

    mode: 'wb' (bytes), 'w' (UTF-8 text), or None to only reserve a staging name that the writer
        opens itself (`Output.name`, e.g. for cv2.VideoWriter); suffix: the staging name's ending
        (keep the extension when a writer picks its format by name); seekable: the writer needs a
        real file, even when the target is a FIFO or a device; staging: a fixed staging name beside
        the target instead of a fresh hidden one (it survives a kill, for `--resume`), replaced if it exists.
    Raises OutputError when the target is refused or cannot be created.
    """
    return Output(resolve_output(path), mode, suffix, seekable or mode is None, staging)


def atomic_write(path: str | os.PathLike, data: bytes | str) -> None:
    """Write a whole file so that readers see either the old content or the new, never half of it
    (in place for FIFOs and devices). OutputError on failure, the target left as it was."""
    with open_output(path, "wb") as out:
        out.write(data.encode() if isinstance(data, str) else data)


def write_image(path: str | os.PathLike, image_bgr: Any) -> None:
    """Encode a BGR uint8 image by the path's extension (.jpg when it has none) and write it
    atomically; OutputError when it cannot be encoded or written."""
    import cv2  # here, not at the top: this module is imported by `--help`, which needs no OpenCV
    path = os.fspath(path)
    ext = os.path.splitext(path)[1] or ".jpg"
    ok, buf = cv2.imencode(ext, image_bgr)
    if not ok:
        raise OutputError(f"cannot encode an image as {ext!r} for {path!r}")
    atomic_write(path, buf.tobytes())


def output_path(image: str, model: str, output_dir: Optional[str], suffix: str = ".jpg",
                base: Optional[str] = None) -> str:
    """`X_M.jpg` for input X and model M: beside X, or in `output_dir`.

    With `base` (the folder the inputs were named from, see `sources.common_base`), an image in a
    sub-folder of it gets the same sub-folder under `output_dir`: `trip/day1/X` with base `trip`
    gives `output_dir/day1/X_M.jpg`, so that same-named images of different folders do not collide.
    """
    name = f"{os.path.basename(image)}_{model}{suffix}"
    if not output_dir:
        return os.path.join(os.path.dirname(os.path.abspath(image)), name)
    if base:
        rel = os.path.relpath(os.path.dirname(os.path.abspath(image)), os.path.abspath(base))
        if rel != os.curdir and not rel.startswith(os.pardir):
            return os.path.join(output_dir, rel, name)
    return os.path.join(output_dir, name)
