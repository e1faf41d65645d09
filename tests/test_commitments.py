"""The commitment register: every commitment present, every citation verbatim in its seed."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.commitments import load_commitments
from audit.errors import InputError

REPO = Path(__file__).resolve().parent.parent
REGISTER = REPO / "policies" / "commitments.yaml"
SEEDS = REPO / "seeds"
EXPECTED = [f"C{n}" for n in range(1, 10)]

_register = load_commitments(REGISTER)
_sources = [
    pytest.param(source.file, source.line, source.quote, id=f"{cid}-{source.file}:{source.line}")
    for cid, commitment in _register.items()
    for source in commitment.sources
]


def test_every_commitment_is_present_in_order() -> None:
    assert list(_register) == EXPECTED


def test_every_commitment_has_a_title_text_and_source() -> None:
    for commitment in _register.values():
        assert commitment.title.strip() and commitment.text.strip()
        assert commitment.sources


@pytest.mark.parametrize(("file", "line", "quote"), _sources)
def test_cited_line_contains_the_quote_verbatim(file: str, line: int, quote: str) -> None:
    seed = SEEDS / file
    assert seed.is_file(), f"seeds/{file} does not exist"
    lines = seed.read_text(encoding="utf-8").splitlines()
    assert 1 <= line <= len(lines), f"seeds/{file} has {len(lines)} lines, cited line {line}"
    assert quote in lines[line - 1], f"seeds/{file}:{line} does not contain {quote!r}"


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
