#!/usr/bin/env bash
# The main job with the embedded defaults (Qdrant Edge + SQLite in $ASIF_HOME):
# ingest Flickr8k train+dev (7,000 images, 35,000 pairs) as anchors, then classify
# the CIFAR-10 test set (10,000 images) zero-shot for k in {200, 800}, p in {1, 4, 8}.
# Re-running it skips what is already ingested.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
DATA=${ASIF_SHARED_DATA:-../shared/data}
export ASIF_HOME=${ASIF_HOME:-./asif-data}
asif() { .venv/bin/asif "$@"; }

asif collection show flickr8k >/dev/null 2>&1 || asif collection create flickr8k
asif ingest flickr8k "$DATA/flickr8k/Flickr8k.token.txt" \
    --split "$DATA/flickr8k/Flickr_8k.trainImages.txt" \
    --split "$DATA/flickr8k/Flickr_8k.devImages.txt"
asif eval flickr8k "$DATA/cifar10/test" --ks 200,800 --ps 1,4,8
