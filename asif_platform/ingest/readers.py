"""Readers that turn a dataset on disk into PairRecords.

Formats:
    flickr  Flickr8k/Flickr30k token file (``<image>#<n><TAB><caption>``), an image
            folder, and optional split files naming the images to include.
    coco    COCO captions JSON (``images`` and ``annotations``).
    csv     A CSV file with an image column and a caption column.
    jsonl   One JSON object per line, same columns as CSV.
    folder  A folder of images with ``.txt`` sidecars, one caption per line.

Readers check structure (a malformed line or a missing column is an IngestError
naming the file and line) but not content: missing images and empty captions are
yielded as read, and the ingest pipeline counts and skips them.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from asif_platform.errors import IngestError
from asif_platform.ingest.records import PairRecord

__all__ = [
    "FORMATS",
    "IMAGE_SUFFIXES",
    "detect_format",
    "read_coco",
    "read_flickr",
    "read_folder",
    "read_pairs",
    "read_table",
]

FORMATS = ("flickr", "coco", "csv", "jsonl", "folder")
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})


def detect_format(source: Path) -> str:
    """Guess a source's format from what it is: a folder or a file's suffix."""
    if source.is_dir():
        return "folder"
    suffix = source.suffix.lower()
    guessed = {".json": "coco", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl",
               ".txt": "flickr", ".token": "flickr"}.get(suffix)
    if guessed is None:
        raise IngestError(
            f"cannot tell the format of {source}; pass --format, one of {', '.join(FORMATS)}"
        )
    return guessed


def read_pairs(source: Path, *, format: str | None = None, **options: Any) -> list[PairRecord]:
    """Read every pair in a source, in file order.

    Args:
        source: A file or folder.
        format: One of FORMATS; guessed with detect_format when None.
        **options: Passed to the format's reader.
    """
    source = Path(source)
    if not source.exists():
        raise IngestError(f"{source} does not exist")
    format = format or detect_format(source)
    readers = {"flickr": read_flickr, "coco": read_coco, "folder": read_folder}
    if format in ("csv", "jsonl"):
        records = read_table(source, format=format, **options)
    elif format in readers:
        records = readers[format](source, **options)
    else:
        raise IngestError(f"unknown format {format!r}; use one of {', '.join(FORMATS)}")
    if not records:
        raise IngestError(
            f"{source} holds no pairs (read as {format}); check the file, or give "
            "--format if it was guessed wrong"
        )
    # Stored image references must not depend on the directory the command ran in.
    return [replace(record, image=record.image.absolute()) for record in records]


def _split_names(split_files: Sequence[Path]) -> set[str]:
    names: set[str] = set()
    for split_file in split_files:
        names.update(line.strip() for line in _read_lines(Path(split_file)) if line.strip())
    return names


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise IngestError(f"cannot read {path}: {error}") from error


def _default_image_dir(source: Path) -> Path:
    beside = source.parent / "images"
    return beside if beside.is_dir() else source.parent


def read_flickr(
    source: Path,
    *,
    image_dir: Path | None = None,
    split_files: Sequence[Path] = (),
    source_dataset: str | None = None,
) -> list[PairRecord]:
    """Read a Flickr8k/Flickr30k token file.

    Args:
        source: The token file, ``<image>#<n><TAB><caption>`` per line.
        image_dir: Folder of the images; default ``images/`` beside the token file,
            else the token file's folder.
        split_files: Files naming the images to include, one per line; all if empty.
        source_dataset: Dataset name; default the token file's folder name.
    """
    image_dir = Path(image_dir) if image_dir else _default_image_dir(source)
    dataset = source_dataset or source.resolve().parent.name
    wanted = _split_names(split_files) if split_files else None
    records = []
    for number, line in enumerate(_read_lines(source), start=1):
        if not line.strip():
            continue
        key, tab, caption = line.partition("\t")
        image_name, hash_, _ = key.partition("#")
        if not tab or not hash_ or not image_name:
            raise IngestError(
                f"{source}:{number}: expected '<image>#<n><TAB><caption>'; "
                "is this a Flickr token file? (pass --format for other formats)"
            )
        if wanted is not None and image_name not in wanted:
            continue
        records.append(PairRecord(image_dir / image_name, caption.strip(), dataset, key))
    return records


def read_coco(
    source: Path,
    *,
    image_dir: Path | None = None,
    source_dataset: str | None = None,
) -> list[PairRecord]:
    """Read a COCO captions JSON file (``images`` with ``id`` and ``file_name``,
    ``annotations`` with ``id``, ``image_id`` and ``caption``)."""
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
        files = {image["id"]: image["file_name"] for image in data["images"]}
        annotations = data["annotations"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise IngestError(f"cannot read COCO captions from {source}: {error}") from error
    except (KeyError, TypeError) as error:
        raise IngestError(
            f"{source} is not COCO captions JSON: missing {error}; expected 'images' "
            "(id, file_name) and 'annotations' (id, image_id, caption)"
        ) from error
    image_dir = Path(image_dir) if image_dir else _default_image_dir(source)
    dataset = source_dataset or source.stem
    records = []
    for index, annotation in enumerate(annotations):
        try:
            file_name = files[annotation["image_id"]]
            caption = annotation["caption"]
        except (KeyError, TypeError) as error:
            raise IngestError(
                f"{source}: annotation {index} lacks {error} or names an unknown image"
            ) from error
        record_id = str(annotation.get("id", index))
        records.append(PairRecord(image_dir / file_name, str(caption).strip(), dataset, record_id))
    return records


def _table_rows(source: Path, format: str) -> Iterable[tuple[int, dict[str, Any]]]:
    try:
        with open(source, encoding="utf-8", newline="") as handle:
            if format == "csv":
                for number, row in enumerate(csv.DictReader(handle), start=2):
                    yield number, row
                return
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise IngestError(f"{source}:{number}: not valid JSON: {error}") from error
                if not isinstance(row, dict):
                    raise IngestError(f"{source}:{number}: expected a JSON object per line")
                yield number, row
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise IngestError(f"cannot read {source}: {error}") from error


def read_table(
    source: Path,
    *,
    format: str = "csv",
    image_column: str = "image",
    caption_column: str = "caption",
    id_column: str | None = None,
    image_dir: Path | None = None,
    source_dataset: str | None = None,
) -> list[PairRecord]:
    """Read a CSV or JSONL file of pairs; other columns are kept in ``extra``.

    Relative image paths are taken from ``image_dir``, default the file's folder.
    Record ids come from ``id_column``, default ``<file name>:<line>``.
    """
    base = Path(image_dir) if image_dir else source.parent
    dataset = source_dataset or source.stem
    records = []
    for number, row in _table_rows(source, format):
        missing = [c for c in (image_column, caption_column, id_column) if c and c not in row]
        if missing:
            raise IngestError(
                f"{source}:{number}: no column {missing[0]!r}; columns are "
                f"{', '.join(map(repr, row))} (choose with --image-column, "
                "--caption-column, --id-column)"
            )
        image = Path(str(row[image_column]))
        caption = "" if row[caption_column] is None else str(row[caption_column])
        record_id = str(row[id_column]) if id_column else f"{source.name}:{number}"
        extra = {k: v for k, v in row.items() if k not in (image_column, caption_column, id_column)}
        records.append(PairRecord(base / image, caption.strip(), dataset, record_id, extra))
    return records


def read_folder(
    source: Path,
    *,
    source_dataset: str | None = None,
    image_dir: Path | None = None,
) -> list[PairRecord]:
    """Read a folder (recursively) of images with ``.txt`` caption sidecars.

    ``photo.jpg`` pairs with each non-empty line of ``photo.txt``; an image with no
    sidecar yields nothing. Record ids are ``<relative path>#<line index>``.
    """
    root = Path(image_dir or source)
    dataset = source_dataset or root.resolve().name
    records = []
    for image in sorted(root.rglob("*")):
        if image.suffix.lower() not in IMAGE_SUFFIXES or not image.is_file():
            continue
        sidecar = image.with_suffix(".txt")
        if not sidecar.is_file():
            continue
        captions = [line.strip() for line in _read_lines(sidecar) if line.strip()]
        relative = image.relative_to(root).as_posix()
        for index, caption in enumerate(captions or [""]):
            records.append(PairRecord(image, caption, dataset, f"{relative}#{index}"))
    return records
