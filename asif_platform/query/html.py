"""Render an ``asif explain --json`` document as one self-contained HTML page.

The page needs no network and no JavaScript: images are embedded as base64 JPEG
data URIs and the styles are inline. Every string taken from the document is
HTML-escaped, because captions come from scraped datasets and may hold markup.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PIL import Image

from asif_platform.encoders.preprocessing import load_image
from asif_platform.errors import EncoderError

__all__ = ["render_explanation", "write_explanation_html"]

logger = logging.getLogger(__name__)

_RANK_BADGES = ("predicted", "runner-up")

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222;
       background: #fafafa; }
header { display: flex; gap: 24px; align-items: center; margin-bottom: 24px; }
header img { width: __QUERY_PX__px; height: __QUERY_PX__px; object-fit: contain; }
dl { display: grid; grid-template-columns: auto 1fr; gap: 2px 12px; margin: 0; }
dt { font-weight: 600; }
dd { margin: 0; word-break: break-all; }
section { margin-bottom: 32px; }
h2 { border-bottom: 2px solid #ddd; padding-bottom: 4px; }
.badge { font-size: .6em; padding: 2px 8px; border-radius: 10px; vertical-align: middle;
         color: #fff; background: #888; }
.badge.predicted { background: #2a7d2a; }
.badge.runner-up { background: #b07a10; }
.score { font-weight: normal; color: #555; }
.grid { display: grid; gap: 12px;
        grid-template-columns: repeat(auto-fill, minmax(__CARD_PX__px, 1fr)); }
.card { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 8px;
        font-size: 13px; }
.card img, .placeholder { display: block; margin: 0 auto 6px; }
/* Small images (CIFAR is 32 px) are scaled up to fill the box. */
.card img { width: __THUMB_PX__px; height: __THUMB_PX__px; object-fit: contain; }
.placeholder { width: __THUMB_PX__px; height: __THUMB_PX__px; box-sizing: border-box;
               border: 2px dashed #c33;
               color: #c33; display: flex; align-items: center; justify-content: center;
               text-align: center; background: #fff4f4; }
.caption { font-style: italic; margin: 4px 0; }
.meta { color: #555; margin: 0; }
.empty { color: #777; }
"""


def render_explanation(data: Mapping[str, Any], *, thumbnail_px: int = 160) -> str:
    """Render an explanation document as a self-contained HTML page.

    Args:
        data: The document printed by ``asif explain ... --json``: ``collection``,
            ``image``, ``k``, ``p`` and ``labels``, each label with ``label``,
            ``score`` and ``contributions``.
        thumbnail_px: Longest side of each embedded thumbnail, in pixels; 160 by
            default. The query image is shown at twice this size.

    Returns:
        The page as a string, with every image embedded as a data URI.

    Raises:
        EncoderError: The query image is missing or cannot be decoded. A missing
            anchor image is not an error; its card shows a placeholder instead.
        ValueError: ``thumbnail_px`` is not positive.
    """
    if thumbnail_px <= 0:
        raise ValueError(f"thumbnail_px must be positive, got {thumbnail_px}")

    query_uri = _thumbnail_uri(load_image(data["image"]), 2 * thumbnail_px)
    labels = sorted(data.get("labels", []), key=lambda label: -float(label["score"]))
    anchor_uris: dict[str, str | None] = {}
    sections = [
        _label_section(label, rank, thumbnail_px, anchor_uris)
        for rank, label in enumerate(labels)
    ]

    style = (
        _STYLE.replace("__THUMB_PX__", str(thumbnail_px))
        .replace("__QUERY_PX__", str(2 * thumbnail_px))
        .replace("__CARD_PX__", str(thumbnail_px + 40))
    )
    image = _text(data["image"])
    body = "\n".join(sections) or '<p class="empty">No labels in this explanation.</p>'
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ASIF explanation: {image}</title>
<style>{style}</style>
</head>
<body>
<header>
<img src="{query_uri}" alt="query image">
<div>
<h1>ASIF explanation</h1>
<dl>
<dt>Collection</dt><dd>{_text(data.get("collection", ""))}</dd>
<dt>Image</dt><dd>{image}</dd>
<dt>k</dt><dd>{_text(data.get("k", ""))}</dd>
<dt>p</dt><dd>{_text(data.get("p", ""))}</dd>
</dl>
</div>
</header>
{body}
</body>
</html>
"""


def write_explanation_html(data: Mapping[str, Any], path: Path) -> Path:
    """Render an explanation and write it to ``path`` atomically.

    The page is written to a temporary file in the same folder and then moved
    over ``path``, so a reader never sees a half-written page.

    Args:
        data: The document printed by ``asif explain ... --json``.
        path: Where to write the page; its folder must exist.

    Returns:
        ``path``.

    Raises:
        EncoderError: The query image is missing or cannot be decoded.
        OSError: The page cannot be written.
    """
    page = render_explanation(data)

    path = Path(path)
    temporary: Path | None = None
    try:
        with tempfile.NamedTemporaryFile(
            "w",
            encoding="utf-8",
            dir=path.parent,
            prefix=f".{path.name}.",
            suffix=".tmp",
            delete=False,
        ) as handle:
            temporary = Path(handle.name)
            handle.write(page)
        os.replace(temporary, path)
    except BaseException:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        raise

    logger.info("wrote explanation page %s", path)
    return path


def _label_section(
    label: Mapping[str, Any],
    rank: int,
    thumbnail_px: int,
    anchor_uris: dict[str, str | None],
) -> str:
    """One label's heading and its grid of contribution cards."""
    badge = ""
    if rank < len(_RANK_BADGES):
        badge = f' <span class="badge {_RANK_BADGES[rank]}">{_RANK_BADGES[rank]}</span>'
    cards = [
        _contribution_card(contribution, thumbnail_px, anchor_uris)
        for contribution in label.get("contributions", [])
    ]
    grid = (
        f'<div class="grid">\n{"".join(cards)}</div>'
        if cards
        else '<p class="empty">No contributing anchors.</p>'
    )
    return (
        f"<section>\n<h2>{_text(label['label'])}{badge} "
        f'<span class="score">score {float(label["score"]):.4f}</span></h2>\n'
        f"{grid}\n</section>"
    )


def _contribution_card(
    contribution: Mapping[str, Any],
    thumbnail_px: int,
    anchor_uris: dict[str, str | None],
) -> str:
    """One anchor's card: thumbnail or placeholder, caption and numbers."""
    image_ref = str(contribution.get("image_ref") or "")
    if image_ref not in anchor_uris:
        anchor_uris[image_ref] = _anchor_uri(image_ref, thumbnail_px)
    uri = anchor_uris[image_ref]

    caption = _text(contribution.get("caption", ""))
    if uri is None:
        picture = (
            f'<div class="placeholder" title="{_text(image_ref)}">'
            "image unavailable</div>"
        )
    else:
        picture = f'<img src="{uri}" alt="{caption}" title="{_text(image_ref)}">'
    numbers = (
        f"weight {float(contribution['weight']):.4g}"
        f" &middot; share {100 * float(contribution['share']):.1f}%"
    )
    similarities = (
        f"image sim {float(contribution['image_similarity']):.3f}"
        f" &middot; text sim {float(contribution['text_similarity']):.3f}"
    )
    source = " ".join(
        str(contribution.get(key, "")) for key in ("source_dataset", "source_record_id")
    )
    return f"""<div class="card">
{picture}
<p class="caption">{caption}</p>
<p class="meta">{numbers}</p>
<p class="meta">{similarities}</p>
<p class="meta">anchor {_text(contribution.get("anchor_id", ""))}</p>
<p class="meta">{_text(source.strip())}</p>
</div>
"""


def _anchor_uri(image_ref: str, thumbnail_px: int) -> str | None:
    """The anchor image as a data URI, or None when it cannot be read."""
    if not image_ref:
        return None
    try:
        image = load_image(image_ref)
    except EncoderError as error:
        logger.debug("anchor image unavailable: %s", error)
        return None
    return _thumbnail_uri(image, thumbnail_px)


def _thumbnail_uri(image: Image.Image, size_px: int) -> str:
    """Shrink an RGB PIL image to fit ``size_px`` and encode it as a JPEG data URI."""
    image = image.copy()
    image.thumbnail((size_px, size_px))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"data:image/jpeg;base64,{encoded}"


def _text(value: object) -> str:
    """Escape any value for use in element text or a quoted attribute."""
    return html.escape(str(value), quote=True)
