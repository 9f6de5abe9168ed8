"""Every command is documented: its --help ends with an example, and the README shows it."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from apidriver.cli import cli

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_command_help_ends_with_an_example(name: str) -> None:
    command = cli.commands[name]
    assert isinstance(command, click.Command)
    help_text = (command.help or "").rstrip()
    assert command.short_help
    example = help_text.rsplit("Example:", 1)[-1].strip()
    assert "Example:" in help_text and example.startswith(f"apidriver {name}")


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_command_in_the_readme(name: str) -> None:
    text = README.read_text()
    section = text.split("## Command line", 1)[1].split("\n## ", 1)[0]
    assert f"apidriver {name}" in section
