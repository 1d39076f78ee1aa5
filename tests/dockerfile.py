"""Reading the Dockerfile the way the build does: instructions per stage, with continuation lines joined."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"


@dataclass
class Stage:
    """One ``FROM`` stage: its name (``AS name``) and its instructions as (keyword, arguments)."""

    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        return [rest for kw, rest in self.instructions if kw == keyword]


def stages(path: Path = DOCKERFILE) -> list[Stage]:
    """The stages of the Dockerfile, in order."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    out: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = rest.split()
            out.append(Stage(words[2] if len(words) > 2 and words[1].upper() == "AS" else str(len(out))))
        else:
            assert out, f"{keyword} before FROM"
        out[-1].instructions.append((keyword, rest.strip()))
    return out


def copy_sources(stage: Stage) -> list[str]:
    """The build-context paths the stage COPYs (COPY --from=... copies from a stage, not the context)."""
    sources: list[str] = []
    for rest in stage.args("COPY"):
        words = shlex.split(rest)
        if any(w.startswith("--from") for w in words):
            continue
        sources += [w for w in words if not w.startswith("--")][:-1]
    return sources


def run_words(stage: Stage) -> list[list[str]]:
    """Each RUN of the stage as shell words."""
    return [shlex.split(rest) for rest in stage.args("RUN")]
