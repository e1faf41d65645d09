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
from audit.residency.rules import load_rules, residency_book
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
    assert main([*base, "--deadline", "singapore_backup=2022-07-01"]) == EXIT_VIOLATIONS
    later = json.loads(capsys.readouterr().out)
    assert "singapore-after-deadline" not in {f["rule_id"] for f in later["findings"]}
    assert "own-dc-not-phased-out" in {f["rule_id"] for f in later["findings"]}  # its own deadline is kept
    assert later["deadlines"] == {"own_dc": "2022-01-15", "singapore_backup": "2022-07-01"}
    assert main(base) == EXIT_VIOLATIONS
    default = json.loads(capsys.readouterr().out)
    assert default["deadlines"]["singapore_backup"] == "2021-12-01"  # policies/pack.yaml
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


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        (["singapore_backup=31/12/2021"], "--deadline singapore_backup: '31/12/2021' is not a date (YYYY-MM-DD)"),
        (["2021-12-31"], "--deadline: '2021-12-31' is not CLASS=YYYY-MM-DD"),
        (["=2021-12-31"], "--deadline: '=2021-12-31' is not CLASS=YYYY-MM-DD"),
        (["own_dc=2022-01-01", "own_dc=2022-02-01"], "--deadline: 'own_dc' is given twice with different dates"),
        (
            ["oci_us=2022-01-01"],
            "--deadline: 'oci_us' is not a transitional store class of the pack (known: own_dc, singapore_backup)",
        ),
    ],
    ids=["bad-date", "no-class", "empty-class", "twice", "not-transitional"],
)
def test_bad_deadline_is_one_line_input_error(
    capsys: pytest.CaptureFixture[str], values: list[str], reason: str
) -> None:
    args = ["residency", "scan", "-p", "inventory", "--inventory", str(JUNE_2022), "--policy", str(POLICIES)]
    for value in values:
        args += ["--deadline", value]
    assert main(args) == EXIT_INPUT
    err = capsys.readouterr().err.strip()
    assert err == f"error: {reason}"


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


def test_engine_rules_are_generic_and_the_us_pack_words_them() -> None:
    rules = load_rules()
    assert [r.id for r in rules] == [
        "copy-outside-home",
        "store-after-deadline",
        "store-not-approved-provider",
        "store-outside-home",
        "unclassified-store",
    ]
    assert all(r.metadata.commitment is None for r in rules)
    texts = " ".join(
        f"{r.metadata.title} {r.metadata.description} {r.metadata.remediation} {r.message} {r.copy_message}"
        for r in rules
    )
    assert not any(word in texts for word in ("US", "OCI", "Oracle", "Singapore", "own data cent"))
    book = residency_book(rules, _settings())
    words = [w for bound in book for w in bound.words if w.commitment is not None]
    assert sorted((w.id, w.commitment) for w in words) == [
        ("copy-outside-us", "C3"),
        ("oci-outside-us", "C3"),
        ("own-dc-not-phased-out", "C6"),
        ("singapore-after-deadline", "C4"),
        ("store-not-on-oci", "C3"),
        ("unclassified-store", "C3"),
    ]
    assert [b.engine.id for b in book if b.engine.metadata.status == "unknown"] == ["unclassified-store"]
    assert all(w.remediation.strip() for b in book for w in b.words)


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
