from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fakes import fake_loader  # noqa: E402

from asif_platform.platform import Platform  # noqa: E402
from asif_platform.settings import Settings  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Fake encoders and embedded Qdrant; the catalog on SQLite and on PostgreSQL."""
    return Settings(home=tmp_path / "asif-data", image_encoder="fake:image",
                    text_encoder="fake:text", principal="tester", database_url=database_url)


@pytest.fixture
def platform(settings: Settings) -> Iterator[Platform]:
    platform = Platform(settings, encoder_loader=fake_loader)  # type: ignore[arg-type]
    yield platform
    platform.close()


COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 200, 40),
    "blue": (30, 40, 220),
    "yellow": (230, 220, 30),
}


@pytest.fixture
def pair_folder(tmp_path: Path) -> Path:
    """24 small images (6 per colour) with a JSONL file of 2 captions each."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "pairs"
    folder.mkdir()
    lines = []
    for colour, rgb in COLOURS.items():
        for index in range(6):
            noise = rng.integers(-25, 25, size=(16, 16, 3))
            pixels = np.clip(np.array(rgb)[None, None, :] + noise, 0, 255).astype(np.uint8)
            name = f"{colour}{index}.png"
            Image.fromarray(pixels).save(folder / name)
            lines.append(f'{{"image": "{name}", "caption": "a {colour} square number {index}"}}')
            lines.append(f'{{"image": "{name}", "caption": "something {colour}"}}')
    (folder / "pairs.jsonl").write_text("\n".join(lines) + "\n")
    return folder


# Catalog tests run twice: on SQLite and on the PostgreSQL server at 127.0.0.1:5432,
# each PostgreSQL test in a database of its own, dropped afterwards. Set
# ASIF_TEST_POSTGRES_URL to use another server (a database to connect to while
# creating the per-test ones).
POSTGRES_ADMIN_URL = os.environ.get(
    "ASIF_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    name = f"asif_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
