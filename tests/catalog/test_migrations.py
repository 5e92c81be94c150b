"""Alembic owns the schema: upgrade, downgrade, one head, and no drift from the models."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from asif_platform.catalog import Base, Catalog, alembic_config, current_revision, head_revision
from asif_platform.errors import CatalogError

TABLES = {"collections", "anchors", "ingest_runs"}


def test_one_head() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert script.get_heads() == [head_revision()]


def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    config = alembic_config(database_url)
    command.upgrade(config, "head")
    catalog = Catalog(database_url)
    assert current_revision(catalog.engine) == head_revision()
    assert TABLES <= set(inspect(catalog.engine).get_table_names())

    command.downgrade(config, "base")
    assert set(inspect(catalog.engine).get_table_names()) <= {"alembic_version"}
    command.upgrade(config, "head")
    assert TABLES <= set(inspect(catalog.engine).get_table_names())
    catalog.close()


def test_models_match_the_migrated_schema(database_url: str) -> None:
    catalog = Catalog(database_url)  # an empty database is migrated on open
    with catalog.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    catalog.close()
    assert diff == []


def test_a_database_with_foreign_tables_is_not_migrated_implicitly(database_url: str) -> None:
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE stray (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    with pytest.raises(CatalogError, match="asif db upgrade"):
        Catalog(database_url)
