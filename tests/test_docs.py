"""README documents every setting and every command."""

from __future__ import annotations

from pathlib import Path

import click

from asif_platform.cli import cli
from asif_platform.settings import SETTINGS_HELP

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def commands(group: click.Group, prefix: str = "asif") -> list[str]:
    found = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += commands(command, f"{prefix} {name}")
        else:
            found.append(f"{prefix} {name}")
    return found


def test_every_setting_is_in_the_readme() -> None:
    missing = [name for name, _, _ in SETTINGS_HELP if f"`{name}`" not in README]
    assert not missing, f"document these settings in README.md: {missing}"


def test_every_command_is_in_the_readme() -> None:
    listed = commands(cli)
    assert "asif version diff" in listed and "asif tune" in listed
    missing = []
    for command in listed:
        *group, verb = command.split()
        group_line = " ".join(group)
        if command not in README and not any(
            line.startswith(group_line) and verb in line.replace("|", " ").split()
            for line in README.splitlines()
        ):
            missing.append(command)
    assert not missing, f"document these commands in README.md: {missing}"
