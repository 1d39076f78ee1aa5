"""README: names its two set-up commands, documents every setting and CLI option with its default,
uses point names the default simulator has, and explains the simulator's point counts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click
from pydantic import SecretStr

from streamer.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _section(title: str) -> str:
    """The text of README's ``## title`` section, up to the next ``## `` heading."""
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else len(README)]


def test_readme_documents_every_setting() -> None:
    """Each Settings field appears in the configuration table as its STREAMER_ variable."""
    missing = [name for name in Settings.model_fields if f"`STREAMER_{name.upper()}`" not in README]
    assert missing == []


def _rendered_default(value: Any) -> str:
    """A Settings default as README's configuration table writes it."""
    if value is None:
        return "—"
    if isinstance(value, SecretStr):
        return "(secret, empty)" if not value.get_secret_value() else "(secret)"
    if isinstance(value, list | tuple):
        value = ",".join(str(item) for item in value)
    text = str(value)
    return text if text else "(empty)"


def test_readme_states_every_settings_default() -> None:
    """The default column of each STREAMER_ row equals the Settings default, rendered one way."""
    rows = dict(re.findall(r"^\| `STREAMER_(\w+)` \| `([^`]*)` \|", _section("Configuration"), re.M))
    assert set(rows) == {name.upper() for name in Settings.model_fields}
    wrong = {
        name: (rows[name.upper()], _rendered_default(field.get_default(call_default_factory=True)))
        for name, field in Settings.model_fields.items()
        if rows[name.upper()] != _rendered_default(field.get_default(call_default_factory=True))
    }
    assert wrong == {}


def test_readme_names_the_two_setup_commands() -> None:
    """`make dev` and `make test` are the set-up commands, and the Makefile defines both."""
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    for command in ("make dev", "make test"):
        assert command in README
        assert f"\n{command.split()[1]}:" in makefile


def _commands() -> dict[str, list[str]]:
    """Every `streamer` command (path without "streamer", "" for the group itself) and its long options
    except --help, walked from the click tree."""
    from streamer.cli import cli

    found: dict[str, list[str]] = {}

    def walk(command: click.Command, path: str) -> None:
        options = [
            name
            for param in command.params
            if isinstance(param, click.Option)
            for name in (*param.opts, *param.secondary_opts)
            if name.startswith("--") and name != "--help"
        ]
        if isinstance(command, click.Group):
            ctx = click.Context(command)
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None, name
                walk(sub, f"{path} {name}".strip())
            if options or not path:
                found[path] = options
        else:
            found[path] = options

    walk(cli, "")
    return found


def _command_blocks() -> list[tuple[list[str], str]]:
    """README's Commands section as (command paths, text) blocks: each item of the options list with
    the commands its header names (``- `streamer P`, `streamer Q` ...: options``), and each table row
    with the commands of its first cell, unless that cell spells several as ``a\\|b``."""
    section = _section("Commands")
    blocks: list[tuple[list[str], str]] = []
    for chunk in re.split(r"\n(?=- )", section):
        item = chunk.split("\n\n")[0]  # an item ends at its list's end
        header, *rest = re.split(r":\s", item, maxsplit=1)
        if item.startswith("- ") and rest:
            names = re.findall(r"`streamer((?: [a-z][\w-]*)*)`", header)
            blocks.append(([name.strip() for name in names], item))
    for line in section.splitlines():
        if not line.startswith("| `streamer"):
            continue
        first_cell = re.split(r"(?<!\\)\|", line)[1]
        paths = []
        for span in re.findall(r"`(streamer[^`]*)`", first_cell):
            words = []
            for word in span.split()[1:]:
                if word.startswith(("-", "[")):
                    break
                words.append(word)
            paths.append(" ".join(words))
        if not any("\\|" in path for path in paths):
            blocks.append((paths, line))
    return blocks


def _mentions(text: str, option: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text) is not None


def test_readme_documents_every_cli_option() -> None:
    """Every long option of every `streamer` command is named in README's Commands section, in an
    options-list item or table row of that very command."""
    commands = _commands()
    assert {"", "sim serve", "gaps", "dlq replay"} <= set(commands)  # the walk reached the tree
    docs: dict[str, str] = {}
    for paths, text in _command_blocks():
        for path in paths:
            docs[path] = docs.get(path, "") + "\n" + text
    undocumented = sorted(set(commands) - set(docs))
    assert undocumented == []
    missing = {
        path: [o for o in options if not _mentions(docs[path], o)] for path, options in commands.items()
    }
    assert {path: options for path, options in missing.items() if options} == {}


def test_readme_names_only_options_its_commands_have() -> None:
    """An option README's Commands section gives a command exists on it (no stale or misspelt names)."""
    commands = _commands()
    stale = []
    for paths, text in _command_blocks():
        unknown = sorted(set(paths) - set(commands))
        if unknown:
            stale.append(f"no command {unknown} (in: {text[:60]})")
            continue
        known = {option for path in paths for option in commands[path]} | {"--help"}
        named = set(re.findall(r"(?<![\w-])--[a-z][\w-]*", text))
        stale += [f"{' / '.join(paths) or 'streamer'}: {option}" for option in sorted(named - known)]
    assert stale == []


def _shown_default(value: object) -> str:
    """A CLI default as README's options list writes it: 10.0 as 10."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def test_readme_states_the_cli_defaults() -> None:
    """Each option whose --help shows a default has that default in parentheses right after one of its
    mentions for its command (before the next option)."""
    from streamer.cli import cli

    docs: dict[str, str] = {}
    for paths, text in _command_blocks():
        for path in paths:
            docs[path] = docs.get(path, "") + "\n" + text
    wrong = []
    for path in _commands():
        command: click.Command = cli
        for name in path.split():
            assert isinstance(command, click.Group)
            found = command.get_command(click.Context(command), name)
            assert found is not None
            command = found
        for param in command.params:
            if not isinstance(param, click.Option) or param.is_flag or not param.show_default:
                continue
            option, default = param.opts[0], _shown_default(param.default)
            segments = re.findall(
                rf"(?<![\w-]){re.escape(option)}(?![\w-])(.*?)(?=(?<![\w-])--[a-z]|$)",
                docs.get(path, ""),
                re.S,
            )
            if not any(re.search(rf"\({re.escape(default)}[):;,]", seg) for seg in segments):
                wrong.append(f"{path} {option} ({default})")
    assert wrong == []


_POINT_NAME = re.compile(r"(?<![\w/])site_\d+/[\w.-]+(?:/[\w.*-]+)+")


def test_readme_example_points_exist_in_the_default_simulator() -> None:
    """Every site_NN/... point name in README is a point the default simulator (`streamer dev`'s sites)
    lists as configured and collects by default, so the examples return data."""
    from streamer.dev.cli import dev
    from streamer.sim.catalog import catalog_of
    from streamer.sim.config import SimConfig, parse_sites

    sites = next(p.default for p in dev.params if p.name == "site_count")
    config = SimConfig(sites=parse_sites(str(sites)))
    names = set(_POINT_NAME.findall(README))
    assert names  # the examples name points: the check is not vacuous
    wrong = []
    for name in sorted(names):
        site = name.split("/", 1)[0]
        if site not in config.sites:
            wrong.append(f"{name}: no site {site}")
            continue
        catalog = catalog_of(config, site)
        j = catalog.index.get(name)
        if j is None or not catalog.configured[j] or not catalog.default_enabled[j]:
            wrong.append(f"{name}: not a collected point")
    assert wrong == []


def test_readme_explains_the_simulators_point_counts() -> None:
    """The set-up text states how the configured points of a simulated site become the points stored
    (disabled ones out, weather points in) and how many unconfigured points also have samples."""
    from streamer.ace.weather import WEATHER_POINTS
    from streamer.sim.catalog import catalog_of
    from streamer.sim.config import SimConfig

    config = SimConfig()
    catalog = catalog_of(config, config.sites[0])
    configured = int(catalog.configured.sum())
    collected = int(catalog.default_enabled.sum())
    figures = {
        "configured": configured,
        "disabled": configured - collected,
        "collected": collected,
        "weather": len(WEATHER_POINTS),
        "stored": collected + len(WEATHER_POINTS),
        "unconfigured": catalog.size - configured,
        "with samples": catalog.size,
    }
    setup = " ".join(_section("Set up").split())
    phrases = {
        "configured": f"{figures['configured']:,} configured points",
        "disabled": f"{figures['disabled']:,} of them",
        "collected": f"{figures['collected']:,} collected points",
        "weather": f"{figures['weather']:,} `weather.*` points",
        "stored": f"{figures['stored']:,} points per site",
        "unconfigured": f"{figures['unconfigured']:,} points it does not list",
        "with samples": f"{figures['with samples']:,} points with samples",
    }
    missing = {what: phrase for what, phrase in phrases.items() if phrase not in setup}
    assert missing == {}
