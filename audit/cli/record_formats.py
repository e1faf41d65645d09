"""The record formats users write or read, as JSON Schema and as docs/record-formats.md.

Both come from the pydantic models the tool validates with, so they cannot drift:
``residency-audit schema NAME`` (:mod:`audit.cli.schemas`) prints :func:`json_schema`,
and a test checks that docs/record-formats.md equals :func:`record_formats_markdown`
(regenerate it with ``residency-audit schema --markdown > docs/record-formats.md``).
The command imports this module when it runs: the models are not built at start-up.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict

from audit.importers.enrichment import CatalogueEntry, Person
from audit.models import AccessEvent, Approval, Finding
from audit.policy.config import PackConfig, RulesFile
from audit.report.cases import CaseRecord
from audit.residency.providers.inventory import Inventory


class DirectoryFile(BaseModel):
    """A people directory as JSON (``{"people": [...]}``; a CSV file has the same columns, one person a row)."""

    model_config = ConfigDict(extra="forbid")
    people: list[Person]


class CatalogFile(BaseModel):
    """A data catalogue (YAML): which resources hold which user data; the first matching entry wins."""

    model_config = ConfigDict(extra="forbid")
    resources: list[CatalogueEntry]


SCHEMAS: dict[str, tuple[type[BaseModel], str]] = {
    "event": (AccessEvent, "One access event: a line of the JSON Lines file `log seal` takes."),
    "approval": (
        Approval,
        "One approval: a line of the file `--approvals` or `log seal --record-type approval` takes.",
    ),
    "finding": (Finding, "One finding: a line of `findings.jsonl` in a replay report."),
    "case": (
        CaseRecord,
        "One case: a line of `cases.jsonl` in a replay report (contiguous findings of a rule, commitment "
        "and actor or store).",
    ),
    "inventory": (Inventory, "A residency inventory file (YAML or JSON) for `residency scan --provider inventory`."),
    "directory": (DirectoryFile, "The people directory `import ... --directory` takes (JSON; or CSV)."),
    "catalog": (CatalogFile, "The data catalogue `import ... --catalog` takes (YAML)."),
    "pack": (PackConfig, "A policy pack's `pack.yaml`: home, security teams, store sets and deadlines (YAML)."),
    "rules": (RulesFile, "A policy pack's optional `rules.yaml`: its own rule ids, commitments and words (YAML)."),
}
"""``schema NAME`` -> (model, what the record is)."""

EXAMPLES: dict[str, dict[str, Any]] = {
    "event": {
        "event_id": "evt-000001",
        "time": "2021-09-01T00:11:22Z",
        "action": "export",
        "actor": {
            "id": "us-eng-01",
            "kind": "employee",
            "employer": "Example Inc.",
            "office_country": "US",
            "physical_country": "US",
            "team": "us-trust-safety",
            "role": "engineer",
        },
        "resource": {
            "id": "us-health-signals/shard-53",
            "dataset": "us-health-signals",
            "category": "health_inferred",
            "store": "oci-us-ashburn",
            "provider": "oci",
            "region": "us-ashburn-1",
            "store_kind": "primary",
        },
        "approval_ids": [],
        "break_glass": False,
        "source_system": "data-access-gateway",
    },
    "approval": {
        "approval_id": "A-cn-eng-01-202109",
        "requester": "cn-eng-01",
        "threshold": 1,
        "break_glass": False,
        "approvers": [
            {"id": "sec-02", "team": "us-data-security", "country": "US", "approved_at": "2021-08-31T22:00:00Z"}
        ],
        "scope": {"datasets": ["us-videos"], "categories": ["public_video"], "actions": ["read"], "resource_ids": []},
        "not_before": "2021-09-01T00:00:00Z",
        "not_after": "2021-09-30T23:59:59Z",
        "reason": "ticket a-cn-eng-01",
    },
    "finding": {
        "rule_id": "foreign-access-without-approval",
        "commitment": "C1",
        "severity": "high",
        "title": "Foreign access without approval",
        "message": "cn-eng-02 (CN) read us-videos without an approval",
        "remediation": "Route foreign access through the US security team's approval protocol.",
        "event_ids": ["evt-000042"],
        "approval_ids": [],
        "time": "2021-09-03T10:00:00Z",
        "actor_id": "cn-eng-02",
        "policy_row": {"file": "policies/policy.csv", "line": 12, "fields": ["p", "foreign", "read", "deny"]},
        "position": {"segment": "segments/00000000.jsonl", "line": 42},
    },
    "case": {
        "id": "K-3f2a9c1d0b7e6a54",
        "rule_id": "foreign-access-without-approval",
        "commitment": "C1",
        "severity": "high",
        "title": "Foreign access without approval",
        "subject_kind": "actor",
        "subject": "cn-eng-02",
        "first_seen": "2021-09-03T10:00:00Z",
        "last_seen": "2021-09-05T18:30:00Z",
        "findings": 2,
        "events": 2,
        "waived": 0,
        "actors": ["cn-eng-02"],
        "stores": ["oci-us-ashburn-videos"],
        "finding_ids": ["F-0c5d2f3a9b1e7d6c4a20", "F-7e1b9a0c3d5f2e4a6b81"],
    },
    "inventory": {
        "version": 1,
        "account": "own-datacentres",
        "description": "stores not listed by a cloud API",
        "stores": [
            {
                "id": "dc-va-1/users",
                "name": "users",
                "provider": "own_dc",
                "region": "us-va-1",
                "country": "US",
                "kind": "database",
                "classification": {"subject_regions": ["US"], "categories": ["profile"]},
                "copies": [
                    {"kind": "backup-copy", "target": "dc-sg-1/users-backup", "provider": "own_dc", "country": "SG"}
                ],
            }
        ],
    },
    "directory": {
        "people": [
            {
                "principal": "arn:aws:iam::111122223333:user/us-eng-01",
                "person_id": "us-eng-01",
                "kind": "employee",
                "employer": "Example Inc.",
                "office_country": "US",
                "physical_country": "US",
                "team": "us-trust-safety",
                "role": "engineer",
                "security_team": False,
            }
        ]
    },
    "pack": {
        "name": "acme-eu-2026",
        "effective_from": "2026-01-01",
        "home": {"name": "the EU/EEA", "countries": ["DE", "FR", "IE"], "staff_class": "eea_staff"},
        "security_teams": ["eu-data-security"],
        "multi_region_codes": ["NAM", "ANY", "GLOBAL"],
        "region_countries": {"eu-central-1": "DE", "eu-west-3": "FR", "eu-west-1": "IE"},
        "approved_stores": [
            {"class": "eu_cloud", "description": "AWS in an EU region", "providers": ["aws"], "regions": ["eu-*"]}
        ],
        "transitional_stores": [
            {
                "class": "legacy_backup",
                "description": "backups in the old US data centre",
                "providers": ["own_dc"],
                "store_kinds": ["backup"],
                "deadline": "2026-06-30",
                "deadline_label": "migration deadline",
                "commitment": "C3",
            }
        ],
        "default_store_class": "non_eu_store",
    },
    "rules": {
        "rules": [
            {
                "id": "data-outside-the-eu",
                "kind": "store-not-approved",
                "commitment": "C3",
                "severity": "high",
                "title": "EU personal data read from a store outside the EU",
                "description": "The data came from a store outside the EU/EEA regions of pack.yaml.",
                "remediation": "Move the store to an EU region or delete the personal data it holds.",
                "message": "$who $what; store class $detail is outside the EU/EEA",
            }
        ]
    },
    "catalog": {
        "resources": [
            {
                "match": "arn:aws:s3:::us-videos/*",
                "dataset": "us-videos",
                "category": "public_video",
                "store": "aws-s3-us-videos",
                "provider": "aws",
                "region": "us-east-1",
            },
            {"match": "arn:aws:s3:::build-artifacts/*", "user_data": False},
        ]
    },
}
"""A valid example of each record (a test validates each against its model)."""


def json_schema(name: str) -> dict[str, Any]:
    """The JSON Schema of record ``name`` (a key of :data:`SCHEMAS`)."""
    model, _ = SCHEMAS[name]
    return model.model_json_schema(mode="validation")


def _type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in prop:
        return " or ".join(_type(p) for p in prop["anyOf"])
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    kind = str(prop.get("type", "any"))
    if kind == "array":
        return f"list of {_type(prop.get('items', {}))}"
    if kind == "object" and "additionalProperties" in prop:
        return f"map of {_type(prop['additionalProperties'])}"
    return kind + (f" ({prop['format']})" if "format" in prop else "")


def _rows(schema: dict[str, Any], defs: dict[str, Any], prefix: str, seen: tuple[str, ...]) -> list[str]:
    rows = []
    required = set(schema.get("required", ()))
    for field, prop in schema.get("properties", {}).items():
        path = f"{prefix}{field}"
        need = "required" if field in required else f"optional (default `{orjson.dumps(prop.get('default')).decode()}`)"
        refs = _refs(prop)
        notes = prop.get("description") or (defs[refs[0]].get("description", "") if refs else "")
        notes = " ".join(str(notes).split()).replace("|", "\\|")
        rows.append(f"| `{path}` | {_type(prop)} | {need} | {notes} |")
        for ref in refs:
            if ref not in seen:
                rows.extend(_rows(defs[ref], defs, f"{path}{'[]' if _is_list(prop) else ''}.", (*seen, ref)))
    return rows


def _refs(prop: dict[str, Any]) -> list[str]:
    found = []
    for part in (prop, prop.get("items", {}), *prop.get("anyOf", ())):
        if "$ref" in part:
            found.append(part["$ref"].rsplit("/", 1)[-1])
        elif part is not prop and part.get("items", {}).get("$ref"):
            found.append(part["items"]["$ref"].rsplit("/", 1)[-1])
    return found


def _is_list(prop: dict[str, Any]) -> bool:
    return prop.get("type") == "array" or any(p.get("type") == "array" for p in prop.get("anyOf", ()))


def record_formats_markdown() -> str:
    """docs/record-formats.md: every record's fields (path, type, required or default) and an example."""
    lines = [
        "# Record formats",
        "",
        "Generated from the pydantic models residency-audit validates with (`audit/cli/record_formats.py`);",
        "a test fails when this file and the models disagree. Print any of them as JSON Schema with",
        "`residency-audit schema NAME`; regenerate this file with",
        "`residency-audit schema --markdown > docs/record-formats.md`. Unknown fields are errors",
        "everywhere; times are RFC 3339 in UTC (`Z`); countries are ISO 3166 alpha-2 codes.",
        "",
    ]
    for name, (model, what) in SCHEMAS.items():
        schema = json_schema(name)
        lines += [f"## `{name}`: {model.__name__}", "", what, "", (model.__doc__ or "").strip().splitlines()[0], ""]
        lines += ["| field | type | required | notes |", "|---|---|---|---|"]
        lines += _rows(schema, schema.get("$defs", {}), "", (model.__name__,))
        example = orjson.dumps(EXAMPLES[name], option=orjson.OPT_INDENT_2).decode()
        lines += ["", "Example:", "", "```json", example, "```", ""]
    return "\n".join(lines)
