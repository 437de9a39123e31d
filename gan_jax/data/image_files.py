"""One image file in, square uint8 arrays out: decoding, flattening, fitting.

What `prepare image_folder` does to each file, kept apart from the TFDS builder so the
flags can name the choices without importing TFDS, and so a worker process can run it.

- Formats are told by content, not by file name, among those listed in `FORMATS`.
- Animated files (GIF, animated PNG or WebP) give their first frame, or every frame.
- Transparency (RGBA, LA, palette or colour-key transparency) is flattened on white, as
  a sprite or logo is shown on a page; JPEG EXIF rotation is applied, as viewers do.
- 16-bit grayscale is scaled to 8 bits; then the image becomes RGB or grayscale.
- `pad` puts the image in the middle of a white square, `crop` cuts the centred square,
  `resize` stretches; all three then resize to the side asked (PIL bilinear, which
  antialiases when shrinking).
"""

import dataclasses
import hashlib
import os
import struct
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from gan_jax.data import fetch

FITS = ("pad", "crop", "resize")
FRAMES = ("first", "all")
CHANNELS = (1, 3)
# What PIL may open a file as. Restricted so that stray bytes are never read as one of
# PIL's loosely recognised formats (TGA has no magic number).
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF", "PPM")

# Why a file gives no image (the keys of `FolderReport.skipped`).
EMPTY, NOT_AN_IMAGE, UNREADABLE = "empty", "not an image", "unreadable"
# What PIL raises for files it recognises but cannot decode: truncated data is an
# OSError, corrupt headers are SyntaxError, struct.error, ValueError or EOFError.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    Image.DecompressionBombError,
)


@dataclasses.dataclass(frozen=True)
class FitOptions:
    """How every file is turned into images.

    Attributes:
      image_size: side of the square output, in pixels.
      channels: 3 for RGB, 1 for grayscale.
      fit: 'pad', 'crop' or 'resize' (see the module docstring).
      frames: 'first' or 'all' frames of an animated file.
    """

    image_size: int = 64
    channels: int = 3
    fit: str = "pad"
    frames: str = "first"

    def __post_init__(self):
        if self.image_size < 1:
            raise ValueError(f"image size must be positive, got {self.image_size}")
        if self.channels not in CHANNELS:
            raise ValueError(f"channels must be one of {CHANNELS}, got {self.channels}")
        if self.fit not in FITS:
            raise ValueError(f"fit must be one of {FITS}, got {self.fit!r}")
        if self.frames not in FRAMES:
            raise ValueError(f"frames must be one of {FRAMES}, got {self.frames!r}")


class UnusableFileError(Exception):
    """A file that gives no image; `reason` is EMPTY, NOT_AN_IMAGE or UNREADABLE."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def flatten_on_white(image: Image.Image) -> Image.Image:
    """The image as 8-bit RGB, any transparency composited on white.

    Args:
      image: any PIL mode.

    Returns:
      An RGB image of the same size.
    """
    if image.mode.startswith("I"):  # 16-bit grayscale PNG or TIFF: 0..65535.
        pixels = np.asarray(image, np.float64) / 257
        image = Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8))
    if image.mode not in ("RGBA", "LA", "PA", "RGBa", "La") and "transparency" not in image.info:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def fit_square(image: Image.Image, size: int, fit: str) -> Image.Image:
    """Makes an RGB or L image square, `size` on a side, as `fit` says (see FITS)."""
    width, height = image.size
    if fit == "pad":
        side = max(width, height)
        square = Image.new(image.mode, (side, side), "white")
        square.paste(image, ((side - width) // 2, (side - height) // 2))
    elif fit == "crop":
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        square = image.crop((left, top, left + side, top + side))
    else:
        square = image
    if square.size == (size, size):
        return square
    return square.resize((size, size), Image.Resampling.BILINEAR)


def to_array(frame: Image.Image, options: FitOptions) -> np.ndarray:
    """One decoded frame as the data set stores it.

    Args:
      frame: any PIL mode and size.
      options: the output's size, channels and fit.

    Returns:
      uint8 (image_size, image_size, channels).
    """
    image = flatten_on_white(ImageOps.exif_transpose(frame))
    if options.channels == 1:
        image = image.convert("L")
    pixels = np.asarray(fit_square(image, options.image_size, options.fit))
    return pixels[..., np.newaxis] if pixels.ndim == 2 else pixels


def _frames(image: Image.Image, frames: str) -> Iterator[Image.Image]:
    if frames == "first":
        yield image
    else:
        yield from ImageSequence.Iterator(image)  # PIL applies each frame's disposal.


def read_image_file(path: str, options: FitOptions) -> list[np.ndarray]:
    """Every image one file gives: its first frame, or all its frames, fitted.

    Args:
      path: an image file.
      options: how to fit the images.

    Returns:
      uint8 (image_size, image_size, channels) arrays, one per frame read.

    Raises:
      UnusableFileError: for an empty file, one that is none of FORMATS, or one that
        cannot be read or decoded (truncated, corrupt).
    """
    try:
        if os.path.getsize(path) == 0:
            raise UnusableFileError(EMPTY)
        with Image.open(path, formats=FORMATS) as image:
            # JPEG only: decode at 1/2, 1/4 or 1/8 scale where that still covers the
            # output size, several times faster for photos.
            image.draft(None, (options.image_size, options.image_size))
            return [to_array(frame, options) for frame in _frames(image, options.frames)]
    except UnidentifiedImageError as e:
        raise UnusableFileError(NOT_AN_IMAGE) from e
    except _DECODE_ERRORS as e:  # Also a file deleted or unreadable since the scan.
        raise UnusableFileError(UNREADABLE, str(e)) from e


class FileImages(NamedTuple):
    """What one file gave, in a form cheap to send back from a worker process.

    Attributes:
      skipped: None, or why the file gave no image (EMPTY, NOT_AN_IMAGE, UNREADABLE).
      detail: the decoder's message for an unreadable file.
      images: (sha1 of the pixels, PNG) for each distinct image, in frame order.
      repeats: frames dropped as exact repeats of an earlier frame of the same file.
    """

    skipped: str | None
    detail: str
    images: list[tuple[bytes, bytes]]
    repeats: int


def encode_file(task: tuple[str, FitOptions]) -> FileImages:
    """`read_image_file`, deduplicated within the file and PNG-encoded; runs in a worker.

    Args:
      task: (path, options), one argument so that a process pool can map it.

    Returns:
      The file's distinct images, or why it was skipped.
    """
    path, options = task
    try:
        arrays = read_image_file(path, options)
    except UnusableFileError as e:
        return FileImages(e.reason, e.detail, [], 0)
    images, seen = [], set()
    for pixels in arrays:
        digest = hashlib.sha1(pixels.tobytes()).digest()
        if digest not in seen:
            seen.add(digest)
            # Level 1: faster to write, a few percent larger; decoded once per load.
            images.append((digest, fetch.encode_png(pixels, compress_level=1)))
    return FileImages(None, "", images, len(arrays) - len(images))
