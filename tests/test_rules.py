"""Rule files and rule books: validated metadata, pack rules, templates, agreement with the pack."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from audit.errors import InputError
from audit.models import AccessEvent
from audit.policy import DEFAULT_RULE, load_pack, load_policy
from audit.replay.engine import rule_books
from audit.replay.rules import FindingContext, MessageTemplate, load_rules, rule_book
from tests.conftest import POLICIES

RULES_DIR = Path(__file__).parent.parent / "audit/replay/rules"


def test_one_rule_per_module_with_unique_ids() -> None:
    rules = load_rules()
    modules = {p.stem for p in RULES_DIR.glob("*.py")}
    assert len(rules) == len({m for m in modules if not m.startswith("_")} - {"base"})
    for rule_id, rule in rules.items():
        assert rule.metadata.id == rule_id
        assert rule_id.replace("-", "_") in modules


def test_engine_rules_name_no_place_company_or_commitment() -> None:
    for rule in load_rules().values():
        meta = rule.metadata
        assert meta.commitment is None, rule.id
        for text in (meta.title, meta.description, meta.remediation):
            assert not re.search(r"\bUS\b|Singapore|Oracle|OCI|TikTok", text), (rule.id, text)


def test_every_rule_named_by_the_pack_exists_with_the_same_commitment() -> None:
    policy = load_policy(POLICIES)
    books = rule_books(policy, load_rules())
    for pack in policy.packs:
        for row in pack.rows:
            if row.rule_id is not None:
                assert books[id(pack)][row.rule_id].metadata.commitment == row.commitment


def test_every_engine_rule_except_the_default_is_reachable_from_a_shipped_pack() -> None:
    reached: set[str] = set()
    for directory in (POLICIES, POLICIES.parent / "packs" / "eu-personal-data"):
        pack = load_pack(directory)
        book = rule_book(pack, load_rules())
        reached |= {book[rule_id].engine_id for rule_id in pack.rule_ids}
    assert set(load_rules()) - reached <= {DEFAULT_RULE}


def _copy(tmp_path: Path) -> Path:
    pack = tmp_path / "pack"
    shutil.copytree(POLICIES, pack)
    return pack


def test_pack_naming_a_missing_rule_is_an_input_error(tmp_path: Path) -> None:
    pack = _copy(tmp_path)
    csv = pack / "policy.csv"
    text = csv.read_text().replace("proxy-access", "proxy-acess", 1)
    csv.write_text(text)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "proxy-acess" in row)
    with pytest.raises(InputError) as info:
        rule_books(load_policy(pack), load_rules())
    assert info.value.line == line and "proxy-acess" in str(info.value)


def test_pack_rule_citing_another_commitment_than_its_row_is_an_input_error(tmp_path: Path) -> None:
    pack = _copy(tmp_path)
    rules = pack / "rules.yaml"
    rules.write_text(
        rules.read_text().replace(
            "  - id: proxy-access\n    kind: proxy-access\n    commitment: C8",
            "  - id: proxy-access\n    kind: proxy-access\n    commitment: C2",
        )
    )
    with pytest.raises(InputError, match="row cites C8 but rule proxy-access implements C2"):
        rule_books(load_policy(pack), load_rules())


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("kind: proxy-access", "kind: proxy-acces", "kind 'proxy-acces' is not an engine rule"),
        ('message: "$who $what for $related,', 'message: "$who $wat for $related,', "unknown placeholder $wat"),
    ],
)
def test_bad_pack_rules_are_input_errors_at_rules_yaml(tmp_path: Path, old: str, new: str, message: str) -> None:
    pack = _copy(tmp_path)
    rules = pack / "rules.yaml"
    assert old in rules.read_text()
    rules.write_text(rules.read_text().replace(old, new, 1))
    with pytest.raises(InputError, match=re.escape(message)) as info:
        rule_books(load_policy(pack), load_rules())
    assert info.value.path is not None and Path(info.value.path).name == "rules.yaml"


def test_pack_rule_citing_an_undefined_commitment_is_refused_at_load(tmp_path: Path) -> None:
    pack = _copy(tmp_path)
    rules = pack / "rules.yaml"
    rules.write_text(rules.read_text().replace("commitment: C8", "commitment: C99", 1))
    with pytest.raises(InputError, match=re.escape("cites C99, which commitments.yaml does not define")):
        load_pack(pack)


def _ctx() -> FindingContext:
    event = AccessEvent.model_validate(
        {
            "event_id": "e-1",
            "time": "2022-01-01T00:00:00Z",
            "actor": {"id": "a.b", "office_country": "FR"},
            "action": "read",
            "resource": {
                "id": "r-1",
                "dataset": "users",
                "category": "contact",
                "store": "s-1",
                "provider": "aws",
                "region": "eu-west-3",
            },
        }
    )
    from audit.policy.pack import NO_MATCH

    return FindingContext(event, NO_MATCH, "foreign_staff", "detail {x}", home="the EU/EEA")


def test_message_templates_fill_names_and_never_evaluate() -> None:
    ctx = _ctx()
    assert MessageTemplate("$who read ${category} outside $home ($$5) {x}")(ctx) == (
        "a.b (foreign_staff) read contact outside the EU/EEA ($5) {x}"
    )
    assert MessageTemplate("$detail")(ctx) == "detail {x}"  # values are data, not format strings
    with pytest.raises(ValueError, match="unknown placeholder"):
        MessageTemplate("${__class__}")


def test_engine_texts_take_the_packs_home_name() -> None:
    book = rule_book(load_pack(POLICIES), load_rules())
    assert "$home" not in book["store-not-approved"].metadata.description
    assert book["foreign-access-without-approval"].metadata.description.startswith("Staff outside the US")


def test_engine_rules_never_show_a_raw_placeholder(tmp_path: Path) -> None:
    """Regression: foreign-sensitive-access explained its findings with a literal ``$home`` (hidden
    only because both shipped packs word that rule with a message of their own)."""
    pack = tmp_path / "pack"
    shutil.copytree(POLICIES.parent / "packs" / "eu-personal-data", pack)
    (pack / "rules.yaml").unlink()  # the engine's own words, with the pack's home
    book = rule_book(load_pack(pack), load_rules())
    explained = book["foreign-sensitive-access"].explain(_ctx())
    assert explained.endswith("sensitive categories are denied to staff outside the EU/EEA even with an approval")
    for rule in book.values():
        for text in (rule.metadata.title, rule.metadata.description, rule.metadata.remediation, rule.explain(_ctx())):
            assert "$" not in text, (rule.id, text)
