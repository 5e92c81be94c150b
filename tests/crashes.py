"""An ingest whose second batch reaches Qdrant but never the catalog."""

from __future__ import annotations

from pathlib import Path

import pytest

from asif_platform.errors import AnchorStoreError, CatalogError
from asif_platform.ingest.pipeline import ingest
from asif_platform.ingest.readers import read_pairs
from asif_platform.platform import Platform


def fail_second_commit(platform: Platform, pair_folder: Path, monkeypatch: pytest.MonkeyPatch,
                       *, process_dies: bool) -> None:
    """Ingest ``pairs.jsonl`` into ``colours`` in batches of 5 images; the catalog
    refuses the commit after the second Qdrant write. With ``process_dies`` the ingest
    cannot take that batch back out of Qdrant either, as when the process is killed."""
    catalog, store = platform.catalog, platform.store
    real_session, real_upsert = catalog.session, store.upsert
    upserts = {"n": 0}

    def counting_upsert(*args, **kwargs):  # type: ignore[no-untyped-def]
        upserts["n"] += 1
        return real_upsert(*args, **kwargs)

    def failing_session():  # type: ignore[no-untyped-def]
        # The first session after the second Qdrant write is batch two's commit.
        if upserts["n"] == 2:
            raise CatalogError("simulated failure of the catalog commit")
        return real_session()

    def dead_delete(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AnchorStoreError("simulated: the process is gone")

    with monkeypatch.context() as patch:
        patch.setattr(store, "upsert", counting_upsert)
        patch.setattr(catalog, "session", failing_session)
        if process_dies:
            patch.setattr(store, "delete", dead_delete)
        with pytest.raises(CatalogError, match="simulated"):
            ingest(platform, "colours", read_pairs(pair_folder / "pairs.jsonl"),
                   images_per_batch=5)
