"""The self-contained HTML explanation page: escaping, placeholders, a real render."""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SHARED_DATA
from PIL import Image

from asif_platform.errors import EncoderError
from asif_platform.query.html import render_explanation, write_explanation_html

CHROMIUM = Path("/usr/bin/chromium")

HOSTILE_CAPTIONS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "fish & chips 'n' \"quotes\"",
]


class _TagCollector(HTMLParser):
    """Records every start tag with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _parse(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _TagCollector()
    parser.feed(page)
    parser.close()
    return parser.tags


def _contribution(
    anchor_id: int, caption: str, image_ref: str | Path
) -> dict[str, Any]:
    return {
        "anchor_id": anchor_id,
        "weight": 0.0023,
        "share": 0.035,
        "image_similarity": 0.926,
        "text_similarity": 0.643,
        "caption": caption,
        "image_ref": str(image_ref),
        "source_dataset": "flickr8k",
        "source_record_id": f"{anchor_id}.jpg#0",
    }


def _document(query: str | Path, labels: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "collection": "flickr8k",
        "image": str(query),
        "k": 800,
        "p": 8.0,
        "labels": labels,
    }


def _noise_image(path: Path, seed: int) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 255, size=(48, 64, 3))
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    return path


def test_markup_in_the_data_is_escaped(tmp_path: Path) -> None:
    query = _noise_image(tmp_path / "query.png", seed=0)
    anchor = _noise_image(tmp_path / "anchor.png", seed=1)
    contributions = [
        _contribution(index, caption, anchor)
        for index, caption in enumerate(HOSTILE_CAPTIONS)
    ]
    contributions.append(_contribution(99, "missing", tmp_path / '"><b>gone</b>.jpg'))
    data = _document(
        query,
        [
            {
                "label": "<script>alert('label')</script>",
                "score": 0.01,
                "contributions": contributions,
            },
            {"label": "cats & dogs", "score": 0.05, "contributions": contributions[:1]},
        ],
    )

    page = render_explanation(data)

    for raw in [
        *HOSTILE_CAPTIONS,
        "<script>alert('label')</script>",
        "<b>gone</b>",
        "cats & dogs",
    ]:
        assert raw not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert "fish &amp; chips &#x27;n&#x27; &quot;quotes&quot;" in page
    assert "&lt;script&gt;alert(&#x27;label&#x27;)&lt;/script&gt;" in page
    assert "cats &amp; dogs" in page
    tags = _parse(page)
    assert not [tag for tag, _ in tags if tag == "script"]
    images = [attrs for tag, attrs in tags if tag == "img"]
    assert len(images) == 1 + len(HOSTILE_CAPTIONS) + 1
    assert all((attrs.get("src") or "").startswith("data:image/") for attrs in images)
    assert not [name for _, attrs in tags for name in attrs if name.startswith("on")]


def test_labels_are_sorted_by_score_with_badges(tmp_path: Path) -> None:
    query = _noise_image(tmp_path / "query.png", seed=0)
    data = _document(
        query,
        [
            {"label": "asked", "score": 0.01, "contributions": []},
            {"label": "best", "score": 0.09, "contributions": []},
            {"label": "second", "score": 0.05, "contributions": []},
        ],
    )

    page = render_explanation(data)

    assert page.index(">best") < page.index(">second") < page.index(">asked")
    assert page.index("best") < page.index(">predicted<") < page.index("second")
    assert page.index("second") < page.index(">runner-up<") < page.index("asked")
    assert '<meta charset="utf-8">' in page
    assert "http://" not in page and "https://" not in page


def test_missing_anchor_image_shows_a_placeholder(tmp_path: Path) -> None:
    query = _noise_image(tmp_path / "query.png", seed=0)
    (tmp_path / "corrupt.jpg").write_bytes(b"not a jpeg")
    data = _document(
        query,
        [
            {
                "label": "ship",
                "score": 0.06,
                "contributions": [
                    _contribution(1, "a ship", tmp_path / "nowhere.jpg"),
                    _contribution(2, "a boat", tmp_path / "corrupt.jpg"),
                    _contribution(3, "a raft", ""),
                ],
            }
        ],
    )

    page = render_explanation(data)

    assert page.count(">image unavailable<") == 3
    assert "a ship" in page and "3.5%" in page
    assert len([tag for tag, _ in _parse(page) if tag == "img"]) == 1


def test_missing_query_image_raises_encoder_error(tmp_path: Path) -> None:
    data = _document(tmp_path / "absent.jpg", [])

    with pytest.raises(EncoderError, match="absent.jpg"):
        render_explanation(data)


def test_write_is_atomic_and_leaves_no_temp_file(tmp_path: Path) -> None:
    query = _noise_image(tmp_path / "query.png", seed=0)
    target = tmp_path / "out" / "page.html"
    target.parent.mkdir()
    target.write_text("old")

    written = write_explanation_html(_document(query, []), target)

    assert written == target
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [path.name for path in target.parent.iterdir()] == ["page.html"]


def test_write_failure_leaves_the_old_page(tmp_path: Path) -> None:
    target = tmp_path / "page.html"
    target.write_text("old")

    with pytest.raises(EncoderError):
        write_explanation_html(_document(tmp_path / "absent.jpg", []), target)

    assert target.read_text() == "old"
    assert [path.name for path in tmp_path.iterdir()] == ["page.html"]


def test_page_renders_in_headless_chromium(tmp_path: Path) -> None:
    assert CHROMIUM.exists(), (
        f"{CHROMIUM} not found; install Debian's chromium package: "
        "apt-get install -y chromium"
    )
    flickr = sorted((SHARED_DATA / "flickr8k" / "images").glob("*.jpg"))[:2]
    assert len(flickr) == 2, "the Flickr8k images are missing from the shared data"
    query = SHARED_DATA / "cifar10" / "test" / "ship" / "0000.jpg"
    data = _document(
        query,
        [
            {
                "label": "ship",
                "score": 0.0653,
                "contributions": [
                    _contribution(1, "A ship with a red and white sail .", flickr[0]),
                    _contribution(2, "A boat on the water <at dusk> & calm", flickr[1]),
                    _contribution(
                        3, "An anchor whose image is gone", tmp_path / "gone.jpg"
                    ),
                ],
            },
            {
                "label": "dog",
                "score": 0.0109,
                "contributions": [
                    _contribution(4, "A dog runs .", flickr[1]),
                ],
            },
        ],
    )
    page = write_explanation_html(data, tmp_path / "page.html")
    shot = tmp_path / "shot.png"

    result = subprocess.run(
        [
            str(CHROMIUM),
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1200,1600",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert shot.exists(), result.stderr
    if os.environ.get("ASIF_SCREENSHOT_PATH"):
        copy = Path(os.environ["ASIF_SCREENSHOT_PATH"])
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, copy)
    with Image.open(shot) as image:
        assert image.format == "PNG"
        assert image.size == (1200, 1600)
        pixels = np.asarray(image.convert("RGB"), dtype=np.float64)
    assert pixels.std() > 5, "the screenshot is a single flat colour"
