"""Image decoding and preprocessing with PIL and numpy (no torchvision)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from asif_platform.errors import EncoderError

__all__ = ["center_crop_array", "load_image"]

# Decompression bombs are corrupt input for us, not a warning.
Image.MAX_IMAGE_PIXELS = 64_000_000


def load_image(source: str | Path | bytes) -> Image.Image:
    """Decode an image fully and convert it to RGB.

    Args:
        source: A file path or the encoded bytes.

    Returns:
        The decoded RGB image.

    Raises:
        EncoderError: The file is missing, unreadable or not a decodable image.
    """
    name = "<bytes>" if isinstance(source, bytes) else str(source)
    try:
        stream = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")
    except OSError as error:
        raise EncoderError(
            f"cannot read image {name}: {error.strerror or error}; check that the file "
            "exists and is readable"
        ) from error
    try:
        with stream, Image.open(stream) as image:
            image.load()
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombError) as error:
        raise EncoderError(
            f"cannot decode image {name}: {error}; the file is corrupt or not an image"
        ) from error


def center_crop_array(
    image: Image.Image,
    *,
    resize: int,
    crop: int,
    mean: Sequence[float],
    std: Sequence[float],
) -> np.ndarray:
    """Resize the shorter side, centre-crop and normalise, as ImageNet models expect.

    Args:
        image: An RGB image.
        resize: Length of the shorter side after a bilinear resize.
        crop: Side of the square centre crop.
        mean: Per-channel mean, on the 0-1 scale.
        std: Per-channel standard deviation, on the 0-1 scale.

    Returns:
        float32 array of shape (3, crop, crop).
    """
    width, height = image.size
    scale = resize / min(width, height)
    size = (max(crop, round(width * scale)), max(crop, round(height * scale)))
    image = image.resize(size, Image.Resampling.BILINEAR)
    left = (size[0] - crop) // 2
    top = (size[1] - crop) // 2
    image = image.crop((left, top, left + crop, top + crop))
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    pixels = (pixels - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))
