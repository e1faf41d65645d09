"""The EU personal-data pack: lint, cases, invariants, its facts, and a replay of its own scenario."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from audit.cli.app import main
from audit.errors import EXIT_CLEAN
from audit.models import AccessEvent
from audit.pipeline import replay
from audit.policy import PolicyPack, load_pack
from audit.policy.lint import lint_pack
from audit.replay.facts import base_facts, location_class, store_class
from audit.replay.rules import load_rules, rule_book, rule_commitments
from audit.signing.keys import Keyring, SigningKey
from tests.conftest import FIXTURES, POLICIES, REPO

EU_PACK = REPO / "packs" / "eu-personal-data"
EU_FIXTURES = FIXTURES / "eu"
NOW = datetime(2024, 9, 30, tzinfo=UTC)
EU_MEMBER_STATES = set(
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE".split()  # noqa: SIM905
)


@pytest.fixture(scope="module")
def eu() -> PolicyPack:
    return load_pack(EU_PACK)


# ------------------------------------------------------------------ the three policy gates


def test_eu_pack_lints_clean() -> None:
    report = lint_pack(EU_PACK, rule_commitments())
    assert report.diagnostics == ()
    assert {Path(f).name for f in report.files} >= {"model.conf", "policy.csv", "pack.yaml", "invariants.yaml"}


def test_eu_pack_cases_cover_every_row(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "test", str(EU_PACK), "--min-coverage", "100"]) == EXIT_CLEAN
    assert "row coverage 100.0%" in capsys.readouterr().out


def test_eu_pack_proves_its_invariants(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "prove", str(EU_PACK)]) == EXIT_CLEAN
    text = capsys.readouterr().out
    for invariant in (
        "special-categories-never-to-staff-outside-eea",
        "no-transfer-without-legal-basis",
        "third-country-authority-needs-international-agreement",
        "binding-corporate-rules-carry-no-outside-transfer",
    ):
        assert f"PROVED {invariant} " in text
    assert "FAILED" not in text and "0 domain gap(s)" in text


def test_block_headers_cite_the_registers_source_lines(eu: PolicyPack) -> None:
    """Each header cites, for each commitment it names, a line of the GDPR excerpts the register cites."""
    lines = (EU_PACK / "policy.csv").read_text(encoding="utf-8").splitlines()
    header = re.compile(r"#\s*(C[0-9]+(?:\s*,\s*C[0-9]+)*)\s*:")
    headers = [(n, m) for n, text in enumerate(lines) if (m := header.match(text.strip()))]
    assert len(headers) >= 10
    for index, match in headers:
        block = [lines[index]]
        for text in lines[index + 1 :]:
            if not text.strip().startswith("#") or header.match(text.strip()):
                break
            block.append(text)
        cited = {
            (f, n) for f, ns in re.findall(r"(sources/[\w.-]+\.txt):([0-9,]+)", " ".join(block)) for n in ns.split(",")
        }
        assert cited, f"policy.csv:{index + 1}: header cites no source line"
        for cid in (part.strip() for part in match.group(1).split(",")):
            sources = {(s.path, str(s.line)) for s in eu.commitments[cid].sources}
            assert cited & sources, f"policy.csv:{index + 1}: no source line of {cid} cited"


# ------------------------------------------------------------------ configuration and facts


def test_home_is_the_eea(eu: PolicyPack) -> None:
    home = eu.config.home
    assert set(home.countries) == EU_MEMBER_STATES | {"IS", "LI", "NO"}
    assert (home.name, home.staff_class, eu.config.transfers) == ("the EU/EEA", "eea_staff", True)
    assert location_class("NO", eu.config) == "eea_staff"  # quoted in pack.yaml: YAML 1.1 reads NO as false
    assert location_class("EU", eu.config) == "unlocated_staff"  # a region code names no country
    assert location_class("CH", eu.config) == location_class("GB", eu.config) == "foreign_staff"


def _event(region: str, **extra: object) -> AccessEvent:
    body: dict[str, object] = {
        "event_id": "e-1",
        "time": "2024-05-01T10:00:00Z",
        "actor": {"id": "eu-legal-01", "office_country": "IE", "physical_country": "IE"},
        "action": "export",
        "resource": {
            "id": "r",
            "dataset": "eu-contacts",
            "category": "contact",
            "store": "s",
            "provider": "aws",
            "region": region,
        },
        **extra,
    }
    return AccessEvent.model_validate(body)


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        ("eu-central-1", "eea_region"),
        ("europe-west4", "eea_region"),
        ("eu-west-2", "outside_eea"),  # London
        ("eu-central-2", "outside_eea"),  # Zurich
        ("europe-west6", "outside_eea"),  # Zurich
        ("uksouth", "outside_eea"),
        ("us-east-1", "outside_eea"),  # a primary store; only backups are the transitional store
    ],
)
def test_store_classes_follow_the_eea_not_the_region_prefix(eu: PolicyPack, region: str, expected: str) -> None:
    event = _event(region)
    assert store_class(event.resource, event.time, eu.config) == expected


def _transfers(pack: PolicyPack, recipient: dict[str, object], basis: str | None = None) -> list[tuple[str, ...]]:
    extra: dict[str, object] = {"recipient": recipient}
    if basis is not None:
        extra["legal_basis"] = {"kind": basis, "reference": "REF-1"}
    facts = base_facts(_event("eu-central-1", **extra), pack, "eea_staff")
    return [fact.request for fact in facts if fact.request[0] in {"disclosure", "transfer"}]


def test_a_recipient_outside_the_eea_is_also_a_transfer(eu: PolicyPack) -> None:
    us_vendor: dict[str, object] = {"kind": "vendor", "id": "v", "country": "US"}
    assert _transfers(eu, us_vendor, "standard_contractual_clauses") == [
        ("disclosure", "vendor", "contact", "export", "standard_contractual_clauses"),
        ("transfer", "vendor", "contact", "export", "standard_contractual_clauses"),
    ]
    assert [r[0] for r in _transfers(eu, {"kind": "vendor", "id": "v", "country": "DE"})] == ["disclosure"]
    unknown = _transfers(eu, {"kind": "government", "id": "g"})  # no country: not shown to be at home
    assert [r[0] for r in unknown] == ["disclosure", "transfer"]
    emea = _transfers(eu, {"kind": "vendor", "id": "v", "country": "EMEA"})
    assert [r[0] for r in emea] == ["disclosure", "transfer"]


def test_a_pack_without_transfers_never_asks_the_transfer_facet() -> None:
    us = load_pack(POLICIES)
    assert us.config.transfers is False
    assert [r[0] for r in _transfers(us, {"kind": "vendor", "id": "v", "country": "CN"})] == ["disclosure"]


def test_transfer_decisions(eu: PolicyPack) -> None:
    def broken(request: tuple[str, str, str, str, str]) -> list[tuple[str, str | None]]:
        return [(d.commitment, d.rule_id) for d in eu.broken(request)]

    assert broken(("transfer", "vendor", "contact", "export", "standard_contractual_clauses")) == []
    assert broken(("transfer", "vendor", "contact", "export", "none")) == [("C6", "transfer-without-legal-basis")]
    assert broken(("transfer", "law_enforcement", "contact", "disclose", "subpoena")) == [
        ("C5", "disclosure-without-legal-process"),
        ("C6", "transfer-without-legal-basis"),
    ]
    assert broken(("transfer", "law_enforcement", "contact", "disclose", "international_agreement")) == []


# ------------------------------------------------------------------ replay of the EU scenario


def _expected() -> set[tuple[str, str]]:
    doc = json.loads((EU_FIXTURES / "expected_findings.json").read_text())
    return {(f["event_id"], f["rule_id"]) for f in doc["findings"]}


def test_replay_of_the_eu_scenario_finds_exactly_the_expected_findings(
    tmp_path: Path, keyring: Keyring, auditor_key: SigningKey
) -> None:
    log = tmp_path / "access"
    shutil.copytree(EU_FIXTURES / "logs" / "access", log)
    approvals = EU_FIXTURES / "logs" / "approvals"
    outcome = replay(log, keyring, approvals, EU_PACK, auditor_key, tmp_path / "out", now=NOW)
    got = {(eid, f.rule_id) for f in outcome.findings for eid in f.event_ids}
    expected = _expected()
    assert got - expected == set(), "unexpected findings"
    assert expected - got == set(), "missed findings"
    assert len(outcome.findings) == len(expected)
    book = rule_book(load_pack(EU_PACK), load_rules())
    for finding in outcome.findings:
        assert finding.commitment == book[finding.rule_id].metadata.commitment
        assert finding.policy_row is not None and finding.policy_row.file.endswith("policy.csv")
    assert {f.commitment for f in outcome.findings} == {f"C{n}" for n in range(1, 10)}
    messages = {f.rule_id: f.message for f in outcome.findings}
    assert "outside the EU/EEA" in messages["proxy-access"]
    assert re.search(
        r"without a transfer basis \(recipient in (US|IN); transfer basis: ", messages["transfer-without-legal-basis"]
    )


def test_eu_report_cites_the_gdpr_excerpts(tmp_path: Path, keyring: Keyring, auditor_key: SigningKey) -> None:
    log = tmp_path / "access"
    shutil.copytree(EU_FIXTURES / "logs" / "access", log)
    replay(log, keyring, EU_FIXTURES / "logs" / "approvals", EU_PACK, auditor_key, tmp_path / "out", now=NOW)
    report = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "sources/gdpr-excerpts.txt:9" in report
    assert "seeds/" not in report
