"""The commitment registers: every commitment present, every citation verbatim in its source file."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.commitments import load_commitments, source_file
from audit.errors import InputError
from audit.models import CommitmentSource

REPO = Path(__file__).resolve().parent.parent
REGISTER = REPO / "policies" / "commitments.yaml"
EU_PACK = REPO / "packs" / "eu-personal-data"
PACKS = (REPO / "policies", EU_PACK)
EXPECTED = [f"C{n}" for n in range(1, 10)]

_sources = [
    pytest.param(pack, source, id=f"{pack.name}-{cid}-{source.path}:{source.line}")
    for pack in PACKS
    for cid, commitment in load_commitments(pack / "commitments.yaml").items()
    for source in commitment.sources
]


@pytest.mark.parametrize("pack", PACKS, ids=lambda p: p.name)
def test_every_commitment_is_present_in_order(pack: Path) -> None:
    assert list(load_commitments(pack / "commitments.yaml")) == EXPECTED


@pytest.mark.parametrize("pack", PACKS, ids=lambda p: p.name)
def test_every_commitment_has_a_title_text_and_source(pack: Path) -> None:
    for commitment in load_commitments(pack / "commitments.yaml").values():
        assert commitment.title.strip() and commitment.text.strip()
        assert commitment.sources


@pytest.mark.parametrize(("pack", "source"), _sources)
def test_cited_line_contains_the_quote_verbatim(pack: Path, source: CommitmentSource) -> None:
    path = source_file(pack, source)
    assert path.is_file(), f"{source.path} does not exist"
    lines = path.read_text(encoding="utf-8").splitlines()
    assert 1 <= source.line <= len(lines), f"{source.path} has {len(lines)} lines, cited line {source.line}"
    assert source.quote in lines[source.line - 1], f"{source.path}:{source.line} does not contain {source.quote!r}"


def test_registers_say_where_their_sources_are() -> None:
    us = load_commitments(REGISTER)["C1"].sources[0]
    eu = load_commitments(EU_PACK / "commitments.yaml")["C1"].sources[0]
    assert (us.directory, us.path) == (None, "seeds/002_8c6274cae31df566.txt")
    assert (eu.directory, eu.path) == ("sources", "sources/gdpr-excerpts.txt")
    assert source_file(REGISTER.parent, us) == REPO / "seeds" / us.file
    assert source_file(EU_PACK, eu) == EU_PACK / "sources" / "gdpr-excerpts.txt"


def test_eu_sources_are_one_gdpr_paragraph_per_line_after_the_reuse_note() -> None:
    lines = (EU_PACK / "sources" / "gdpr-excerpts.txt").read_text(encoding="utf-8").splitlines()
    header = [line for line in lines if line.startswith("#")]
    assert "https://eur-lex.europa.eu/eli/reg/2016/679/oj" in header[1]
    assert "Decision 2011/833/EU" in header[2]
    cited = {s.line for c in load_commitments(EU_PACK / "commitments.yaml").values() for s in c.sources}
    for number in cited:
        assert lines[number - 1].startswith("Article "), f"line {number} is not an article paragraph"


@pytest.mark.parametrize("directory", ["..", "/etc", "a/../b", "a b", "sources/"])
def test_source_directory_must_be_a_plain_relative_path(tmp_path: Path, directory: str) -> None:
    text = (
        (EU_PACK / "commitments.yaml")
        .read_text(encoding="utf-8")
        .replace("source_directory: sources", f"source_directory: '{directory}'")
    )
    broken = tmp_path / "commitments.yaml"
    broken.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match="source_directory"):
        load_commitments(broken)


def test_duplicate_commitment_id_is_an_input_error(tmp_path: Path) -> None:
    text = REGISTER.read_text(encoding="utf-8").replace("id: C2", "id: C1", 1)
    broken = tmp_path / "commitments.yaml"
    broken.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match="duplicate commitment id C1"):
        load_commitments(broken)


def test_misspelt_field_is_an_input_error(tmp_path: Path) -> None:
    text = REGISTER.read_text(encoding="utf-8").replace("    title:", "    titel:", 1)
    broken = tmp_path / "commitments.yaml"
    broken.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=r"commitments\.0\.title: Field required; commitments\.0\.titel: unknown"):
        load_commitments(broken)
