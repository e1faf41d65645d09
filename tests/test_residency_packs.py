"""Residency scanning for any company: facts only from the pack, words from its rules.yaml.

The engine names no country, provider or company; a small EU-style pack built here
(home FR/DE/IE, approved stores on AWS eu-* regions, a legacy data centre to phase
out) is judged with the same engine rules as the shipped US pack, and the US pack's
residency rules keep their ids and messages word for word.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from audit.cli.app import main
from audit.errors import EXIT_INPUT, InputError
from audit.policy import PackConfig, PackRule, load_policy
from audit.residency.models import ResidencySettings
from audit.residency.providers.inventory import InventoryProvider
from audit.residency.scanner import scan, settings_from_policy
from tests.conftest import POLICIES, REPO

US_WORDS = REPO / "tests" / "data" / "residency" / "us-pack-words.json"
"""Every finding of the US pack on three inventories at three dates, captured from the
scanner before its rules became generic (regression: the US pack's words must not change)."""

EU_PACK: dict[str, Any] = {
    "name": "eu-data-2024",
    "effective_from": "2024-01-01",
    "home": {"name": "the EU/EEA", "countries": ["FR", "DE", "IE"], "staff_class": "eea_staff"},
    "security_teams": ["eu-data-protection"],
    "region_countries": {"eu-west-1": "IE", "eu-west-3": "FR", "eu-central-1": "DE", "us-*": "US"},
    "approved_stores": [
        {"class": "aws_eu", "description": "AWS in an EU region", "providers": ["aws"], "regions": ["eu-*"]}
    ],
    "transitional_stores": [
        {
            "class": "legacy_dc",
            "description": "the legacy data centre in Lyon",
            "providers": ["own_dc"],
            "deadline": "2024-06-30",
            "deadline_label": "closure",
            "commitment": "C7",
        }
    ],
}


def _rule(rule_id: str, kind: str, commitment: str, message: str | None = None, **extra: Any) -> PackRule:
    return PackRule.model_validate(
        {
            "id": rule_id,
            "kind": kind,
            "scope": "residency",
            "commitment": commitment,
            "severity": "high",
            "title": f"{rule_id} title",
            "description": f"{rule_id} description",
            "remediation": f"{rule_id} remediation",
            **({"message": message} if message is not None else {}),
            **extra,
        }
    )


EU_RULES = (
    _rule("eu-provider", "store-not-approved-provider", "C1"),
    _rule("eu-outside", "store-outside-home", "C1", "$store keeps data of $home in $region, outside $home"),
    _rule("eu-copy", "copy-outside-home", "C2"),
    _rule("eu-unclassified", "unclassified-store", "C1"),
)

EU_INVENTORY = """\
version: 1
account: acme-eu
stores:
  - id: photos-paris
    provider: aws
    region: eu-west-3
    kind: s3-bucket
    classification: {subject_regions: [FR]}
    copies:
      - {kind: replication, target: photos-virginia, provider: aws, region: us-east-1}
      - {kind: backup-copy, target: photos-dublin, provider: aws, region: eu-west-1}
  - {id: crm-ohio, provider: aws, region: us-east-2, kind: rds-instance, classification: {subject_regions: [DE]}}
  - {id: crm-us-only, provider: aws, region: us-east-2, kind: rds-instance, classification: {subject_regions: [US]}}
  - {id: analytics-gcp, provider: gcp, region: europe-west1, kind: gcs-bucket, classification: {subject_regions: [IE]}}
  - {id: lyon-1, provider: own_dc, region: lyon, country: FR, kind: database, classification: {subject_regions: [FR]}}
  - {id: scratch, provider: aws, region: eu-central-1, kind: s3-bucket}
"""


def _eu_settings(as_of: str, rules: tuple[PackRule, ...] = EU_RULES, **deadlines: str) -> ResidencySettings:
    pack = PackConfig.model_validate(EU_PACK)
    dates = {s.store_class: s.deadline for s in pack.transitional_stores}
    dates.update({name: date.fromisoformat(when) for name, when in deadlines.items()})
    return ResidencySettings(as_of=date.fromisoformat(as_of), pack=pack, deadlines=dates, rules=rules)


def _eu_scan(tmp_path: Path, settings: ResidencySettings) -> dict[tuple[str, str], Any]:
    path = tmp_path / "eu.yaml"
    path.write_text(EU_INVENTORY)
    result = scan([InventoryProvider(paths=(path,))], settings)
    return {(f.rule_id, f.resource): f for f in result.findings}


def test_eu_pack_finds_stores_and_copies_outside_its_home_in_generic_words(tmp_path: Path) -> None:
    found = _eu_scan(tmp_path, _eu_settings("2024-03-01"))
    assert sorted(found) == [
        ("eu-copy", "photos-virginia"),
        ("eu-outside", "crm-ohio"),
        ("eu-provider", "analytics-gcp"),
        ("eu-unclassified", "scratch"),
    ]
    copy = found["eu-copy", "photos-virginia"]
    assert copy.commitment == "C2" and copy.title == "eu-copy title" and copy.status == "violation"
    assert copy.message == (
        "replication of s3-bucket photos-paris (aws eu-west-3) goes to photos-virginia in region us-east-1, "
        "outside the EU/EEA"
    )
    assert found["eu-outside", "crm-ohio"].message == (
        "rds-instance crm-ohio (aws us-east-2) keeps data of the EU/EEA in us-east-2, outside the EU/EEA"
    )
    assert found["eu-provider", "analytics-gcp"].message == (
        "gcs-bucket analytics-gcp (gcp europe-west1) holds user data of the EU/EEA on a provider no approved store uses"
    )
    assert found["eu-unclassified", "scratch"].status == "unknown"


def test_eu_transitional_store_after_its_deadline_cites_its_own_commitment(tmp_path: Path) -> None:
    found = _eu_scan(tmp_path, _eu_settings("2024-07-01"))
    late = found["store-after-deadline", "lyon-1"]
    assert late.commitment == "C7"  # legacy_dc's, as no pack rule words store-after-deadline
    assert late.title == "Data in a transitional store after its deadline"
    assert late.message == (
        "database lyon-1 (own_dc lyon) is still in the legacy data centre in Lyon on 2024-07-01 (closure 2024-06-30)"
    )
    moved = _eu_scan(tmp_path, _eu_settings("2024-07-01", legacy_dc="2024-12-31"))
    assert ("store-after-deadline", "lyon-1") not in moved


def test_pack_rule_limited_to_a_store_class_words_only_its_findings(tmp_path: Path) -> None:
    rules = (
        *EU_RULES,
        _rule("lyon-closed", "store-after-deadline", "C8", "$store past $deadline", stores=["legacy_dc"]),
    )
    found = _eu_scan(tmp_path, _eu_settings("2024-07-01", rules))
    late = found["lyon-closed", "lyon-1"]
    assert (late.commitment, late.message) == ("C8", "database lyon-1 (own_dc lyon) past 2024-06-30")


def test_a_dollar_sign_is_written_twice_in_residency_messages(tmp_path: Path) -> None:
    rules = (
        *EU_RULES[:1],
        _rule("eu-outside", "store-outside-home", "C1", "$store costs $$5 in ${region}"),
        *EU_RULES[2:],
    )
    found = _eu_scan(tmp_path, _eu_settings("2024-03-01", rules))
    assert found["eu-outside", "crm-ohio"].message == "rds-instance crm-ohio (aws us-east-2) costs $5 in us-east-2"


@pytest.mark.parametrize(
    ("rules", "reason"),
    [
        (EU_RULES[1:], "residency rule 'store-not-approved-provider' cites no commitment: add a rule with scope"),
        (
            (*EU_RULES[1:], _rule("eu-provider", "store-not-approved-provider", "C1", stores=["aws_eu"])),
            "residency rule 'store-not-approved-provider' cites no commitment",
        ),
        ((*EU_RULES, _rule("x", "store-nowhere", "C1")), "rule 'x': kind 'store-nowhere' is not a residency engine"),
        ((*EU_RULES, _rule("x", "copy-outside-home", "C1", "$store in $country")), "unknown placeholder $country"),
        ((*EU_RULES, _rule("x", "copy-outside-home", "C1", "costs $5")), "a $ must start $name"),
        (
            (*EU_RULES, _rule("x", "store-after-deadline", "C1", stores=["aws_eu"])),
            "stores: 'aws_eu' is not a store class store-after-deadline reports",
        ),
    ],
    ids=[
        "unmapped",
        "mapped-for-one-class-only",
        "unknown-kind",
        "unknown-placeholder",
        "bare-dollar",
        "not-transitional",
    ],
)
def test_residency_rules_that_do_not_bind_refuse_the_scan(
    tmp_path: Path, rules: tuple[PackRule, ...], reason: str
) -> None:
    with pytest.raises(InputError) as caught:
        _eu_scan(tmp_path, _eu_settings("2024-03-01", rules))
    assert reason in str(caught.value)


def test_pack_without_residency_rules_is_refused_before_scanning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pack = tmp_path / "pack"
    pack.mkdir()
    for item in POLICIES.iterdir():
        if item.is_file():
            (pack / item.name).write_bytes(item.read_bytes())
    rules = (pack / "rules.yaml").read_text()
    (pack / "rules.yaml").write_text(rules[: rules.index("  # Residency rules")])
    with pytest.raises(InputError) as caught:
        settings_from_policy(load_policy(pack), as_of=date(2022, 6, 30))
    assert str(caught.value.path) == str(pack / "rules.yaml")
    assert "residency rule 'copy-outside-home' cites no commitment" in str(caught.value)
    inventory = REPO / "fixtures" / "residency" / "inventory-2022-06.yaml"
    args = ["residency", "scan", "-p", "inventory", "--inventory", str(inventory), "--policy", str(pack)]
    assert main(args) == EXIT_INPUT
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(f"error: {pack / 'rules.yaml'}: residency rule 'copy-outside-home' cites no commitment")


def test_us_pack_keeps_its_residency_words() -> None:
    expected = json.loads(US_WORDS.read_text())
    policy = load_policy(POLICIES)
    got = {}
    for key in expected:
        name, as_of = key.split("@")
        settings = settings_from_policy(policy, as_of=date.fromisoformat(as_of))
        result = scan([InventoryProvider(paths=(REPO / name,))], settings)
        got[key] = [f.model_dump(mode="json") for f in result.findings]
    assert got == expected
