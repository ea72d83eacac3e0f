"""Every command explains itself in --help, with an example, and the README names it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main

from catalog.cli import app

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def _commands(group=None, prefix=()):
    group = group or typer.main.get_command(app)
    for name in sorted(group.list_commands(None)):
        command = group.get_command(None, name)
        path = (*prefix, name)
        if hasattr(command, "commands"):
            yield from _commands(command, path)
        else:
            yield path, command


COMMANDS = list(_commands())


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """--help is answered before any catalogue is opened, so one backend is enough here."""
    return f"sqlite:///{tmp_path / 'catalog.db'}"


def test_there_are_commands():
    assert {" ".join(path) for path, _ in COMMANDS} >= {
        "sync",
        "show",
        "failures",
        "db upgrade",
        "db current",
    }


@pytest.mark.parametrize("path,command", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_command_has_help_with_an_example(path, command):
    assert command.help, f"{' '.join(path)} has no help"
    assert "Example: catalog" in command.help


@pytest.mark.parametrize("path,command", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_command_is_documented_in_readme(path, command):
    assert f"catalog {' '.join(path)}" in README


@pytest.mark.parametrize("path,command", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_help_runs(invoke, path, command):
    result = invoke(*path, "--help")
    assert result.exit_code == 0
    assert "Usage" in result.stdout


# Rich markup, and the escaped brackets ("\\[default: 50]") Typer writes for rich.
MARKUP = re.compile(
    r"\\\[|\[/\]|\[/?(?:bold|cyan|red|green|yellow|blue|magenta|dim|italic|link)\b[^\]]*\]"
)


@pytest.mark.parametrize("path,command", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_rendered_help_has_no_markup_leftovers(invoke, path, command):
    shown = invoke(*path, "--help").stdout
    assert not MARKUP.findall(shown), (
        f"{' '.join(path)} --help shows markup: {MARKUP.findall(shown)}"
    )


def test_search_help_keeps_the_language_table_as_a_table(invoke):
    lines = invoke("search", "--help").stdout.splitlines()
    assert any(line.split() == ["Car", "has", "the", "label", "at", "all"] for line in lines)
    assert any(line.strip().startswith("size:>5MB") for line in lines)
    assert any(line.strip().startswith("count(Person) >= 3") for line in lines)
