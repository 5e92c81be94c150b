"""Creating collections and changing their query defaults, at the platform layer."""

from __future__ import annotations

import json
import math

import pytest
from alembic import command
from fakes import fake_loader

from sqlalchemy import create_engine, select, text

from asif_platform import teams
from asif_platform.audit import visible_entries
from asif_platform.catalog import Catalog, Collection, alembic_config
from asif_platform.errors import CatalogError, ConfigError, NotFound
from asif_platform.platform import Platform
from asif_platform.settings import Settings
from asif_platform.store import CollectionSchema


def graph(platform: Platform, name: str) -> dict:  # type: ignore[type-arg]
    config = json.loads((platform.settings.qdrant_path / name / "edge_config.json").read_text())
    return {"m": config["hnsw_config"]["m"], "int8": "quantization_config" in config}


def test_an_empty_leftover_shard_is_made_again_with_the_recorded_settings(
    platform: Platform,
) -> None:
    # What a crash between creating the shard and the catalog commit leaves behind.
    platform.store.create(CollectionSchema(name="left", image_dim=48, text_dim=16,
                                           hnsw_m=8, quantization="int8"))
    info = platform.create_collection("left", hnsw_m=16)
    assert (info.hnsw_m, info.quantization) == (16, "none")
    assert graph(platform, "left") == {"m": 16, "int8": False}


def test_graph_settings_and_p_are_bounded(platform: Platform) -> None:
    for bad in ({"hnsw_m": 0}, {"hnsw_m": 129}, {"hnsw_ef_construct": 1},
                {"hnsw_ef_construct": 4097}, {"p": math.nan}, {"p": math.inf},
                {"quantization": "int4"}):
        with pytest.raises(ConfigError):
            platform.create_collection("bounded", **bad)  # type: ignore[arg-type]
    assert not platform.store.exists("bounded")
    assert platform.create_collection("plain", quantization="none").quantization == "none"
    with pytest.raises(ConfigError, match="positive number"):
        platform.update_collection_defaults("plain", p=math.nan)


def test_only_real_changes_of_the_defaults_are_audited(platform: Platform) -> None:
    platform.create_collection("tuned")
    platform.update_collection_defaults("tuned")  # nothing given: nothing changes
    platform.update_collection_defaults("tuned", k=800, exact_search=True)  # as they are
    platform.update_collection_defaults("tuned", k=800, hnsw_ef=400, exact_search=False,
                                        templates=["a {}."])
    changes = [e for e in visible_entries(platform, last=100) if e.action == "collection.defaults"]
    assert [e.details for e in changes] == [
        {"hnsw_ef": 400, "exact_search": False, "templates": 1}]
    with pytest.raises(ConfigError, match="not valid Unicode"):
        platform.update_collection_defaults("tuned", templates=["\ud800 {}"])
    assert platform.describe_collection("tuned").templates == ("a {}.",)


def test_missing_and_hidden_collections_leave_the_same_trace(settings: Settings) -> None:
    owner = Platform(settings, encoder_loader=fake_loader)  # type: ignore[arg-type]
    owner.create_collection("private")
    stranger = owner.as_principal("stranger")
    for name in ("private", "absent"):
        with pytest.raises(NotFound) as raised:
            stranger.get_collection(name)
        assert str(raised.value) == (
            f"no collection named {name!r} is visible to 'stranger'; `asif collection "
            "list` shows yours and `asif collection create` makes one")
    seen = [(e.action, e.outcome, e.details) for e in visible_entries(stranger, last=100)
            if e.principal == "stranger"]
    assert seen == [("collection.read", "refused", {"role": None, "needed": "viewer"})] * 2
    owner.close()


def test_the_service_will_not_start_on_a_catalog_that_needs_an_upgrade(
    settings: Settings,
) -> None:
    from asif_platform.service import create_app

    Platform(settings, encoder_loader=fake_loader).catalog.close()  # type: ignore[arg-type]
    command.downgrade(alembic_config(settings.sqlalchemy_url), "0005")
    with pytest.raises(CatalogError, match="asif db upgrade"):
        create_app(settings, encoder_loader=fake_loader)  # type: ignore[arg-type]


def test_claiming_another_teams_collection_reads_as_missing(settings: Settings) -> None:
    owner = Platform(settings, encoder_loader=fake_loader)  # type: ignore[arg-type]
    owner.create_collection("owned")
    owner.create_collection("loose")
    with owner.catalog.session() as session:  # as collections made before teams were
        session.scalars(select(Collection).where(Collection.name == "loose")).one().team_id = None
    stranger = owner.as_principal("stranger")
    teams.create_team(stranger, "mine")
    for name in ("owned", "absent"):
        with pytest.raises(NotFound, match=f"no collection named '{name}' is visible"):
            teams.claim_collection(stranger, name, "mine")
    teams.claim_collection(stranger, "loose", "mine")
    assert [c.name for c in stranger.list_collections()] == ["loose"]
    owner.close()


def test_a_catalog_from_a_newer_release_asks_for_a_newer_release(settings: Settings) -> None:
    Platform(settings, encoder_loader=fake_loader).catalog.close()  # type: ignore[arg-type]
    engine = create_engine(settings.sqlalchemy_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(CatalogError, match="revision 9999, which this version .* does not know"):
        Catalog(settings.sqlalchemy_url)
