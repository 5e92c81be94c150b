"""Encoder throughput on real data: Flickr8k images and captions.

    .venv/bin/python benchmarks/encoders.py [--images 512] [--captions 5000]

Image encoding with ONNX Runtime and with eager PyTorch (same weights; outputs agree
within 1e-4), decoding included; caption encoding with MiniLM. Prints a table and
writes benchmarks/results/encoders.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from asif_platform.encoders import load_image
from asif_platform.encoders.bundled import EfficientNetLite0Encoder, minilm_text_encoder
from asif_platform.ingest.readers import read_pairs

ROOT = Path(__file__).resolve().parents[1]
FLICKR = ROOT.parent / "shared" / "data" / "flickr8k"


def timed(function):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--captions", type=int, default=5000)
    args = parser.parse_args()

    records = read_pairs(FLICKR / "Flickr8k.token.txt",
                         split_files=[FLICKR / "Flickr_8k.trainImages.txt"])
    paths = sorted({r.image for r in records})[: args.images]
    captions = [r.caption for r in records][: args.captions]
    rows = []

    image_encoder = EfficientNetLite0Encoder()
    image_encoder.encode([load_image(paths[0])])  # warm-up
    for backend in ("onnx", "torch"):
        def run(backend: str = backend) -> np.ndarray:
            pixels = np.stack([image_encoder.preprocess(load_image(p)) for p in paths])
            return np.concatenate([image_encoder.forward(pixels[s : s + 64], backend=backend)
                                   for s in range(0, len(pixels), 64)])
        vectors, seconds = timed(run)
        rows.append({"what": f"images ({backend})", "items": len(paths),
                     "seconds": round(seconds, 2), "per_second": round(len(paths) / seconds, 1)})
        if backend == "onnx":
            onnx_vectors = vectors
    difference = float(np.abs(onnx_vectors - vectors).max())

    text_encoder = minilm_text_encoder()
    text_encoder.encode(captions[:64])  # warm-up
    _, seconds = timed(lambda: text_encoder.encode(captions, batch_size=128))
    rows.append({"what": "captions (MiniLM)", "items": len(captions),
                 "seconds": round(seconds, 2), "per_second": round(len(captions) / seconds, 1)})

    print(f"{'what':<20} {'items':>6} {'seconds':>8} {'per s':>8}")
    for row in rows:
        print(f"{row['what']:<20} {row['items']:>6} {row['seconds']:>8.2f} {row['per_second']:>8.1f}")
    print(f"max |onnx - torch| over the image vectors: {difference:.2e}")
    out = ROOT / "benchmarks" / "results" / "encoders.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"results": rows, "onnx_max_abs_difference": difference},
                              indent=2) + "\n")


if __name__ == "__main__":
    main()
