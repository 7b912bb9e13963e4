"""Where images come from: decoding files into RGB arrays.

Images are decoded with Pillow, turned upright by their EXIF orientation and converted to RGB
whatever their mode (L, LA, P, RGBA, CMYK, I;16, ...).
"""
from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError


class ImageError(ValueError):
    """An image that cannot be read; the message names the file."""


def to_rgb(image: Image.Image) -> Image.Image:
    """An upright RGB copy of a Pillow image."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit and float greys: scale to 8 bits over the type's range rather than clipping.
        a = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") else max(a.max(), 1.0)
        image = Image.fromarray(np.clip(a / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if image.mode in ("LA", "PA", "P") or "transparency" in image.info:
        image = image.convert("RGBA")
    return image.convert("RGB")


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
            return np.asarray(to_rgb(im))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"cannot decode image {path!r}: {e}") from None
