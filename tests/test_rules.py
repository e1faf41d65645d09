"""Rule files: validated metadata, and agreement with the policy pack."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.errors import InputError
from audit.policy import load_policy
from audit.replay.engine import check_rules_cover_pack
from audit.replay.rules import load_rules
from tests.conftest import POLICIES


def test_one_rule_per_module_with_unique_ids() -> None:
    rules = load_rules()
    modules = {p.stem for p in (Path(__file__).parent.parent / "audit/replay/rules").glob("*.py")}
    assert len(rules) == len(modules - {"__init__", "base"})
    for rule_id, rule in rules.items():
        assert rule.metadata.id == rule_id
        assert rule_id.replace("-", "_") in modules


def test_every_rule_named_by_the_pack_exists_with_the_same_commitment() -> None:
    check_rules_cover_pack(load_policy(POLICIES), load_rules())


def test_every_rule_except_the_default_is_reachable_from_the_pack() -> None:
    named = set().union(*(pack.rule_ids for pack in load_policy(POLICIES).packs))
    assert set(load_rules()) - named <= {"policy-default-deny"}


def test_pack_naming_a_missing_rule_is_an_input_error(tmp_path: Path) -> None:
    import shutil

    pack = tmp_path / "pack"
    shutil.copytree(POLICIES, pack)
    csv = pack / "policy.csv"
    text = csv.read_text().replace("proxy-access", "proxy-acess", 1)
    csv.write_text(text)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "proxy-acess" in row)
    with pytest.raises(InputError) as info:
        check_rules_cover_pack(load_policy(pack), load_rules())
    assert info.value.line == line and "proxy-acess" in str(info.value)
