"""Catalog connections, sessions and migrations."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from asif_platform.errors import CatalogError

__all__ = [
    "MIGRATIONS_DIR",
    "Catalog",
    "alembic_config",
    "current_revision",
    "head_revision",
    "upgrade",
]

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str, connection: Connection | None = None) -> Config:
    """An Alembic config built in code for ``url`` (or a shared connection)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Config values go through configparser interpolation: escape '%' in passwords.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    head = script.get_current_head()
    assert head is not None  # the package ships at least one revision
    return head


def known_revisions() -> set[str]:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return {revision.revision for revision in script.walk_revisions()}


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run the migrations up to ``revision`` on the engine's database."""
    with engine.begin() as connection:
        command.upgrade(alembic_config(str(engine.url), connection), revision)


def _create_engine(url: str) -> Engine:
    parsed = make_url(url)
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30}
    engine = create_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

    return engine


def unstorable(text: str) -> str | None:
    """Why the catalog cannot store ``text``, or None: PostgreSQL refuses NUL characters,
    and a lone surrogate (which JSON's \\ud800 escapes allow) is not UTF-8."""
    if "\0" in text:
        return "contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (it holds a lone surrogate)"
    return None


class Catalog:
    """The SQL catalog: an engine, a session factory and the schema check.

    Args:
        url: SQLAlchemy database URL.
        auto_upgrade: Migrate a database that has no tables yet. A database that
            has tables at another revision is never migrated implicitly; run
            ``asif db upgrade``. Defaults to True.
    """

    def __init__(self, url: str, *, auto_upgrade: bool = True) -> None:
        try:
            self.engine = _create_engine(url)
            self._check_schema(auto_upgrade)
        except SQLAlchemyError as exc:
            raise CatalogError(
                f"cannot open the catalog at {make_url(url).render_as_string()}: {exc}"
            ) from exc
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def _check_schema(self, auto_upgrade: bool) -> None:
        current = current_revision(self.engine)
        head = head_revision()
        if current == head:
            return
        if current is None and auto_upgrade and not inspect(self.engine).get_table_names():
            logger.info("creating the catalog schema at revision %s", head)
            upgrade(self.engine)
            return
        if current is not None and current not in known_revisions():
            raise CatalogError(
                f"the catalog is at revision {current}, which this version of ASIF "
                f"Platform (revision {head}) does not know: a newer version made it; "
                "upgrade ASIF Platform"
            )
        raise CatalogError(
            f"the catalog is at revision {current or 'none'} but this version of ASIF "
            f"Platform needs {head}: run `asif db upgrade`"
        )

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success and rolled back on any error.

        Database errors come out as CatalogError, with the original chained.
        """
        session = self._sessions()
        try:
            yield session
            session.commit()
        except SQLAlchemyError as exc:
            session.rollback()
            raise CatalogError(f"catalog operation failed: {exc}") from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def close(self) -> None:
        self.engine.dispose()
