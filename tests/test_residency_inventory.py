"""Inventory files, classification, linking and the residency rules themselves."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from audit.cli.app import main
from audit.errors import EXIT_CLEAN, EXIT_INPUT, EXIT_VIOLATIONS, InputError
from audit.policy import load_policy
from audit.residency.models import DataStore, ResidencySettings, StoreCopy
from audit.residency.places import classify
from audit.residency.providers.inventory import InventoryProvider, load_inventory
from audit.residency.rules import load_rules
from audit.residency.scanner import judge, link_copies, scan, settings_from_policy
from tests.conftest import FIXTURES, POLICIES

RESIDENCY = FIXTURES / "residency"
JUNE_2022 = RESIDENCY / "inventory-2022-06.yaml"
EXPECTED = json.loads((RESIDENCY / "expected-findings.json").read_text())


def _settings(as_of: str = "2022-06-30") -> ResidencySettings:
    return settings_from_policy(load_policy(POLICIES), as_of=date.fromisoformat(as_of))


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    return path


def test_june_2022_inventory_matches_its_labels() -> None:
    result = scan([InventoryProvider(paths=(JUNE_2022,))], _settings())
    names = {s.resource: s.name for s in result.stores}
    labels = sorted(
        ({"rule_id": f.rule_id, "commitment": f.commitment, "store": names[f.resource]} for f in result.findings),
        key=lambda d: (d["commitment"], d["rule_id"], d["store"]),
    )
    assert labels == sorted(EXPECTED["inventory-2022-06"], key=lambda d: (d["commitment"], d["rule_id"], d["store"]))
    dr = next(s for s in result.stores if s.name == "us-user-data-dr")
    assert dr.copy_of is not None and dr.classification is not None and dr.classification.source == "inherited"


def test_before_every_deadline_only_the_unclassified_store_remains() -> None:
    result = scan([InventoryProvider(paths=(JUNE_2022,))], _settings("2021-06-01"))
    assert [f.rule_id for f in result.findings] == ["copy-outside-us", "unclassified-store"]


def test_deadline_option_moves_the_singapore_rule(capsys: pytest.CaptureFixture[str]) -> None:
    base = [
        "residency",
        "scan",
        "-p",
        "inventory",
        "--inventory",
        str(JUNE_2022),
        "--as-of",
        "2022-06-30",
        "--policy",
        str(POLICIES),
        "--format",
        "json",
    ]
    assert main([*base, "--deadline", "2022-07-01"]) == EXIT_VIOLATIONS
    later = json.loads(capsys.readouterr().out)
    assert "singapore-after-deadline" not in {f["rule_id"] for f in later["findings"]}
    assert later["singapore_deadline"] == "2022-07-01"
    assert main(base) == EXIT_VIOLATIONS
    default = json.loads(capsys.readouterr().out)
    assert default["singapore_deadline"] == "2021-12-01"  # policies/pack.yaml
    assert "singapore-after-deadline" in {f["rule_id"] for f in default["findings"]}


def test_unclassified_store_alone_is_never_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(
        tmp_path,
        "version: 1\naccount: acme\nstores:\n  - {id: nas-1, provider: oci, region: us-ashburn-1, kind: file-share}\n",
    )
    rc = main(["residency", "scan", "-p", "inventory", "--inventory", str(path), "--policy", str(POLICIES)])
    assert rc == EXIT_VIOLATIONS
    assert "unclassified-store" in capsys.readouterr().out


def test_classified_oci_us_inventory_is_clean(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "version: 1\naccount: acme\nstores:\n"
        "  - id: b1\n    provider: oci\n    region: us-ashburn-1\n    kind: bucket\n"
        "    classification: {subject_regions: [US]}\n",
    )
    assert main(["residency", "scan", "-p", "inventory", "--inventory", str(path), "--policy", str(POLICIES)]) == 0


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        (
            "version: 1\naccount: a\nstores:\n  - id: x\n    provider: oci\n"
            "    region: r\n    kind: k\n    colour: red\n",
            8,
            "stores.0.colour: unknown field",
        ),
        (
            "version: 1\naccount: a\nstores:\n  - id: x\n    provider: ibm\n    region: r\n    kind: k\n",
            5,
            "stores.0.provider: Input should be",
        ),
        (
            "version: 1\naccount: a\nstores:\n  - id: x\n    provider: oci\n    kind: k\n",
            4,
            "stores.0.region: Field required",
        ),
        (
            "version: 1\naccount: a\nstores:\n  - {id: x, provider: oci, region: r, kind: k}\n"
            "  - {id: x, provider: oci, region: r, kind: k}\n",
            5,
            "duplicate store id 'x'",
        ),
        ("version: 1\naccount: [a\n", 3, "malformed YAML"),
    ],
    ids=["unknown-field", "bad-provider", "missing-region", "duplicate-id", "malformed-yaml"],
)
def test_bad_inventory_is_one_line_file_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, line: int, reason: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as caught:
        load_inventory(path)
    assert caught.value.line == line
    assert main(["residency", "scan", "-p", "inventory", "--inventory", str(path), "--policy", str(POLICIES)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"error: {path}:{line}: ") and reason in err


def test_inventory_provider_needs_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["residency", "scan", "-p", "inventory", "--policy", str(POLICIES)]) == EXIT_INPUT
    assert "--inventory" in capsys.readouterr().err


def test_bad_date_is_input_error(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(
        [
            "residency",
            "scan",
            "-p",
            "inventory",
            "--inventory",
            str(JUNE_2022),
            "--deadline",
            "31/12/2021",
            "--policy",
            str(POLICIES),
        ]
    )
    assert rc == EXIT_INPUT
    assert "--deadline" in capsys.readouterr().err


def test_classification_tags_are_configurable() -> None:
    settings = _settings()
    assert classify({"Data-Subject-Region": "us, ca"}, settings) is not None
    cls = classify({"data-subject-region": "US,CA", "data-category": "contact"}, settings)
    assert cls is not None and cls.subject_regions == ("CA", "US") and cls.categories == ("contact",)
    none = classify({"data-subject-region": "none"}, settings)
    assert none is not None and none.subject_regions == ()
    assert classify({"owner": "team"}, settings) is None
    custom = ResidencySettings(**{**settings.__dict__, "region_tag": "residency"})
    assert classify({"residency": "US"}, custom) is not None


def _store(resource: str, region: str, **extra: object) -> DataStore:
    return DataStore.model_validate(
        {
            "provider": "aws",
            "account": "1",
            "region": region,
            "resource": resource,
            "name": resource,
            "kind": "s3-bucket",
            "source": "test",
            **extra,
        }
    )


def test_copy_of_unknown_region_is_not_taken_to_be_in_the_us() -> None:
    us = _store(
        "src",
        "us-east-1",
        classification={"subject_regions": ["US"], "source": "tags"},
        copies=[StoreCopy(kind="replication", target="arn:aws:s3:::partner", provider="aws", region=None)],
    )
    findings = judge(link_copies([us]), _settings())
    assert ("copy-outside-us", "arn:aws:s3:::partner") in {(f.rule_id, f.resource) for f in findings}


def test_offshore_copy_is_reported_once_for_c3() -> None:
    src = _store(
        "src",
        "us-east-1",
        classification={"subject_regions": ["US"], "source": "tags"},
        copies=[StoreCopy(kind="replication", target="dst", provider="aws", region="eu-west-1")],
    )
    dst = _store("dst", "eu-west-1", classification={"subject_regions": ["US"], "source": "tags"})
    findings = judge(link_copies([src, dst]), _settings())
    assert sorted((f.rule_id, f.resource) for f in findings) == [
        ("copy-outside-us", "dst"),
        ("store-not-on-oci", "src"),
    ]


def test_rules_have_unique_ids_commitments_and_remediation() -> None:
    rules = load_rules()
    ids = [r.id for r in rules]
    assert len(ids) == len(set(ids)) == 6
    assert {r.metadata.commitment for r in rules} == {"C3", "C4", "C6"}
    assert [r.id for r in rules if r.metadata.status == "unknown"] == ["unclassified-store"]
    assert all(r.metadata.remediation.strip() for r in rules)


def test_clean_exit_code_is_zero_for_empty_scope(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "version: 1\naccount: acme\nstores:\n"
        "  - id: b1\n    provider: aws\n    region: eu-west-1\n    kind: bucket\n"
        "    classification: {subject_regions: []}\n",
    )
    assert (
        main(["residency", "scan", "-p", "inventory", "--inventory", str(path), "--policy", str(POLICIES)])
        == EXIT_CLEAN
    )
