"""The built artifact, once per session: the wheel, and a venv outside the checkout that has it installed.

The wheel is built (``pip wheel --no-deps``) from a copy of exactly what the Dockerfile's build stage
copies, so a file the image would lack is missing here too. The venv gets the wheel with ``pip install
--no-deps``; its dependencies come from the checkout venv's site-packages through a ``.pth`` file. Paths
listed in a ``.pth`` are appended to ``sys.path`` after the venv's own site-packages, and the ``.pth``
files inside them (the checkout's editable-install hook) are not run, so ``import streamer`` resolves to
the installed wheel; the ``installed`` fixture asserts it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.dockerfile import ROOT, copy_sources, stages


@dataclass(frozen=True)
class Installed:
    """A venv holding the built wheel: its interpreter, its ``streamer`` script, its site-packages."""

    venv: Path
    python: Path
    streamer: Path
    site_packages: Path


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without STREAMER_* or Python path settings, plus ``extra``."""
    drop = ("STREAMER_", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    return {**env, **extra}


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The streamer wheel, built from the sources the Dockerfile's build stage copies."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in copy_sources(stages()[0]):
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    out = base / "dist"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "-q", "-w", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=base,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = out.glob("streamer-*.whl")
    return built


@pytest.fixture(scope="session")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """A fresh venv outside the checkout with the wheel installed; ``import streamer`` is the wheel's."""
    venv = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    )  # fmt: skip
    ours = Path(sysconfig.get_paths()["purelib"]).resolve()
    deps = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    assert ours in {Path(p).resolve() for p in deps}
    (site / "zz_checkout_deps.pth").write_text("".join(f"{p}\n" for p in deps))
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
         str(wheel)],
        capture_output=True, text=True, timeout=300, cwd=venv,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    where = subprocess.run(
        [str(python), "-c", "import streamer, streamer.cli; print(streamer.__file__)"],
        capture_output=True, text=True, timeout=60, cwd=venv, env=clean_env(),
    )  # fmt: skip
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(site / "streamer"), where.stdout
    assert not Path(where.stdout.strip()).is_relative_to(ROOT)
    return Installed(venv, python, venv / "bin" / "streamer", site)
