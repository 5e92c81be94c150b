"""Frozen unimodal encoders: a batch of images or captions in, unit float32 rows out."""

from asif_platform.encoders.base import EncoderSpec, ImageEncoder, TextEncoder, l2_normalise
from asif_platform.encoders.preprocessing import load_image
from asif_platform.encoders.registry import load_image_encoder, load_text_encoder

__all__ = [
    "EncoderSpec",
    "ImageEncoder",
    "TextEncoder",
    "l2_normalise",
    "load_image",
    "load_image_encoder",
    "load_text_encoder",
]
