"""docs/catalogue.md is generated from the registries and must not drift from them."""

from __future__ import annotations

from pathlib import Path

from rlkit.cli.catalogue import SECTIONS, render_catalogue
from rlkit.registry import REGISTRIES

CATALOGUE = Path(__file__).resolve().parents[1] / "docs" / "catalogue.md"


def test_catalogue_page_matches_the_registries() -> None:
    expected = render_catalogue()
    assert CATALOGUE.read_text() == expected + "\n", (
        "docs/catalogue.md is out of date: run `rlkit list --markdown > docs/catalogue.md`"
    )


def test_every_registered_id_is_listed_with_a_summary() -> None:
    text = render_catalogue()
    for kind, _, _ in SECTIONS:
        for key, cls in REGISTRIES[kind].items():
            if not cls.__module__.startswith("rlkit."):
                continue  # registered by another test module
            row = next(line for line in text.splitlines() if line.startswith(f"| `{key}` |"))
            summary = row.split("|")[3].strip()
            assert summary, f"{kind} {key} ({cls.__name__}) has no docstring summary"
