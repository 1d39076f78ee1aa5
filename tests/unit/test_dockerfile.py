"""The Dockerfile builds the streamer wheel at the tested versions and installs that same wheel."""

from __future__ import annotations

import fnmatch
from pathlib import Path

from tests.dockerfile import ROOT, Stage, copy_sources, run_words, stages


def _pip(stage: Stage, command: str) -> list[str]:
    """The words of the stage's one ``pip <command>`` RUN, from ``pip`` on."""
    found = [w[w.index("pip") :] for w in run_words(stage) if "pip" in w and w[w.index("pip") + 1] == command]
    assert len(found) == 1, f"stage {stage.name} should run `pip {command}` once: {run_words(stage)}"
    return found[0]


def _option(words: list[str], *names: str) -> str:
    for i, word in enumerate(words):
        for name in names:
            if word == name:
                return words[i + 1]
            if word.startswith(name + "="):
                return word.split("=", 1)[1]
    raise AssertionError(f"no {names} in {words}")


def _mounts(stage: Stage) -> dict[str, dict[str, str]]:
    """target → options of every ``RUN --mount=...`` in the stage."""
    out: dict[str, dict[str, str]] = {}
    for words in run_words(stage):
        for word in words:
            if word.startswith("--mount="):
                options = dict(part.split("=", 1) for part in word.removeprefix("--mount=").split(","))
                out[options["target"]] = options
    return out


def test_build_stage_makes_the_wheels_with_the_constraints() -> None:
    """The build stage copies the sources and constraints.txt and runs `pip wheel -c constraints.txt`."""
    build = stages()[0]
    assert {"pyproject.toml", "README.md", "constraints.txt", "streamer"} <= set(copy_sources(build))
    wheel = _pip(build, "wheel")
    assert _option(wheel, "-c", "--constraint") == "constraints.txt"
    assert _option(wheel, "-w", "--wheel-dir") == "/wheels"
    assert wheel[-1] == "."


def test_final_stage_installs_the_built_wheel_only_with_the_constraints() -> None:
    """The final stage installs `streamer` (no extra) from the build stage's wheels, offline, constrained."""
    build, final = stages()[0], stages()[-1]
    assert len(stages()) == 2
    install = _pip(final, "install")
    assert "--no-index" in install
    mounts = _mounts(final)
    wheels = mounts[_option(install, "--find-links", "-f")]
    assert (wheels["from"], wheels["source"]) == (build.name, _option(_pip(build, "wheel"), "-w"))
    constraints = mounts[_option(install, "-c", "--constraint")]
    assert (constraints["from"], constraints["source"]) == (build.name, "/src/constraints.txt")
    takes_value = {"--find-links", "-f", "-c", "--constraint"}
    words = enumerate(install[2:], 2)
    positional = [w for i, w in words if w[0] != "-" and install[i - 1] not in takes_value]
    assert positional == ["streamer"], install  # not streamer[embedded]: no chdb, pandas, pyarrow
    assert copy_sources(final) == [], "the final stage takes nothing from the source tree"


def test_no_volume_instruction_leaves_anonymous_volumes() -> None:
    """No VOLUME line: compose names the volumes it needs; the image leaves none behind."""
    assert all(kw != "VOLUME" for stage in stages() for kw, _ in stage.instructions)


def _matches(parts: tuple[str, ...], pattern: str) -> bool:
    if pattern.startswith("**/"):  # at any depth
        return any(_matches(parts[i:], pattern[3:]) for i in range(len(parts)))
    return fnmatch.fnmatchcase("/".join(parts), pattern)


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether Docker leaves ``path`` out of the context: it, or a folder above it, matches a pattern."""
    parts = Path(path).parts
    return any(_matches(parts[:n], p) for n in range(1, len(parts) + 1) for p in patterns)


def test_dockerignore_keeps_dev_state_out_of_the_context_but_not_the_sources() -> None:
    """.dockerignore excludes the venvs, Kafka jars and data, caches and .git; never what COPY needs."""
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    for path in [".venv", ".kafka", ".streamer", ".tools", "tools/kafka/libs", ".git", "streamer.egg-info"]:
        assert _ignored(path, patterns), path
    assert _ignored("streamer/query/__pycache__", patterns)
    for source in copy_sources(stages()[0]):
        assert not _ignored(source, patterns), source
        assert (ROOT / source).exists(), source
