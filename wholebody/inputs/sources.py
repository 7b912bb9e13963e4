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
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Optional, TypeVar, Union

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)

# What a folder or a glob pattern contributes: files with these extensions (any case). Others
# (.txt, .json, .mp4...) are ignored; an image extension on a file that does not decode is an error.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".dib", ".gif", ".tif",
                              ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".jp2"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".avi", ".mov", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv"})


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


def load_image(path: str | os.PathLike) -> np.ndarray:
    """uint8[H, W, 3] RGB pixels of an image file."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ImageError(f"image {path!r} does not exist")
    if os.path.isdir(path):
        raise ImageError(f"{path!r} is a folder, not an image")
    if os.path.getsize(path) == 0:
        raise ImageError(f"image {path!r} is empty")
    try:
        with Image.open(path) as im:
            im.load()
            return np.asarray(to_rgb(im, in_place=True))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"cannot decode image {path!r}: {e}") from None


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


def expand_images(specs: Iterable[str | os.PathLike]) -> list[str]:
    """The image files that `specs` name, in order, each once.

    A file is taken as is. A folder gives its images (not those of sub-folders) sorted by name; a
    glob pattern (`*`, `?`, `[...]`; `**` crosses folders) gives the image files it matches, sorted.
    Folders and patterns skip files without an image extension (IMAGE_EXTENSIONS) and drawings of
    earlier runs (`is_earlier_output`); whether an image decodes is found out when it is read.
    Raises SourceError for a missing or empty file and for a folder or pattern without images.
    """
    paths: list[str] = []
    for spec in map(os.fspath, specs):
        if os.path.isfile(spec):
            if os.path.getsize(spec) == 0:
                raise ImageError(f"image {spec!r} is empty")
            paths.append(spec)
        elif os.path.isdir(spec):
            found = _images_among(os.path.join(spec, name) for name in os.listdir(spec))
            if not found:
                raise SourceError(f"folder {spec!r} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
            paths += found
        elif glob.has_magic(spec):
            matches = [m for m in glob.glob(spec, recursive=True) if os.path.isfile(m)]  # not folders
            found = _images_among(matches)
            if not found:
                raise SourceError(f"{'no image' if matches else 'no file'} matches {spec!r}")
            paths += found
        else:
            raise ImageError(f"image {spec!r} does not exist")
    unique = list(dict.fromkeys(paths))
    if len(unique) < len(paths):
        log.debug("%d images named more than once are read once", len(paths) - len(unique))
    return unique


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
            yield Item(index, getattr(image, "filename", None) or None), np.asarray(to_rgb(image))
        else:
            yield Item(index), image


# ------------------------------------------------------------------------------------------- videos


def camera_or_path(video: str) -> Union[int, str]:
    """`--video` argument: a camera index when it is a number that is not a file, else a path."""
    return int(video) if video.isdigit() and not os.path.exists(video) else video


class Video:
    """The frames of a video file or a camera, read with OpenCV.

    Iterating gives (Item, RGB uint8[H, W, 3]) once per frame, in order, then releases the
    capture: a Video is read once. Use it as a context manager (or call close) to release it
    when it is not read to the end.

    source: a video file (whatever OpenCV reads: mp4, avi, mov, mkv...) or a camera index.
    Attributes: name (the path, or `cameraN`); fps (frames per second as the file says, 0.0 when
    unknown); frame_count (None when unknown, as for cameras; an estimate for some files).
    Raises SourceError when the source does not exist or does not open.
    """

    def __init__(self, source: Union[str, os.PathLike, int]) -> None:
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
            if os.path.isdir(source):
                raise SourceError(f"{source!r} is a folder, not a video")
        self._capture: Optional[cv2.VideoCapture] = cv2.VideoCapture(source)
        if not self._capture.isOpened():
            self._capture = None
            raise SourceError(f"cannot open camera {source}" if self.is_camera else
                              f"cannot open video {source!r}: not a video OpenCV reads (mp4, avi, mov, mkv...)")
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if math.isfinite(fps) and fps > 0 else 0.0
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count: Optional[int] = count if count > 0 and not self.is_camera else None

    def __iter__(self) -> Iterator[tuple[Item, np.ndarray]]:
        capture, self._capture = self._capture, None
        if capture is None:
            raise SourceError(f"video {self.name!r} was already read or closed")
        try:
            start = None
            index = 0
            while True:
                ok, bgr = capture.read()
                if not ok:
                    break
                if self.is_camera:
                    now = time.monotonic()
                    start = now if start is None else start
                    time_s: Optional[float] = now - start
                else:
                    time_s = self._time_s(capture, index)
                yield Item(index, self.name, frame=index, time_s=time_s), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                index += 1
            if self.frame_count is not None and index != self.frame_count:
                log.debug("%s: read %d frames, the file announced %d", self.name, index, self.frame_count)
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
