"""Ingestion: image-caption records in, anchors in Qdrant and the catalog out.

Crash safety comes from deterministic anchor ids. A pair's id is a hash of the
collection name, the image bytes and the caption, so a re-run computes the same ids,
skips those the catalog already holds, and re-writes the others. Each batch is written
to Qdrant first (waiting for the engine) and committed to the catalog second: a crash
between the two leaves points that the next run simply overwrites.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image
from sqlalchemy import select
from tqdm import tqdm

from asif_platform import __version__
from asif_platform.catalog import Anchor, Collection, IngestRun, Tombstone, unstorable, utcnow
from asif_platform.encoders.preprocessing import load_image
from asif_platform.errors import AnchorStoreError, ConfigError, EncoderError, IngestError
from asif_platform.ingest.payload import anchor_payload
from asif_platform.ingest.records import PairRecord
from asif_platform.provenance import Provenance

if TYPE_CHECKING:
    from asif_platform.platform import Platform

__all__ = ["MAX_CAPTION_CHARS", "IngestReport", "anchor_id", "ingest", "sha256_text"]

logger = logging.getLogger(__name__)

MAX_CAPTION_CHARS = 2_000
_EXAMPLES = 5
_ID_CHUNK = 900  # below SQLite's bound-parameter limits


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def anchor_id(collection: str, image_sha256: str, caption_sha256: str) -> int:
    """The anchor (and Qdrant point) id of a pair: 63 bits of a sha256.

    Deterministic, so that re-running an ingest finds the pairs it already wrote.
    """
    digest = hashlib.sha256(
        f"{collection}\0{image_sha256}\0{caption_sha256}".encode()
    ).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


@dataclass
class Problem:
    """A counted kind of skipped input with the first few offenders named."""

    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, example: str) -> None:
        self.count += 1
        if len(self.examples) < _EXAMPLES:
            self.examples.append(example)


@dataclass
class IngestReport:
    """What one ingest run read, added and skipped, and where the time went."""

    collection: str
    run_id: int
    records_read: int = 0
    pairs_added: int = 0
    already_present: int = 0
    previously_deleted: int = 0
    duplicate_pairs: int = 0
    images_encoded: int = 0
    captions_encoded: int = 0
    missing_images: Problem = field(default_factory=Problem)
    corrupt_images: Problem = field(default_factory=Problem)
    empty_captions: Problem = field(default_factory=Problem)
    oversized_captions: Problem = field(default_factory=Problem)
    invalid_provenance: Problem = field(default_factory=Problem)
    unstorable_text: Problem = field(default_factory=Problem)  # NUL, lone surrogates
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            data[key] = value.__dict__.copy() if isinstance(value, Problem) else value
        data["seconds"] = {k: round(v, 3) for k, v in self.seconds.items()}
        return data

    def counts(self) -> dict[str, int]:
        return {
            key: (value.count if isinstance(value, Problem) else value)
            for key, value in self.__dict__.items()
            if isinstance(value, (int, Problem)) and key != "run_id"
        }


@dataclass
class _Pair:
    record: PairRecord
    image_sha256: str
    caption_sha256: str
    anchor_id: int
    provenance: Provenance


class _Timer:
    def __init__(self, seconds: dict[str, float]) -> None:
        self.seconds = seconds

    def add(self, key: str, started: float) -> None:
        self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - started


def ingest(
    platform: Platform,
    collection_name: str,
    records: Iterable[PairRecord],
    *,
    source: str = "",
    provenance: Provenance | None = None,
    images_per_batch: int = 256,
    progress: bool | None = None,
) -> IngestReport:
    """Add image-caption pairs to a collection.

    Args:
        platform: The platform whose catalog, store and encoders to use.
        collection_name: An existing collection.
        records: The pairs to add; re-sending pairs already stored adds nothing.
        source: Where the records came from (a path), for the ingest run record.
        provenance: License, consent and source details of every pair; records
            override them with columns of the same names. Defaults to none known.
        images_per_batch: Images encoded and written per batch. Defaults to 256.
        progress: Show a progress bar; None shows it only on a terminal.

    Returns:
        The report of the run, also stored with the ingest run in the catalog.

    Raises:
        NotFound: The collection does not exist.
        IngestError: A reader failed on malformed input.
    """
    collection = platform.get_collection(collection_name, "write")
    image_encoder, text_encoder = platform.encoders_for(collection)
    store = platform.store
    store.check_schema(_schema_dims(collection))
    seconds: dict[str, float] = {}
    timer = _Timer(seconds)
    started = time.perf_counter()

    with platform.catalog.session() as session:
        run = IngestRun(
            collection_id=collection.id,
            source=source,
            source_dataset="",
            status="running",
            counts={},
            image_fingerprint=collection.image_fingerprint,
            text_fingerprint=collection.text_fingerprint,
            platform_version=__version__,
        )
        session.add(run)
        session.flush()
        run_id = run.id
    report = IngestReport(collection=collection_name, run_id=run_id, seconds=seconds)
    logger.info("ingest run %d into %s started", run_id, collection_name)

    try:
        # Phase 1: read records and hash every distinct image once.
        phase = time.perf_counter()
        pairs, datasets = _hash_records(collection_name, records, provenance or Provenance(),
                                        report)
        timer.add("read_and_hash", phase)

        # Phase 2: leave out what the catalog already has.
        phase = time.perf_counter()
        pending = _not_in_catalog(platform, collection.id, pairs, report)
        timer.add("catalog_lookup", phase)

        # Phase 3: encode, write to Qdrant, commit to the catalog, batch by batch.
        by_image: dict[str, list[_Pair]] = {}
        for pair in pending:
            by_image.setdefault(pair.image_sha256, []).append(pair)
        image_groups = list(by_image.values())
        bar = tqdm(
            total=len(pending),
            unit="pair",
            desc=f"ingest {collection_name}",
            disable=(not progress) if progress is not None else None,
        )
        with bar:
            for start in range(0, len(image_groups), images_per_batch):
                groups = image_groups[start : start + images_per_batch]
                written = _write_batch(
                    platform, collection, run_id, groups, image_encoder, text_encoder,
                    report, timer,
                )
                bar.update(written)
        phase = time.perf_counter()
        # Index what was written (also what an earlier, interrupted run wrote);
        # a no-op when everything is indexed already.
        platform.store.optimize(collection_name)
        timer.add("index", phase)
    except BaseException:
        _finish_run(platform, run_id, report, datasets=None, status="failed")
        raise

    seconds["total"] = time.perf_counter() - started
    _finish_run(platform, run_id, report, datasets=datasets, status="completed")
    logger.info(
        "ingest run %d into %s completed: %d added, %d already present",
        run_id, collection_name, report.pairs_added, report.already_present,
    )
    return report


def _schema_dims(collection: Collection) -> Any:
    from asif_platform.store import CollectionSchema

    return CollectionSchema(
        name=collection.name, image_dim=collection.image_dim, text_dim=collection.text_dim
    )


def _hash_records(
    collection_name: str,
    records: Iterable[PairRecord],
    defaults: Provenance,
    report: IngestReport,
) -> tuple[list[_Pair], set[str]]:
    image_hashes: dict[str, str | None] = {}
    seen: set[int] = set()
    pairs: list[_Pair] = []
    datasets: set[str] = set()
    for record in records:
        report.records_read += 1
        caption = record.caption.strip()
        texts = (caption, record.source_record_id, record.source_dataset)
        if any(unstorable(text) for text in texts):
            report.unstorable_text.add(repr(record.source_record_id))
            continue
        if not caption:
            report.empty_captions.add(record.source_record_id)
            continue
        if len(caption) > MAX_CAPTION_CHARS:
            report.oversized_captions.add(record.source_record_id)
            continue
        try:
            provenance = defaults.with_record(record.extra)
        except ConfigError as error:
            report.invalid_provenance.add(f"{record.source_record_id}: {error}")
            continue
        key = str(record.image)
        if key not in image_hashes:
            try:
                image_hashes[key] = hashlib.sha256(record.image.read_bytes()).hexdigest()
            except OSError:
                image_hashes[key] = None
                report.missing_images.add(key)
        image_sha256 = image_hashes[key]
        if image_sha256 is None:
            continue
        caption_sha256 = sha256_text(caption)
        point_id = anchor_id(collection_name, image_sha256, caption_sha256)
        if point_id in seen:
            report.duplicate_pairs += 1
            continue
        seen.add(point_id)
        datasets.add(record.source_dataset)
        if caption != record.caption:
            record = PairRecord(
                record.image, caption, record.source_dataset, record.source_record_id,
                record.extra,
            )
        pairs.append(_Pair(record, image_sha256, caption_sha256, point_id, provenance))
    return pairs, datasets


def _not_in_catalog(
    platform: Platform, collection_id: int, pairs: list[_Pair], report: IngestReport
) -> list[_Pair]:
    present: set[int] = set()
    with platform.catalog.session() as session:
        for start in range(0, len(pairs), _ID_CHUNK):
            chunk = [pair.anchor_id for pair in pairs[start : start + _ID_CHUNK]]
            present.update(
                session.scalars(
                    select(Anchor.id).where(
                        Anchor.collection_id == collection_id, Anchor.id.in_(chunk)
                    )
                )
            )
    report.already_present = len(present)
    # A pair removed by a deletion request never comes back, whoever ingests it.
    deleted: set[int] = set()
    with platform.catalog.session() as session:
        for start in range(0, len(pairs), _ID_CHUNK):
            chunk = [pair.anchor_id for pair in pairs[start : start + _ID_CHUNK]]
            deleted.update(session.scalars(select(Tombstone.anchor_id).where(
                Tombstone.anchor_id.in_(chunk))))
    report.previously_deleted = len(deleted)
    return [pair for pair in pairs if pair.anchor_id not in present | deleted]


def _write_batch(
    platform: Platform,
    collection: Collection,
    run_id: int,
    groups: Sequence[list[_Pair]],
    image_encoder: Any,
    text_encoder: Any,
    report: IngestReport,
    timer: _Timer,
) -> int:
    # Decode; a corrupt image drops all of its pairs.
    phase = time.perf_counter()
    images: list[Image.Image] = []
    kept: list[list[_Pair]] = []
    for group in groups:
        path = group[0].record.image
        try:
            images.append(load_image(path))
        except EncoderError:
            report.corrupt_images.add(str(path))
            continue
        kept.append(group)
    timer.add("image_decode", phase)
    if not kept:
        return sum(len(group) for group in groups)

    phase = time.perf_counter()
    image_vectors = image_encoder.encode(images)  # (n_images, image_dim)
    timer.add("image_encode", phase)
    report.images_encoded += len(images)

    flat = [pair for group in kept for pair in group]
    image_rows = np.repeat(np.arange(len(kept)), [len(group) for group in kept])
    captions = sorted({pair.record.caption for pair in flat})
    phase = time.perf_counter()
    caption_vectors = text_encoder.encode(captions)  # (n_captions, text_dim)
    timer.add("caption_encode", phase)
    report.captions_encoded += len(captions)
    caption_row = {caption: row for row, caption in enumerate(captions)}
    text_rows = np.fromiter((caption_row[p.record.caption] for p in flat), np.int64, len(flat))

    now = utcnow()
    anchors = [
        Anchor(
            id=pair.anchor_id,
            collection_id=collection.id,
            caption=pair.record.caption,
            caption_sha256=pair.caption_sha256,
            image_ref=str(pair.record.image),
            image_sha256=pair.image_sha256,
            source_dataset=pair.record.source_dataset,
            source_record_id=pair.record.source_record_id,
            ingest_run_id=run_id,
            image_fingerprint=collection.image_fingerprint,
            text_fingerprint=collection.text_fingerprint,
            ingested_at=now,
            ingested_by=platform.settings.principal,
            source_version=pair.provenance.source_version,
            source_url=pair.provenance.source_url,
            license=pair.provenance.license,
            creator=pair.provenance.creator,
            attribution=pair.provenance.attribution,
            consent_status=pair.provenance.consent_status,
            consent_basis=pair.provenance.consent_basis,
            consent_recorded_at=now,
            consent_expires_at=pair.provenance.consent_expires_at,
            consent_evidence=pair.provenance.consent_evidence,
        )
        for pair in flat
    ]
    phase = time.perf_counter()
    platform.store.upsert(
        collection.name,
        [anchor.id for anchor in anchors],
        image_vectors[image_rows],
        caption_vectors[text_rows],
        [anchor_payload(anchor) for anchor in anchors],
    )
    # Read the batch back: a point the engine silently dropped must not be recorded.
    stored = platform.store.retrieve(collection.name, [anchor.id for anchor in anchors])
    if len(stored) != len(anchors):
        lost = [anchor.id for anchor in anchors if anchor.id not in stored]
        raise AnchorStoreError(
            f"Qdrant acknowledged {len(anchors)} points of collection {collection.name!r} "
            f"but {len(lost)} are missing on read-back (e.g. {lost[:3]}); nothing of this "
            "batch was recorded in the catalog; check the collection's vector schema "
            "(`asif doctor`) and run the ingest again"
        )
    timer.add("upsert", phase)

    phase = time.perf_counter()
    try:
        with platform.catalog.session() as session:
            session.add_all(anchors)
            row = session.get(Collection, collection.id)
            assert row is not None
            row.revision += 1
    except Exception:
        # No catalog row may be missing behind a searchable point: take the batch
        # back out of Qdrant (none of it was in the catalog before this run).
        _withdraw(platform, collection.name, [anchor.id for anchor in anchors], run_id)
        raise
    timer.add("catalog_commit", phase)
    report.pairs_added += len(flat)
    logger.info("ingest run %d wrote a batch of %d pairs", run_id, len(flat))
    return sum(len(group) for group in groups)


def _withdraw(platform: Platform, collection_name: str, ids: list[int], run_id: int) -> None:
    try:
        platform.store.delete(collection_name, ids)
    except Exception:  # the commit's error is the one to report
        logger.exception("ingest run %d: %d points written to Qdrant could not be taken "
                         "back after the catalog commit failed; `asif doctor %s --repair` "
                         "removes them", run_id, len(ids), collection_name)
    else:
        logger.warning("ingest run %d: the catalog commit failed; its %d points were taken "
                       "back out of Qdrant", run_id, len(ids))


def _finish_run(
    platform: Platform,
    run_id: int,
    report: IngestReport,
    *,
    datasets: set[str] | None,
    status: str,
) -> None:
    with platform.catalog.session() as session:
        run = session.get(IngestRun, run_id)
        if run is None:
            raise IngestError(f"ingest run {run_id} vanished from the catalog")
        run.status = status
        run.counts = report.counts()
        if datasets:
            run.source_dataset = ",".join(sorted(datasets))[:200]
        run.finished_at = utcnow()
