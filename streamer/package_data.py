"""The files the package reads at run time, shipped inside it and read with ``importlib.resources``.

They are package data (``[tool.setuptools.package-data]`` in pyproject.toml), so they come with the
wheel and are found from any working directory, whether the package is a source checkout, an installed
wheel or a zip on ``sys.path``. Nothing in the package reads files beside it in any other way; a test
builds the wheel and checks that every file listed here is in it.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Final

from streamer.errors import ConfigError


@dataclass(frozen=True, slots=True)
class ResourceDir:
    """A folder of package data: ``folder`` in the package ``anchor``, its files ending in ``suffixes``."""

    anchor: str
    folder: str
    suffixes: tuple[str, ...]


STATIC: Final = ResourceDir("streamer.query", "static", (".html", ".css", ".js"))
# Third-party files the page loads as they were published (uPlot 1.6.32 from npm), with their licence.
VENDOR: Final = ResourceDir("streamer.query", "static/vendor", (".css", ".js", "LICENSE"))
MIGRATIONS: Final = ResourceDir("streamer.sink", "ddl", (".sql",))
KAFKA_SCHEMAS: Final = ResourceDir("streamer", "kafka_schemas", (".json",))
RESOURCE_DIRS: Final = (STATIC, VENDOR, MIGRATIONS, KAFKA_SCHEMAS)


def resource_dir(resource: ResourceDir) -> Traversable:
    """The folder, wherever the package is installed."""
    return files(resource.anchor).joinpath(resource.folder)


def resource_files(resource: ResourceDir) -> list[Traversable]:
    """The folder's files with the resource's suffixes, sorted by name; empty if the folder is missing."""
    folder = resource_dir(resource)
    if not folder.is_dir():
        return []
    found = [f for f in folder.iterdir() if f.is_file() and f.name.endswith(resource.suffixes)]
    return sorted(found, key=lambda f: f.name)


@cache
def on_disk(resource: ResourceDir) -> Path:
    """The folder as a real directory (for servers that want a path): itself, or a copy extracted once.

    A package imported from a zip has no directory on disk; its files are copied into a temporary
    directory removed at exit. A missing or empty folder means a broken installation: ``ConfigError``.
    """
    members = resource_files(resource)
    if not members:
        raise ConfigError(
            f"package data {resource.anchor}/{resource.folder} is missing: the streamer installation "
            "is incomplete (reinstall it)"
        )
    folder = resource_dir(resource)
    if isinstance(folder, Path):
        return folder
    target = Path(tempfile.mkdtemp(prefix=f"streamer-{resource.folder.replace('/', '-')}-"))
    atexit.register(shutil.rmtree, target, ignore_errors=True)
    for member in members:
        (target / member.name).write_bytes(member.read_bytes())
    return target
