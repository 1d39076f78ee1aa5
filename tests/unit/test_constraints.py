"""constraints.txt: the tested versions, pinning every dependency within pyproject's ranges, used by make."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, pinned = line.partition("==")
        assert sep and re.fullmatch(r"[\w.+!-]+", pinned), f"not a name==version pin: {line}"
        pins[canonicalize_name(name)] = pinned
    return pins


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        lines += extra
    return [Requirement(line) for line in lines]


def test_every_dependency_is_pinned_inside_its_range() -> None:
    """Each direct dependency (core and every extra) has one pin, and pyproject's range admits it."""
    pins = _pins()
    assert "streamer" not in pins
    for requirement in _requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} not in constraints.txt (run `make constraints`)"
        assert requirement.specifier.contains(pins[name], prereleases=True), (requirement, pins[name])


def test_tests_run_on_the_pinned_versions() -> None:
    """Every pinned package is installed here at its pinned version: the pins are what the tests ran on."""
    wrong: dict[str, tuple[str, str | None]] = {}
    for name, pinned in _pins().items():
        try:
            installed: str | None = version(name)
        except PackageNotFoundError:
            installed = None
        if installed != pinned:
            wrong[name] = (pinned, installed)
    assert wrong == {}, "pinned vs installed (reinstall with `make install`, or `make constraints`)"


def test_make_installs_with_the_constraints_and_the_embedded_extra() -> None:
    """`make install` (so `make dev`, `make test`, CI) installs `.[dev,embedded]` under constraints.txt."""
    makefile = (ROOT / "Makefile").read_text()
    (line,) = [x for x in makefile.splitlines() if "pip install" in x and "-e " in x]
    assert "-c constraints.txt" in line and "'.[dev,embedded]'" in line, line
    assert re.search(r"^\$\(STAMP\):.*\bconstraints\.txt\b", makefile, re.M), "reinstall when the pins change"
