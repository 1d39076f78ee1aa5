"""README: names its two set-up commands and documents every setting."""

from __future__ import annotations

from pathlib import Path

from streamer.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_readme_documents_every_setting() -> None:
    """Each Settings field appears in the configuration table as its STREAMER_ variable."""
    missing = [name for name in Settings.model_fields if f"`STREAMER_{name.upper()}`" not in README]
    assert missing == []


def test_readme_names_the_two_setup_commands() -> None:
    """`make dev` and `make test` are the set-up commands, and the Makefile defines both."""
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    for command in ("make dev", "make test"):
        assert command in README
        assert f"\n{command.split()[1]}:" in makefile
