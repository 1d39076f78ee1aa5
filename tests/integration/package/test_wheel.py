"""The built wheel holds every file the package reads at run time, and reads them from a zip too."""

from __future__ import annotations

import re
import subprocess
import zipfile
from email.parser import Parser
from pathlib import Path

from packaging.requirements import Requirement

from streamer.cli import SUBCOMMANDS
from streamer.package_data import RESOURCE_DIRS, STATIC, VENDOR, resource_files
from tests.dockerfile import ROOT
from tests.integration.package.conftest import Installed, clean_env


def _members(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def _expected_data() -> set[str]:
    """Wheel paths of every package-data file the code refers to (streamer.package_data)."""
    out: set[str] = set()
    for resource in RESOURCE_DIRS:
        names = [f.name for f in resource_files(resource)]
        assert names, f"{resource} has no files in the checkout"
        out |= {f"{resource.anchor.replace('.', '/')}/{resource.folder}/{name}" for name in names}
    return out


def test_wheel_holds_every_runtime_file_and_nothing_unregistered(wheel: Path) -> None:
    """Static files, migrations and Kafka schemas are in the wheel; its other data files are none."""
    members = _members(wheel)
    assert _expected_data() <= members, sorted(_expected_data() - members)
    data = {m for m in members if m.startswith("streamer/") and not m.endswith(".py") and not m.endswith("/")}
    assert data == _expected_data(), "package data not listed in streamer.package_data"


def test_wheel_holds_every_module_of_the_source_tree(wheel: Path) -> None:
    """Every .py file under streamer/ is in the wheel (a folder without __init__.py would be left out)."""
    sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / "streamer").rglob("*.py")}
    assert sources - _members(wheel) == set()


def test_installed_command_lists_every_subcommand(installed: Installed, tmp_path: Path) -> None:
    """The installed `streamer --help`, run elsewhere, lists every subcommand of the CLI."""
    command = [str(installed.streamer), "--help"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=tmp_path, env=clean_env())
    assert done.returncode == 0, done.stderr
    listed = {line.split()[0] for line in done.stdout.split("Commands:")[1].splitlines() if line.strip()}
    assert listed == set(SUBCOMMANDS)


def test_page_assets_it_links_are_shipped(wheel: Path) -> None:
    """Every /static/ asset index.html links to (its own and the vendored uPlot) is a file of the static
    folders in the wheel."""
    with zipfile.ZipFile(wheel) as archive:
        page = archive.read("streamer/query/static/index.html").decode()
        linked = set(re.findall(r'(?:href|src)="/static/([^"]+)"', page))
        assert linked, "the page links no assets?"
        assert {f"streamer/query/static/{name}" for name in linked} <= set(archive.namelist())
    shipped = {f.name for f in resource_files(STATIC)} | {f"vendor/{f.name}" for f in resource_files(VENDOR)}
    assert {"vendor/uPlot.iife.min.js", "vendor/uPlot.min.css"} <= linked <= shipped


def test_no_module_locates_files_beside_itself(wheel: Path) -> None:
    """No module in the wheel uses __file__: package data is read through importlib.resources only."""
    with zipfile.ZipFile(wheel) as archive:
        users = [m for m in archive.namelist() if m.endswith(".py") and b"__file__" in archive.read(m)]
    assert users == []


def test_embedded_engine_is_an_extra_and_internals_are_bounded(wheel: Path) -> None:
    """chdb (with pandas, pyarrow) only comes with the `embedded` extra; the libraries whose internals
    the code touches have upper bounds."""
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [m for m in archive.namelist() if m.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(archive.read(name).decode())
    requirements = [Requirement(r) for r in metadata.get_all("Requires-Dist") or []]
    core = {r.name.lower(): r for r in requirements if r.marker is None}
    assert not {"chdb", "chdb-core", "pandas", "pyarrow"} & set(core)
    assert all("chdb" not in r.extras for r in core.values())
    embedded = [r for r in requirements if r.marker is not None and r.marker.evaluate({"extra": "embedded"})]
    assert [r.name for r in embedded] == ["chdb"]
    bounded = {**core, "chdb": embedded[0]}
    for package in ["faust-streaming", "mode-streaming", "aiokafka", "clickhouse-connect", "chdb"]:
        assert any(spec.operator in {"<", "<=", "=="} for spec in bounded[package].specifier), package


_ZIPPED = """
import sys
sys.path.insert(0, sys.argv[1])
import streamer
assert streamer.__file__.startswith(sys.argv[1]), streamer.__file__
from streamer.package_data import STATIC, VENDOR, on_disk
from streamer.schemas import stale_files
from streamer.sink.migrations import load_migrations
static = sorted(p.name for p in on_disk(STATIC).iterdir() if p.is_file())
vendor = sorted(p.name for p in on_disk(VENDOR).iterdir())
print(len(load_migrations()), len(stale_files()), static, vendor)
"""


def test_package_data_is_read_from_a_zipped_package(
    wheel: Path, installed: Installed, tmp_path: Path
) -> None:
    """Imported straight from the wheel (a zip), the package finds its migrations, schemas, page and the
    page's vendored library."""
    done = subprocess.run(
        [str(installed.python), "-c", _ZIPPED, str(wheel)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, env=clean_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    migrations = sum(1 for m in _members(wheel) if m.startswith("streamer/sink/ddl/"))
    static = sorted(f.name for f in resource_files(STATIC))
    vendor = sorted(f.name for f in resource_files(VENDOR))
    assert vendor == ["LICENSE", "uPlot.iife.min.js", "uPlot.min.css"]
    assert done.stdout.strip() == f"{migrations} 0 {static} {vendor}"
