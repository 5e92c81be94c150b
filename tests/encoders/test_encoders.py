"""The real encoders: bundled weights, ONNX against eager, and the transformers path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA
from PIL import Image

from asif_platform.encoders import load_image
from asif_platform.encoders.bundled import EfficientNetLite0Encoder, minilm_text_encoder
from asif_platform.encoders.hub import HFImageEncoder, HFTextEncoder
from asif_platform.encoders.registry import load_image_encoder, load_text_encoder
from asif_platform.errors import ConfigError, EncoderError

FLICKR_IMAGES = sorted((SHARED_DATA / "flickr8k" / "images").glob("*.jpg"))[:6]


def unit_rows(vectors: np.ndarray) -> bool:
    return vectors.dtype == np.float32 and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)


@pytest.fixture(scope="module")
def efficientnet(tmp_path_factory: pytest.TempPathFactory) -> EfficientNetLite0Encoder:
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ASIF_CACHE_DIR", str(cache))
        encoder = EfficientNetLite0Encoder()
    assert list(cache.glob("*.onnx")), "the ONNX graph is exported to ASIF_CACHE_DIR"
    return encoder


def test_efficientnet_onnx_matches_eager_on_real_images(efficientnet: EfficientNetLite0Encoder) -> None:
    assert efficientnet.backend == "onnx"
    pixels = np.stack([efficientnet.preprocess(load_image(path)) for path in FLICKR_IMAGES])
    onnx = efficientnet.forward(pixels, backend="onnx")
    eager = efficientnet.forward(pixels, backend="torch")
    assert onnx.shape == (len(FLICKR_IMAGES), 1280) and unit_rows(onnx)
    assert np.abs(onnx - eager).max() <= 1e-4


def test_efficientnet_features_separate_pictures(efficientnet: EfficientNetLite0Encoder) -> None:
    images = [load_image(path) for path in FLICKR_IMAGES[:3]]
    flipped = images[0].transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    vectors = efficientnet.encode([*images, flipped], batch_size=2)
    similarity = vectors @ vectors.T
    # A mirrored photo is closer to itself than to other photos.
    assert similarity[0, 3] > max(similarity[0, 1], similarity[0, 2])
    assert efficientnet.spec.preprocessing["weights_sha256"]
    assert efficientnet.fingerprint == EfficientNetLite0Encoder(backend="torch").fingerprint


def test_minilm_is_mean_pooled_and_batch_independent() -> None:
    encoder = minilm_text_encoder()
    texts = ["A dog runs on the beach .", "Two children play football in a park .",
             "A puppy running across sand by the sea ."]
    together = encoder.encode(texts, batch_size=2)
    alone = np.stack([encoder.encode([text])[0] for text in texts])
    assert together.shape == (3, 384) and unit_rows(together)
    assert np.abs(together - alone).max() < 1e-5  # padding never leaks into the mean
    assert together[0] @ together[2] > together[0] @ together[1]
    with pytest.raises(EncoderError, match="empty caption"):
        encoder.encode(["fine", "   "])


def test_registry_names_its_encoders() -> None:
    assert load_text_encoder("bundled:all-minilm-l6-v2") is load_text_encoder("bundled:all-minilm-l6-v2")
    with pytest.raises(ConfigError, match="bundled:efficientnet-lite0"):
        load_image_encoder("bundled:resnet")
    with pytest.raises(EncoderError, match="not a local directory"):
        load_text_encoder("/no/such/model-dir")


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny BERT (with a word-piece vocabulary) and a tiny ViT, saved locally."""
    from transformers import BertConfig, BertModel, BertTokenizerFast, ViTConfig, ViTModel

    root = tmp_path_factory.mktemp("tiny")
    text_dir, image_dir = root / "tiny-bert", root / "tiny-vit"
    vocab = root / "vocab.txt"
    words = "a dog cat runs sits on the beach mat red blue photo of".split()
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(text_dir)
    bert = BertConfig(vocab_size=len(words) + 5, hidden_size=32, num_hidden_layers=2,
                      num_attention_heads=2, intermediate_size=64)
    BertModel(bert).save_pretrained(text_dir)
    vit = ViTConfig(image_size=32, patch_size=8, hidden_size=24, num_hidden_layers=2,
                    num_attention_heads=2, intermediate_size=48)
    ViTModel(vit).save_pretrained(image_dir)
    return text_dir, image_dir


def test_transformers_models_load_from_a_local_path(tiny_models: tuple[Path, Path]) -> None:
    text_dir, image_dir = tiny_models
    text = load_text_encoder(f"hf:{text_dir}")
    assert isinstance(text, HFTextEncoder) and text.dim == 32
    captions = text.encode(["a dog runs on the beach", "a cat sits on the mat"])
    assert captions.shape == (2, 32) and unit_rows(captions)
    assert text.spec.source == f"local:{text_dir}"

    image = load_image_encoder(str(image_dir))
    assert isinstance(image, HFImageEncoder) and image.dim == 24
    pictures = [Image.new("RGB", (40, 30), colour) for colour in ("red", "blue")]
    vectors = image.encode(pictures)
    assert vectors.shape == (2, 24) and unit_rows(vectors)
    assert image.spec.preprocessing["center_crop"] == 32


def test_a_changed_checkpoint_changes_the_fingerprint(tiny_models: tuple[Path, Path],
                                                      tmp_path: Path) -> None:
    from transformers import ViTModel

    _, image_dir = tiny_models
    other = tmp_path / "tiny-vit"
    ViTModel(ViTModel.from_pretrained(image_dir).config).save_pretrained(other)  # new weights
    assert HFImageEncoder(str(other)).spec.preprocessing["files_sha256"] != \
        HFImageEncoder(str(image_dir)).spec.preprocessing["files_sha256"]


def test_corrupt_and_missing_images_are_named(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(EncoderError, match="broken.jpg.*corrupt"):
        load_image(broken)
    with pytest.raises(EncoderError, match="missing.jpg.*exists"):
        load_image(tmp_path / "missing.jpg")


def test_efficientnet_still_recognises_imagenet_classes(efficientnet: EfficientNetLite0Encoder) -> None:
    """The features come from the weights as trained (ReLU6, ImageNet normalisation):
    the model's own ImageNet head puts most CIFAR-10 dogs in ImageNet's dog classes."""
    import torch

    dogs = sorted((SHARED_DATA / "cifar10" / "test" / "dog").glob("*.jpg"))[:10]
    pixels = np.stack([efficientnet.preprocess(load_image(path)) for path in dogs])
    with torch.inference_mode():
        classes = efficientnet._model.network(torch.from_numpy(pixels)).argmax(dim=1).numpy()
    assert np.isin(classes, np.arange(151, 269)).sum() >= 6, classes
