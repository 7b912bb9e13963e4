"""Where images come from: image files, folders, glob patterns, video files and cameras.

Images are decoded with Pillow, turned upright by their EXIF orientation and converted to RGB
whatever their mode (L, LA, P, RGBA, CMYK, I;16, ...). Videos and cameras are read with OpenCV,
frames converted from BGR to RGB.

A stream of inputs is an iterator of `(Item, pixels)`: the Item says where the image comes from
(file, or video frame with its time), the pixels are uint8[H, W, 3] RGB, or the `ImageError` of a
file that could not be decoded, so that the consumer decides whether to skip it. `prefetch` runs
such an iterator in a background thread, a bounded number of items ahead.
"""
from __future__ import annotations

import glob
import logging
import math
import os
import queue
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Optional, TypeVar, Union

import cv2
import numpy as np
from PIL import Image, ImageOps

from dope.files import describe_kind

log = logging.getLogger(__name__)

# What a folder or a glob pattern contributes: files with these extensions (any case). Others
# (.txt, .json, .mp4...) are ignored; an image extension on a file that does not decode is an error.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".dib", ".gif", ".tif",
                              ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".jp2"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".avi", ".mov", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv"})
# Images longer than this many times their width (or the reverse) cannot go through the network
# (resizing the long side to its input size leaves 0 pixels for the short one) and hold nobody
# anyway: they are refused as unreadable, one line each. Up to 100, the short side keeps at least
# max_size / 100 pixels (5 for the smallest input size in use).
MAX_ASPECT_RATIO = 100
# A video that decodes fewer frames than it announces, by more than this share, is reported as
# truncated or damaged (containers estimate their frame count; a few frames off is normal).
TRUNCATED_SHARE = 0.02


class SourceError(ValueError):
    """An input that cannot be used (missing file, folder without images, video that does not open);
    the message names it."""


class ImageError(SourceError):
    """An image that cannot be read; the message names the file."""


def to_rgb(image: Image.Image, *, in_place: bool = False) -> Image.Image:
    """An upright RGB copy of a Pillow image; with in_place, `image` itself when it is upright RGB
    already (for a decoded file: no full-size copy, which matters for 12000x12000 images)."""
    if in_place:
        ImageOps.exif_transpose(image, in_place=True)
    else:
        image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit and float greys: scale to 8 bits over the type's range rather than clipping.
        a = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") else max(a.max(), 1.0)
        image = Image.fromarray(np.clip(a / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if image.mode in ("LA", "PA", "P") or "transparency" in image.info:
        image = image.convert("RGBA")
    return image if in_place and image.mode == "RGB" else image.convert("RGB")


def check_image(path: str | os.PathLike) -> None:
    """ImageError, as load_image would raise it, for a file that is not an image it can use, found
    from the file's header alone (quick: for inputs checked before the model loads)."""
    _read_image(path, header_only=True)


def load_image(path: str | os.PathLike) -> np.ndarray:
    """uint8[H, W, 3] RGB pixels of an image file.

    Raises ImageError (one line naming the file) for anything that cannot be used: missing, not a
    regular file, empty, undecodable, a decompression bomb (over twice Pillow's MAX_IMAGE_PIXELS),
    or too thin for the network (a side longer than MAX_ASPECT_RATIO times the other: 1x3000).
    """
    pixels = _read_image(path, header_only=False)
    assert pixels is not None
    return pixels


def _read_image(path: str | os.PathLike, header_only: bool) -> Optional[np.ndarray]:
    """load_image's checks and decoding; header_only: stop once the size is known (None)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ImageError(f"image {path!r} does not exist")
    if not os.path.isfile(path):
        raise ImageError(f"{path!r} is {describe_kind(path)}, not an image file")
    if os.path.getsize(path) == 0:
        raise ImageError(f"image {path!r} is empty")
    try:
        # Pillow warns (a Python warning of two lines) between its limit and twice it, and
        # raises above: say it once, here. catch_warnings is process-wide; the worst a race with
        # another thread does is let one such warning through.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                _check_shape(path, im.size)
                if header_only:
                    return None
                if Image.MAX_IMAGE_PIXELS and im.size[0] * im.size[1] > Image.MAX_IMAGE_PIXELS:
                    log.info("%s is %dx%d pixels, a large image: decoding it takes a while", path, *im.size)
                im.load()
                pixels = np.asarray(to_rgb(im, in_place=True))  # upright RGB without full-size copies
        # Writable, as callers may draw on it (np.asarray of a PIL image is read-only); copied after
        # the image is closed, so that no more than two full-size buffers ever exist at once.
        return pixels if pixels.flags.writeable else np.array(pixels)
    except ImageError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageError(f"image {path!r} is refused as a possible decompression bomb ({e}); shrink it "
                         "first") from None
    except MemoryError:
        raise ImageError(f"image {path!r} is too large to decode in the memory available; shrink it first") from None
    except Exception as e:  # noqa: BLE001 - decoders of untrusted files raise many types; each is one skip
        raise ImageError(f"cannot decode image {path!r}: {e or type(e).__name__}") from None


def _check_shape(path: str, size: tuple[int, int]) -> None:
    width, height = size
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise ImageError(f"image {path!r} is {width}x{height} pixels: too thin to detect anyone in (a side may be "
                         f"at most {MAX_ASPECT_RATIO} times the other); crop or pad it")


# ------------------------------------------------------------------------------------ image files


def has_image_extension(path: str | os.PathLike) -> bool:
    return os.path.splitext(os.fspath(path))[1].lower() in IMAGE_EXTENSIONS


def is_earlier_output(path: str) -> bool:
    """Whether `path` looks like a drawing written by an earlier run: `X_<anything>.jpg` beside an image X.

    Outputs are named `X_M.jpg` (and `X_M_visu3d.jpg`) after their input X, extension included, so a
    file whose name starts with another image's full name and `_` is one.
    """
    folder, name = os.path.split(path)
    if not name.lower().endswith(".jpg"):
        return False
    for k, c in enumerate(name):
        if c == "_" and 0 < k and has_image_extension(name[:k]) and os.path.isfile(os.path.join(folder, name[:k])):
            return True
    return False


def _folder_or_pattern(spec: str, among: Callable[[Iterable[str]], list[str]], kind: str,
                       extensions: Iterable[str]) -> Optional[list[str]]:
    """The files of `kind` that a folder (not its sub-folders) or a glob pattern names, picked by
    `among`; None when `spec` is neither; SourceError when it names none."""
    if os.path.isdir(spec):
        found = among(os.path.join(spec, name) for name in os.listdir(spec))
        if not found:
            raise SourceError(f"folder {spec!r} holds no {kind}s ({', '.join(sorted(extensions))})")
        return found
    if glob.has_magic(spec) and not os.path.lexists(spec):
        matches = [m for m in glob.glob(any_case_extension(spec), recursive=True) if os.path.isfile(m)]
        found = among(matches)
        if not found:
            raise SourceError(f"{'no ' + kind if matches else 'no file'} matches {spec!r}")
        return found
    return None


def expand_images(specs: Iterable[str | os.PathLike]) -> list[str]:
    """The image files that `specs` name, in order, each once (a file reached twice, by a symlink,
    a hard link or a symlink loop inside a `**` pattern, is kept once, by its shortest name).

    A file is taken as is. A folder gives its images (not those of sub-folders) sorted by name; a
    glob pattern (`*`, `?`, `[...]`; `**` crosses folders) gives the image files it matches, sorted,
    its extension matched without regard to case (`*.jpg` takes `B.JPG`, as a folder does).
    Folders and patterns skip files without an image extension (IMAGE_EXTENSIONS), files that are
    not regular files (FIFOs, devices) and drawings of earlier runs (`is_earlier_output`); whether
    an image decodes is found out when it is read.
    Raises SourceError for a missing, empty or special file and for a folder or pattern without images.
    """
    paths: list[str] = []
    for spec in map(os.fspath, specs):
        if os.path.isfile(spec):
            if os.path.getsize(spec) == 0:
                raise ImageError(f"image {spec!r} is empty")
            paths.append(spec)
        elif (found := _folder_or_pattern(spec, _images_among, "image", IMAGE_EXTENSIONS)) is not None:
            paths += found
        elif os.path.lexists(spec):
            raise ImageError(f"{spec!r} is {describe_kind(spec)}, not an image file")
        else:
            raise ImageError(f"image {spec!r} does not exist")
    # One name per file (by device and inode: symlinks and hard links to it too): the shortest
    # (fewest folders, then first by name), in the order of first appearance.
    best: dict[tuple[int, int], str] = {}
    keys = [_file_key(p) for p in paths]
    for key, path in zip(keys, paths):
        if key not in best or (path.count(os.sep), path) < (best[key].count(os.sep), best[key]):
            best[key] = path
    unique = list(dict.fromkeys(best[k] for k in keys))
    if len(unique) < len(paths):
        log.info("%d image%s named more than once (or reached through links) %s read once",
                 len(paths) - len(unique), "s" if len(paths) - len(unique) > 1 else "",
                 "are" if len(paths) - len(unique) > 1 else "is")
    return unique


def any_case_extension(pattern: str) -> str:
    """A glob pattern whose file extension matches in any case: `shots/**/*.jpg` -> `shots/**/*.[jJ][pP][gG]`.

    Only a plain extension (letters and digits after the last dot of the last component) is
    rewritten; a pattern without one, or with magic in it (`*.jp*`), is left as it is.
    """
    folder, name = os.path.split(pattern)
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or not ext.isalnum():
        return pattern
    return os.path.join(folder, f"{stem}.{''.join(f'[{c.lower()}{c.upper()}]' if c.isalpha() else c for c in ext)}")


def _file_key(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def common_base(specs: Iterable[str | os.PathLike]) -> Optional[str]:
    """The folder that `specs` (as `expand_images` takes them) are named from: a file's folder, a
    folder itself, a pattern's fixed part (`trip` for `trip/**/*.jpg`); for several, the folder
    that holds all of theirs. Drawings in --output-dir keep the sub-folders below it."""
    bases = []
    for spec in map(os.fspath, specs):
        if os.path.isdir(spec):
            bases.append(spec)
        elif glob.has_magic(spec) and not os.path.lexists(spec):
            fixed = []
            for part in spec.split(os.sep):
                if glob.has_magic(part):
                    break
                fixed.append(part)
            bases.append(os.sep.join(fixed) or (os.sep if spec.startswith(os.sep) else os.curdir))
        else:
            bases.append(os.path.dirname(spec) or os.curdir)
    if not bases:
        return None
    return os.path.commonpath([os.path.abspath(b) for b in bases])


def _images_among(paths: Iterable[str]) -> list[str]:
    """The image files among `paths`, sorted; other files are logged at DEBUG."""
    images, outputs = [], 0
    for path in sorted(paths):
        if not os.path.isfile(path):
            continue
        if not has_image_extension(path):
            log.debug("ignoring %s: not an image extension", path)
        elif is_earlier_output(path):
            outputs += 1
            log.debug("ignoring %s: a drawing of an earlier run", path)
        else:
            images.append(path)
    if outputs:
        log.info("ignoring %d drawing%s of earlier runs (IMAGE_MODEL.jpg beside IMAGE)", outputs,
                 "s" if outputs > 1 else "")
    return images


# -------------------------------------------------------------------------------------------- items


@dataclass(frozen=True)
class Item:
    """Where one image of a stream comes from.

    index: 0-based position in the stream (for a video, the frame number).
    name: the image file, the video file, `cameraN` for camera N; None for an in-memory image.
    frame: the frame number for a video frame, None for an image.
    time_s: a video frame's time from the start of the video in seconds (for a camera: since its
        first frame), None for an image.
    """
    index: int
    name: Optional[str] = None
    frame: Optional[int] = None
    time_s: Optional[float] = None


def read_images(images: Iterable[Any]) -> Iterator[tuple[Item, Any]]:
    """(Item, pixels) for each image: paths are decoded to RGB uint8[H, W, 3] (an `ImageError` in
    place of the pixels when that fails), PIL images converted to RGB, arrays passed as they are."""
    for index, image in enumerate(images):
        if isinstance(image, (str, os.PathLike)):
            name = os.fspath(image)
            try:
                pixels: Any = load_image(name)
            except ImageError as e:
                pixels = e
            yield Item(index, name), pixels
        elif isinstance(image, Image.Image):
            yield Item(index, getattr(image, "filename", None) or None), np.array(to_rgb(image))
        else:
            yield Item(index), image


# ------------------------------------------------------------------------------------------- videos


def expand_videos(specs: Iterable[str | os.PathLike]) -> list[str]:
    """The video files that `specs` name, in order, each once (as `expand_images` does for images):
    a file as is; a folder, its videos (VIDEO_EXTENSIONS, not those of sub-folders) sorted by name;
    a glob pattern (`**` crosses folders), the video files it matches, sorted, extension in any case.
    Folders and patterns skip annotated videos of earlier runs (`X_<model>.mp4` beside a video X).
    Raises SourceError for a missing file and for a folder or pattern without videos."""
    paths: list[str] = []
    for spec in map(os.fspath, specs):
        if os.path.isfile(spec) or _is_stream(spec):
            paths.append(spec)
        elif (found := _folder_or_pattern(spec, _videos_among, "video", VIDEO_EXTENSIONS)) is not None:
            paths += found
        elif os.path.lexists(spec):
            raise SourceError(f"{spec!r} is {describe_kind(spec)}, not a video file")
        else:
            raise SourceError(f"video {spec!r} does not exist")
    seen: set[tuple[int, int]] = set()
    unique = []
    for path in paths:  # one name per file (links to it too), the first given
        key = _file_key(path) if os.path.exists(path) else (0, hash(path))
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique


def _videos_among(paths: Iterable[str]) -> list[str]:
    """The video files among `paths`, sorted, without annotated videos of earlier runs."""
    videos = []
    for path in sorted(paths):
        folder, name = os.path.split(path)
        if not os.path.isfile(path) or os.path.splitext(name)[1].lower() not in VIDEO_EXTENSIONS:
            continue
        earlier = any(c == "_" and os.path.splitext(name[:k])[1].lower() in VIDEO_EXTENSIONS
                      and os.path.isfile(os.path.join(folder, name[:k])) for k, c in enumerate(name))
        if earlier:
            log.debug("ignoring %s: an annotated video of an earlier run", path)
        else:
            videos.append(path)
    return videos



def camera_or_path(video: str) -> Union[int, str]:
    """`--video` argument: a camera index when it is a number that is not a file, else a path."""
    return int(video) if video.isdigit() and not os.path.exists(video) else video


class Video:
    """The frames of a video file or a camera, read with OpenCV.

    Iterating gives (Item, RGB uint8[H, W, 3]) once per frame, in order, then releases the
    capture: a Video is read once. Use it as a context manager (or call close) to release it
    when it is not read to the end.

    source: a video file (whatever OpenCV reads: mp4, avi, mov, mkv...) or a camera index.
    start_s, end_s: only the frames whose time is in [start_s, end_s) (seconds from the start).
    every: only every Nth frame from the first one kept; rate: only about `rate` frames per second
        (the first frame at or after each multiple of 1 / rate from the first one kept). Frames
        left out are grabbed but not decoded into pixels (OpenCV's grab() without retrieve()), and
        the frames kept keep their true frame number and time.
    Attributes: name (the path, or `cameraN`); fps (frames per second as the file says, 0.0 when
    unknown); frame_count (None when unknown, as for cameras; an estimate for some files);
    expected_frames (the frames the selection keeps, estimated from those; None when unknown);
    frames_read (the frames decoded, once read to the end; a file that decodes far fewer than it
    announces is reported with a warning).
    Raises SourceError when the source does not exist or does not open, ValueError for a bad selection.
    """

    def __init__(self, source: Union[str, os.PathLike, int], *, start_s: Optional[float] = None,
                 end_s: Optional[float] = None, every: Optional[int] = None, rate: Optional[float] = None) -> None:
        if every is not None and rate is not None:
            raise ValueError("choose every or rate, not both")
        if (every is not None and every < 1) or (rate is not None and not rate > 0):
            raise ValueError("every must be at least 1 and rate positive")
        if start_s is not None and end_s is not None and end_s <= start_s:
            raise ValueError(f"the end ({end_s} s) must come after the start ({start_s} s)")
        self.start_s, self.end_s, self.every, self.rate = start_s, end_s, every, rate
        self.is_camera = isinstance(source, int)
        if self.is_camera:
            # OpenCV crashes (SIGSEGV) on some negative indexes rather than failing to open them.
            if isinstance(source, bool) or source < 0:
                raise SourceError(f"camera index must be 0 or more, got {source!r}")
            self.name = f"camera{source}"
        else:
            source = self.name = os.fspath(source)
            if not os.path.exists(source):
                raise SourceError(f"video {source!r} does not exist")
            if os.path.isdir(source) or not (os.path.isfile(source) or _is_stream(source)):
                raise SourceError(f"{source!r} is {describe_kind(source)}, not a video file")
        self._capture: Optional[cv2.VideoCapture] = cv2.VideoCapture(source)
        if not self._capture.isOpened():
            self._capture = None
            raise SourceError(f"cannot open camera {source}" if self.is_camera else
                              f"cannot open video {source!r}: not a video OpenCV reads (mp4, avi, mov, mkv...)")
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if math.isfinite(fps) and fps > 0 else 0.0
        width, height = (int(self._capture.get(p)) for p in (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT))
        self.size: Optional[tuple[int, int]] = (width, height) if width > 0 and height > 0 else None  # (W, H)
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count: Optional[int] = count if count > 0 and not self.is_camera else None
        self.frames_read: Optional[int] = None  # set once read to the end
        # set when fewer frames decode than the file announces; warn_damaged False leaves the telling to the caller
        self.damaged: Optional[str] = None
        self.warn_damaged = True

    @property
    def duration_s(self) -> Optional[float]:
        """The file's length in seconds from its announced frame count and rate (None when unknown)."""
        return self.frame_count / self.fps if self.frame_count and self.fps else None

    @property
    def expected_frames(self) -> Optional[int]:
        """How many frames the selection keeps, from the announced frame count and rate (None when unknown)."""
        if self.frame_count is None:
            return None
        if self.start_s is None and self.end_s is None and self.every is None and self.rate is None:
            return self.frame_count
        if not self.fps:
            return None
        first = min(self.frame_count, math.ceil((self.start_s or 0.0) * self.fps))
        last = self.frame_count if self.end_s is None else min(self.frame_count, math.ceil(self.end_s * self.fps))
        n = max(0, last - first)
        if self.every:
            return math.ceil(n / self.every)
        if self.rate:
            return min(n, math.ceil(n * self.rate / self.fps))
        return n

    def __iter__(self) -> Iterator[tuple[Item, np.ndarray]]:
        capture, self._capture = self._capture, None
        if capture is None:
            raise SourceError(f"video {self.name!r} was already read or closed")
        try:
            start = None
            index = 0
            windowed = False
            keep = _Selection(self.start_s, self.every, self.rate)
            while True:
                if not capture.grab():
                    break
                if self.is_camera:
                    now = time.monotonic()
                    start = now if start is None else start
                    time_s: Optional[float] = now - start
                else:
                    time_s = self._time_s(capture, index)
                if self.end_s is not None and time_s is not None and time_s >= self.end_s:
                    windowed = True  # stopped by the time window, not by the file's end: nothing to judge
                    break
                if keep(index, time_s):
                    ok, bgr = capture.retrieve()
                    if not ok:
                        break
                    yield Item(index, self.name, frame=index, time_s=time_s), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                index += 1
            if windowed:
                pass
            elif self.frame_count is not None and index < self.frame_count * (1 - TRUNCATED_SHARE) - 1:
                self.damaged = (f"{self.name}: only {index} of the {self.frame_count} frames it announces could "
                                "be decoded; the file may be truncated or damaged (copy or re-encode it again to "
                                "process it all)")
                if self.warn_damaged:
                    log.warning("%s", self.damaged)
            elif self.frame_count is not None and index != self.frame_count:
                log.debug("%s: read %d frames, the file announced %d", self.name, index, self.frame_count)
            self.frames_read = index
        finally:
            capture.release()

    def _time_s(self, capture: cv2.VideoCapture, index: int) -> Optional[float]:
        # The decoder's timestamp of the frame just read (right for variable frame rates); some
        # backends give 0 for every frame: then the frame number over the frame rate.
        ms = capture.get(cv2.CAP_PROP_POS_MSEC)
        if math.isfinite(ms) and (ms > 0 or index == 0):
            return ms / 1000.0
        return index / self.fps if self.fps else None

    def close(self) -> None:
        """Release the capture if it was not read to the end (reading releases it)."""
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def __enter__(self) -> "Video":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _Selection:
    """Which frames a Video keeps: `keep(index, time_s)` is called once per frame, in order."""

    def __init__(self, start_s: Optional[float], every: Optional[int], rate: Optional[float]) -> None:
        self.start_s, self.every, self.rate = start_s, every, rate
        self.first: Optional[int] = None  # the first frame kept
        self.next_s: Optional[float] = None  # with a rate: the time of the next frame to keep

    def __call__(self, index: int, time_s: Optional[float]) -> bool:
        if self.start_s is not None and (time_s if time_s is not None else 0.0) < self.start_s:
            return False
        if self.first is None:
            self.first = index
            if self.rate and time_s is not None:
                self.next_s = time_s + 1.0 / self.rate
            return True
        if self.every:
            return (index - self.first) % self.every == 0
        if self.rate:
            if time_s is None or self.next_s is None:
                return True
            if time_s + 1e-6 < self.next_s:
                return False
            while self.next_s <= time_s + 1e-6:
                self.next_s += 1.0 / self.rate
            return True
        return True


def _is_stream(path: str) -> bool:
    """A FIFO or a character device (/dev/video0): OpenCV may read a video from it."""
    import stat
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def open_source(source: Any) -> Iterable[tuple[Item, Any]]:
    """The (Item, pixels) stream of a source, read lazily.

    source: a `Video`; a camera index (int); a path (str or PathLike) to a folder, a glob pattern
    or an image file (by its extension) whose images are read (see `expand_images`), any other
    path being opened as a video; or an iterable of images (paths, PIL images, arrays), read in turn.
    Raises SourceError for a missing path, a folder without images or a video that does not open.
    """
    if isinstance(source, Video):
        return source
    if isinstance(source, int) and not isinstance(source, bool):
        return Video(source)
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        is_images = (os.path.isdir(path) or has_image_extension(path)
                     or (glob.has_magic(path) and not os.path.exists(path)))
        return read_images(expand_images([path])) if is_images else Video(path)
    if isinstance(source, (np.ndarray, Image.Image)):
        raise SourceError("a stream takes several images: put a single image in a list")
    return read_images(source)


# ------------------------------------------------------------------------------ background reading

T = TypeVar("T")


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_DONE = object()


def prefetch(items: Iterable[T], size: int = 4) -> Iterator[T]:
    """Iterate over `items` while a background thread produces them, at most `size` ahead.

    Decoding (Pillow, OpenCV) releases the GIL, so the next images are decoded while the network
    runs; the bounded queue keeps memory flat. An exception in the thread is raised here, in
    order. Closing the returned generator (or leaving it by an exception such as Ctrl-C) stops
    the thread, which closes the `items` iterator (releasing a video capture) in that thread.
    """
    if size < 1:
        raise ValueError(f"prefetch size must be at least 1, got {size}")
    slots: queue.Queue = queue.Queue(maxsize=size)
    stop = threading.Event()

    def put(x: Any) -> bool:
        while not stop.is_set():
            try:
                slots.put(x, timeout=0.05)
                return True
            except queue.Full:
                pass
        return False

    def produce() -> None:
        iterator = iter(items)
        try:
            for x in iterator:
                if not put(x):
                    return
            put(_DONE)
        except BaseException as e:  # handed to the consumer, which raises it
            put(_Failed(e))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="dope-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            x = slots.get()
            if x is _DONE:
                return
            if isinstance(x, _Failed):
                raise x.error
            yield x
    finally:
        stop.set()
        thread.join(timeout=10)
        if thread.is_alive():
            log.warning("the background reader did not stop within 10 s")
