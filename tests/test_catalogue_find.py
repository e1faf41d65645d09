"""Catalogue.find (every glob in one regex) finds the entry fnmatchcase finds trying each glob in turn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from audit.importers.enrichment import Catalogue, CatalogueEntry, load_catalogue
from tests.conftest import FIXTURES

_GLOB_CHARS = st.sampled_from([*"ab/:.-*?[]!^\\(|)$", "[a-b]", "[!a]", "[]]", "[", "**", "é", "\n"])
_globs = st.lists(_GLOB_CHARS, min_size=1, max_size=8).map("".join)
_names = st.text(st.sampled_from(list("ab/:.-*?[]!^\\(|)$é\n")), max_size=10)


def _filled(glob: str) -> str:
    """A name the glob may match (wildcards filled in), so that several entries often match and order matters."""
    return glob.replace("*", "ab").replace("?", "a").replace("[a-b]", "b").replace("[!a]", "b")


def _catalogue(globs: list[str]) -> Catalogue:
    entries = tuple(
        CatalogueEntry.model_validate({"match": glob, "user_data": False} if number % 3 == 2 else _entry(glob))
        for number, glob in enumerate(globs)
    )
    return Catalogue(entries, Path("catalog.yaml"))


def _entry(glob: str) -> dict[str, Any]:
    return {"match": glob, "dataset": "d", "category": "profile", "store": "s", "provider": "aws", "region": "r"}


@settings(max_examples=500, deadline=None)
@given(globs=st.lists(_globs, max_size=12), candidates=st.lists(_names | _globs | _globs.map(_filled), max_size=3))
def test_find_is_fnmatchcase_first_match(globs: list[str], candidates: list[str]) -> None:
    catalogue = _catalogue(globs)
    assert catalogue.find(candidates) is catalogue.find_each(candidates)


def test_find_on_the_fixture_catalogue() -> None:
    catalogue = load_catalogue(FIXTURES / "sources" / "catalog.yaml")
    names = [entry.match.replace("*", "x/y") for entry in catalogue.entries] + ["nothing", "", "arn:aws:s3:::other"]
    for name in names:
        assert catalogue.find([name]) is catalogue.find_each([name])
        assert catalogue.find(["nothing", name]) is catalogue.find_each(["nothing", name])
    assert catalogue.find(["arn:aws:s3:::build-artifacts/x"]) is not None
    assert Catalogue((), Path("empty.yaml")).find(["a"]) is None
