"""Frozen versions: membership in Qdrant payload, pinned queries, crash recovery."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import COLOURS
from dense_reference import asif_scores
from PIL import Image

from asif_platform.errors import AnchorStoreError, ConfigError, NotFound
from asif_platform.ingest.pipeline import ingest
from asif_platform.ingest.readers import read_pairs
from asif_platform.platform import Platform
from asif_platform.versions import (
    VersionSelector,
    create_version,
    diff_versions,
    list_versions,
    require_ready,
)

LABELS = list(COLOURS)


@pytest.fixture
def versioned(platform: Platform, pair_folder: Path) -> Platform:
    platform.create_collection("colours", k=24, p=2.0, templates=["a {} square"])
    ingest(platform, "colours", read_pairs(pair_folder / "pairs.jsonl"))
    create_version(platform, "colours", "v1")
    # Four new pairs: new pictures of every colour, captioned with the wrong colour
    # (in words no prompt shares with other captions, so top-k has no ties at k=24).
    extra = pair_folder / "extra"
    extra.mkdir()
    lines = []
    for index, (colour, rgb) in enumerate(COLOURS.items()):
        wrong = LABELS[(index + 1) % len(LABELS)]
        Image.new("RGB", (16, 16), tuple(v + 5 for v in rgb)).save(extra / f"{colour}.png")
        lines.append(f'{{"image": "{colour}.png", "caption": "really {wrong} indeed"}}')
    (extra / "more.jsonl").write_text("\n".join(lines) + "\n")
    ingest(platform, "colours", read_pairs(extra / "more.jsonl", source_dataset="mislabelled"))
    create_version(platform, "colours", "v2")
    return platform


def test_versions_freeze_membership(versioned: Platform) -> None:
    v1, v2 = list_versions(versioned, "colours")
    assert (v1.name, v1.anchors, v1.status) == ("v1", 48, "ready")
    assert v2.anchors == 52 and v2.by_source == {"pairs": 48, "mislabelled": 4}
    assert v1.manifest_sha256 != v2.manifest_sha256
    diff = diff_versions(versioned, "colours", "v1", "v2")
    assert (diff["added"], diff["removed"], diff["unchanged"]) == (4, 0, 48)
    assert diff["added_by_source"] == {"mislabelled": 4}

    with pytest.raises(ConfigError, match="already exists"):
        create_version(versioned, "colours", "v1")
    with pytest.raises(NotFound, match="no version 'v9'"):
        require_ready(versioned, "colours", "v9")
    subset = create_version(versioned, "colours", "only-new",
                            VersionSelector(source_datasets=("mislabelled",)))
    assert subset.anchors == 4
    with pytest.raises(ConfigError, match="matches no anchors"):
        create_version(versioned, "colours", "licensed", VersionSelector(licenses=("MIT",)))
    unknown = create_version(versioned, "colours", "unknown-consent",
                             VersionSelector(consent=("unknown",)))
    assert unknown.anchors == 52


def test_a_pinned_query_equals_dense_asif_on_the_members(versioned: Platform,
                                                          tmp_path: Path) -> None:
    engine = versioned.engine("colours")
    queries = []
    for rgb in COLOURS.values():
        Image.new("RGB", (16, 16), tuple(v + 5 for v in rgb)).save(tmp_path / "q.png")
        queries.append(Image.open(tmp_path / "q.png").convert("RGB"))
    vectors = engine.encode_images(queries)
    for name, members in (("v1", 48), ("v2", 52)):
        options = engine.options(anchor_filter=require_ready(versioned, "colours", name),
                                 exact=True)
        scores = engine.classify_vectors(vectors, LABELS, options)
        ids = [i for i, point in _points(versioned).items()
               if name in point["payload"].get("versions", [])]
        assert len(ids) == members
        stored = versioned.store.retrieve("colours", ids, with_vectors=True)
        prompts = engine.text_encoder.encode([f"a {label} square" for label in LABELS])
        dense = asif_scores(vectors, np.stack([stored[i]["image"] for i in ids]), prompts,
                            np.stack([stored[i]["text"] for i in ids]), options.k, options.p)
        np.testing.assert_allclose(scores, dense, atol=1e-5)
    # v1 never sees the mislabelled pairs: no explanation cites them.
    v1 = engine.options(anchor_filter=require_ready(versioned, "colours", "v1"))
    for explanation in engine.explain_vector(vectors[0], LABELS, v1, top=100):
        assert all(c.source_dataset == "pairs" for c in explanation.contributions)


def _points(platform: Platform) -> dict[int, dict]:  # type: ignore[type-arg]
    ids = platform.store.list_ids("colours").tolist()
    return platform.store.retrieve("colours", ids)


def test_an_interrupted_version_is_completed_by_running_again(
    platform: Platform, pair_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform.create_collection("colours")
    ingest(platform, "colours", read_pairs(pair_folder / "pairs.jsonl"))

    def crash(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise AnchorStoreError("simulated crash while writing payloads")

    monkeypatch.setattr(platform.store, "set_payload", crash)
    with pytest.raises(AnchorStoreError, match="simulated"):
        create_version(platform, "colours", "v1")
    monkeypatch.undo()
    with pytest.raises(ConfigError, match="run `asif version create colours v1` again"):
        require_ready(platform, "colours", "v1")
    info = create_version(platform, "colours", "v1")
    assert info.status == "ready" and info.anchors == 48
    assert all("v1" in p["payload"]["versions"] for p in _points(platform).values())
