"""The shipped policy pack decides every case as specified, and broken packs fail at file:line.

Runs ``policies/tests/cases.yaml`` against the real pack through pycasbin, checks
that every ``p`` row decides at least one case, that stock pycasbin reading the
files itself agrees with the loader's enforcer, that caching changes nothing, and
that each kind of malformed pack is an ``InputError`` naming the exact file and line.
"""

from __future__ import annotations

import itertools
import re
import shutil
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import get_args

import casbin
import pytest
import yaml
from pydantic import BaseModel, ConfigDict

from audit.errors import InputError
from audit.models import Action
from audit.policy import (
    Decision,
    PackConfig,
    PolicyPack,
    Request,
    StoreSet,
    load_pack,
    load_policy,
)

REPO = Path(__file__).resolve().parent.parent
POLICIES = REPO / "policies"
CASES = POLICIES / "tests" / "cases.yaml"

# The request vocabularies the replay engine derives (audit/replay/facts.py, approvals.py).
ACTOR_CLASSES = ("us_staff", "foreign_staff", "unlocated_staff", "vendor", "advertiser")
APPROVAL_STATES = (
    "none",
    "valid",
    "unknown_id",
    "expired",
    "not_yet_valid",
    "revoked",
    "scope_exceeded",
    "self_approved",
    "approver_not_security_team",
    "threshold_not_met",
    "wrong_requester",
    "break_glass_unjustified",
    "break_glass_unreviewed",
)
ACTIONS: tuple[str, ...] = get_args(Action)


class Case(BaseModel):
    """One entry of ``cases.yaml``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    request: tuple[str, str, str, str, str]
    allow: bool
    commitment: str
    rule: str | None
    row: int | None


def _load_cases() -> list[Case]:
    raw = yaml.safe_load(CASES.read_text(encoding="utf-8"))
    assert isinstance(raw, list)
    return [Case.model_validate(entry) for entry in raw]


CASE_LIST = _load_cases()


@pytest.fixture(scope="module")
def pack() -> PolicyPack:
    return load_pack(POLICIES)


def _priority(decision: Decision) -> int | None:
    return int(decision.row.fields[0]) if decision.row is not None else None


# ---------------------------------------------------------------- the shipped pack


def test_case_names_are_unique() -> None:
    names = [case.name for case in CASE_LIST]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("case", CASE_LIST, ids=[case.name for case in CASE_LIST])
def test_case(pack: PolicyPack, case: Case) -> None:
    decision = pack.decide(case.request)
    got = (decision.allowed, decision.commitment, decision.rule_id, _priority(decision))
    assert got == (case.allow, case.commitment, case.rule, case.row)
    if decision.row is not None:
        assert decision.commitment == decision.row.commitment
        assert decision.rule_id == decision.row.rule_id


def test_every_p_row_decides_at_least_one_case(pack: PolicyPack) -> None:
    deciding = {pack.decide(case.request).row for case in CASE_LIST}
    undecided = [row for row in pack.rows if row.ptype == "p" and row not in deciding]
    assert not undecided, "p rows no case reaches: " + ", ".join(
        f"line {row.line} ({row.fields[0]})" for row in undecided
    )


def test_cases_exercise_every_grouping_kind(pack: PolicyPack) -> None:
    requested = {value for case in CASE_LIST for value in case.request}
    assert {"unlocated_staff", "vendor", "advertiser", "law_enforcement", "government"} <= requested
    assert {"health_inferred", "precise_location", "unclassified", "public_video"} <= requested
    assert {"read", "query", "download", "export", "copy", "disclose"} <= requested
    assert pack.categories >= {"health_inferred", "precise_location", "unclassified"}


def test_stock_pycasbin_reading_the_files_agrees(pack: PolicyPack) -> None:
    """The files work as they are with pycasbin's own FileAdapter, with the same rows."""
    stock = casbin.Enforcer(str(POLICIES / "model.conf"), str(POLICIES / "policy.csv"))
    for case in CASE_LIST:
        allowed, explain = stock.enforce_ex(*case.request)
        decision = pack.decide(case.request)
        assert allowed == decision.allowed, case.name
        assert tuple(explain) == (decision.row.fields if decision.row else ()), case.name


def test_rows_point_at_their_lines(pack: PolicyPack) -> None:
    lines = (POLICIES / "policy.csv").read_text(encoding="utf-8").splitlines()
    assert pack.rows
    for row in pack.rows:
        assert row.file == str(POLICIES / "policy.csv")
        tokens = [token.strip() for token in lines[row.line - 1].split(",")]
        assert (tokens[0], tuple(tokens[1:])) == (row.ptype, row.fields)
        ref = row.ref()
        assert (ref.file, ref.line, ref.fields) == (row.file, row.line, row.fields)


def test_every_row_cites_a_registered_commitment(pack: PolicyPack) -> None:
    for row in pack.rows:
        assert row.commitment in pack.commitments, row
        if row.ptype == "p":
            assert row.fields[7] == row.commitment
            assert row.rule_id == (None if row.fields[8] == "-" else row.fields[8])
            assert (row.fields[6] == "allow") == (row.rule_id is None)


def test_block_headers_cite_the_registers_seed_lines(pack: PolicyPack) -> None:
    """Each header names, for each commitment it cites, a seed file:line from the register."""
    lines = (POLICIES / "policy.csv").read_text(encoding="utf-8").splitlines()
    header = re.compile(r"#\s*(C[0-9]+(?:\s*,\s*C[0-9]+)*)\s*:")
    headers = [(n, m) for n, text in enumerate(lines) if (m := header.match(text.strip()))]
    assert len(headers) >= 10
    for index, match in headers:
        block = [lines[index]]
        for text in lines[index + 1 :]:
            if not text.strip().startswith("#") or header.match(text.strip()):
                break
            block.append(text)
        cited_refs = set(re.findall(r"seeds/([\w.]+\.txt):([0-9]+)", " ".join(block)))
        for cid in (part.strip() for part in match.group(1).split(",")):
            sources = {(s.file, str(s.line)) for s in pack.commitments[cid].sources}
            assert cited_refs & sources, f"policy.csv:{index + 1}: no seed line of {cid} cited"
        assert cited_refs, f"policy.csv:{index + 1}: header cites no seed line"


def test_pack_api(pack: PolicyPack) -> None:
    assert pack.config.name == "tiktok-us-data-2022"
    assert [path.name for path in pack.files] == [
        "model.conf",
        "policy.csv",
        "pack.yaml",
        "commitments.yaml",
    ]
    assert all(path.is_file() for path in pack.files)
    assert set(pack.commitments) == {f"C{n}" for n in range(1, 10)}
    assert pack.request_fields == ("facet", "sub", "obj", "act", "ctx")
    assert pack.definitions["p"][:2] == ("priority", "facet")
    assert pack.rule_ids == {row.fields[8] for row in pack.rows if row.ptype == "p"} - {"-"}
    assert "sensitive" not in pack.categories and "non_sensitive" not in pack.categories
    assert pack.categories == {
        "public_video", "public_comment", "public_profile", "precise_location",
        "health_inferred", "private_message", "contact", "payment", "biometric",
        "device_id", "private_profile", "unclassified",
    }  # fmt: skip


def test_no_matching_row_is_a_default_deny(pack: PolicyPack) -> None:
    decision = pack.decide(("nothing", "a", "b", "c", "d"))
    assert decision == Decision(False, "C1", "policy-default-deny", None)


def test_wrong_request_size_is_a_programming_error(pack: PolicyPack) -> None:
    bad: Request = ("access", "us_staff", "contact", "read")  # type: ignore[assignment]
    with pytest.raises(ValueError, match=re.escape("request has 4 fields, model.conf defines 5")):
        pack.decide(bad)


def test_every_declared_approval_state_has_an_access_row(pack: PolicyPack) -> None:
    named = {row.fields[5] for row in pack.rows if row.ptype == "p" and row.fields[1] == "access"}
    assert set(APPROVAL_STATES) <= named


def test_cached_decisions_equal_uncached_over_the_access_domain(pack: PolicyPack) -> None:
    categories = [*sorted(pack.categories), "shoe_size"]
    domain: list[Request] = [
        ("access", *combo) for combo in itertools.product(ACTOR_CLASSES, categories, ACTIONS, APPROVAL_STATES)
    ]
    fresh = load_pack(POLICIES)
    first = {request: fresh.decide(request) for request in domain}
    assert fresh.cache_size() == len(domain)
    for request in domain:
        assert fresh.decide(request) is first[request]
        assert fresh.decide_uncached(request) == first[request]
    # Invariants of the access facet over the whole domain.
    sensitive = {row.fields[0] for row in pack.rows if row.ptype == "g2" and row.fields[1] == "sensitive"}
    for (_, actor, category, _, state), decision in first.items():
        if actor == "us_staff":
            assert decision.allowed
        elif actor in ("foreign_staff", "unlocated_staff"):
            if category in sensitive:
                assert decision.rule_id == "foreign-sensitive-access"
            assert decision.allowed == (state == "valid" and category not in sensitive
                                        and category in pack.categories)  # fmt: skip
        else:
            assert decision.allowed == (category not in sensitive and category in pack.categories)


# ---------------------------------------------------------------- broken packs


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    """A private copy of the shipped pack to break."""
    dest = tmp_path / "pack"
    shutil.copytree(POLICIES, dest)
    return dest


def _line_of(path: Path, needle: str) -> int:
    return next(n for n, text in enumerate(path.read_text().splitlines(), 1) if needle in text)


def _replace(path: Path, old: str, new: str) -> int:
    """Replace the first line containing ``old`` (must exist); return its line number."""
    lines = path.read_text().splitlines()
    number = _line_of(path, old)
    lines[number - 1] = lines[number - 1].replace(old, new)
    path.write_text("\n".join(lines) + "\n")
    return number


def _append(path: Path, text: str) -> int:
    lines = path.read_text().splitlines()
    lines.append(text)
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


def _expect(pack_dir: Path, file: str, line: int | None, reason: str) -> None:
    with pytest.raises(InputError) as info:
        load_pack(pack_dir)
    error = info.value
    assert (error.path, error.line) == (str(pack_dir / file), line), str(error)
    assert reason in error.reason, str(error)
    rendered = str(error)
    assert "\n" not in rendered
    assert rendered.startswith(f"{pack_dir / file}:{line}: " if line else f"{pack_dir / file}: ")


CSV = "policy.csv"
PROXY_ROW = "p, 400, proxy, us_staff, foreign_staff, data_access, *, deny, C8, proxy-access"

CSV_BREAKS: list[tuple[str, Callable[[Path], int], str]] = [
    ("undefined ptype", lambda p: _append(p, "g4, read, reads"), "row type 'g4' is not defined"),
    ("undefined p2", lambda p: _append(p, "p2, 1, a"), "pycasbin would silently drop this row"),
    (
        "too few fields",
        lambda p: _replace(p, PROXY_ROW, "p, 400, proxy, us_staff, foreign_staff, *, deny, C8, x"),
        "p row has 8 fields, model.conf defines 9 (priority, facet, sub, obj, act, ctx, eft,",
    ),
    (
        "grouping row with three fields",
        lambda p: _replace(p, "g, vendor, third_party", "g, vendor, third_party, extra"),
        "g row has 3 fields, model.conf defines 2",
    ),
    (
        "unknown commitment",
        lambda p: _replace(p, "deny, C8, proxy-access", "deny, C10, proxy-access"),
        "commitment C10 is not in the commitment register",
    ),
    (
        "commitment not named by the block header",
        lambda p: _replace(p, "deny, C8, proxy-access", "deny, C3, proxy-access"),
        "row cites C3 but its block header (line",
    ),
    (
        "deny without rule",
        lambda p: _replace(p, "deny, C8, proxy-access", "deny, C8, -"),
        "deny row names no rule id",
    ),
    (
        "allow with rule",
        lambda p: _replace(p, "*, allow, C8, -", "*, allow, C8, proxy-access"),
        "allow row names rule 'proxy-access'",
    ),
    (
        "eft neither allow nor deny",
        lambda p: _replace(p, "deny, C8, proxy-access", "reject, C8, proxy-access"),
        "eft 'reject' must be allow or deny",
    ),
    (
        "priority not an integer",
        lambda p: _replace(p, "p, 400, proxy", "p, high, proxy"),
        "priority 'high' is not a non-negative integer",
    ),
    (
        "negative priority",
        lambda p: _replace(p, "p, 400, proxy", "p, -4, proxy"),
        "priority '-4' is not a non-negative integer",
    ),
    (
        "priority used twice",
        lambda p: _replace(p, "p, 499, proxy", "p, 400, proxy"),
        "priority 400 is already used on line",
    ),
    ("duplicate row", lambda p: _append(p, PROXY_ROW), "duplicate of the row on line"),
    (
        "duplicate grouping row",
        lambda p: _append(p, "g2, contact, sensitive"),
        "duplicate of the row on line",
    ),
    (
        "trailing comment",
        lambda p: _replace(p, PROXY_ROW, PROXY_ROW + "  # no proxies"),
        "trailing comments are not allowed",
    ),
    (
        "empty field",
        lambda p: _replace(p, "g, vendor, third_party", "g, vendor, "),
        "field g.1 is empty",
    ),
    (
        "rule id not kebab-case",
        lambda p: _replace(p, "deny, C8, proxy-access", "deny, C8, Proxy_Access"),
        "rule id 'Proxy_Access' is not lower-kebab-case",
    ),
    (
        "header citing an unknown commitment",
        lambda p: _replace(p, "# C8: a US-based worker", "# C42: a US-based worker"),
        "block header cites C42",
    ),
    (
        "grouping rows under a header naming several commitments",
        lambda p: _append(p, "g, contractor, us_staff"),
        "give grouping rows a header naming one",
    ),
]


@pytest.mark.parametrize(("label", "breaker", "reason"), CSV_BREAKS, ids=[label for label, _, _ in CSV_BREAKS])
def test_broken_policy_csv(broken: Path, label: str, breaker: Callable[[Path], int], reason: str) -> None:
    line = breaker(broken / CSV)
    _expect(broken, CSV, line, reason)


def test_row_before_any_header(broken: Path) -> None:
    csv = broken / CSV
    csv.write_text("g, vendor, third_party\n# C9: third parties\n", encoding="utf-8")
    _expect(broken, CSV, 1, "row is not under a block header")


def test_not_utf8(broken: Path) -> None:
    (broken / CSV).write_bytes(b"# C1: x\ng, caf\xe9, b\n")
    _expect(broken, CSV, None, "not UTF-8")


MODEL = "model.conf"

MODEL_BREAKS: list[tuple[str, str, str, str]] = [
    (
        "trailing comment in the policy definition",
        "p = priority, facet, sub, obj, act, ctx, eft, commitment, rule",
        "p = priority, facet, sub, obj, act, ctx, eft, commitment, rule  # fields",
        "is not a field name",
    ),
    (
        "policy definition without a commitment field",
        "p = priority, facet, sub, obj, act, ctx, eft, commitment, rule",
        "p = priority, facet, sub, obj, act, ctx, eft, rule",
        "p must define the fields commitment",
    ),
    (
        "deny-override effect",
        "e = priority(p.eft) || deny",
        "e = !some(where (p.eft == deny))",
        "policy effect must be 'priority(p.eft) || deny'",
    ),
    (
        "role definition numbered with a gap",
        "g3 = _, _",
        "g4 = _, _",
        "g4 is ignored by pycasbin",
    ),
    (
        "role definition with a trailing comment",
        "g2 = _, _",
        "g2 = _, _  # categories",
        "g2 must be a plain role definition",
    ),
    (
        "unknown section",
        "[matchers]",
        "[matcher]",
        "unknown section [matcher]",
    ),
    (
        "matcher that does not evaluate",
        "m = r.facet == p.facet",
        "m = r.facet == p.nosuchfield",
        "matcher does not evaluate",
    ),
]


@pytest.mark.parametrize(("label", "old", "new", "reason"), MODEL_BREAKS, ids=[label for label, *_ in MODEL_BREAKS])
def test_broken_model_conf(broken: Path, label: str, old: str, new: str, reason: str) -> None:
    line = _replace(broken / MODEL, old, new)
    _expect(broken, MODEL, line, reason)


CONFIG = "pack.yaml"


def test_unknown_key_in_pack_yaml(broken: Path) -> None:
    line = _append(broken / CONFIG, "backup_deadline: 2021-12-01")
    _expect(broken, CONFIG, line, "backup_deadline: unknown field")


def test_bad_date_in_pack_yaml(broken: Path) -> None:
    line = _replace(broken / CONFIG, "deadline: 2022-01-15", "deadline: soon")
    _expect(broken, CONFIG, line, "transitional_stores.1.deadline:")


def test_bad_country_code_in_pack_yaml(broken: Path) -> None:
    line = _replace(broken / CONFIG, "countries: [US]", "countries: [USA]")
    _expect(broken, CONFIG, line, "'USA' is not an ISO 3166 alpha-2 country code")


def test_missing_key_in_pack_yaml(broken: Path) -> None:
    _replace(broken / CONFIG, "staff_class: us_staff", "")
    _expect(broken, CONFIG, 10, "home.staff_class: Field required")


def test_store_classes_must_be_unique(broken: Path) -> None:
    line = _replace(broken / CONFIG, "class: oci_foreign", "class: oci_us")
    _expect(broken, CONFIG, None, "store classes must be unique, repeated: oci_us")
    assert line > 0


@pytest.mark.parametrize("pattern", ["us-[a-z]*", "*-*-*", "x" * 65, "(us|eu)-.*"])
def test_region_patterns_are_plain_globs(pattern: str) -> None:
    with pytest.raises(ValueError, match="is not a region name or pattern"):
        StoreSet.model_validate({"class": "x", "description": "x", "regions": [pattern]})


def test_pack_yaml_normalises_codes() -> None:
    config = PackConfig.model_validate(
        {
            "name": "x",
            "effective_from": "2021-01-01",
            "home": {"name": "the US", "countries": ["us"], "staff_class": "us_staff"},
            "security_teams": ["sec"],
            "multi_region_codes": ["nam"],
            "region_countries": {"AP-Singapore-1": "sg"},
            "approved_stores": [{"class": "ok", "description": "ok", "regions": ["US-*"]}],
        }
    )
    assert config.home.countries == ("US",)
    assert config.multi_region_codes == ("NAM",)
    assert config.country_of_region("ap-SINGAPORE-1") == "SG"
    assert config.approved_stores[0].regions == ("us-*",)
    assert config.effective_from == date(2021, 1, 1)
    assert config.store_classes() == ("ok", "other_store")


def test_named_store_classes_are_every_sets_class_and_the_default_without_expired_ones() -> None:
    config = load_pack(POLICIES).config
    named = config.named_store_classes()
    assert config.default_store_class in named
    assert {s.store_class for s in config.store_sets()} <= named
    assert not any(name.endswith("_expired") for name in named)
    assert set(config.store_classes()) - named == {s.expired_class for s in config.transitional_stores}


@pytest.mark.parametrize("name", ["model.conf", "policy.csv", "pack.yaml", "commitments.yaml"])
def test_missing_file(broken: Path, name: str) -> None:
    (broken / name).unlink()
    _expect(broken, name, None, "missing policy pack file")


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such directory"):
        load_pack(tmp_path / "nope")


# ---------------------------------------------------------------- versions over time


def _version(root: Path, name: str, effective_from: str) -> Path:
    dest = root / name
    shutil.copytree(POLICIES, dest, ignore=shutil.ignore_patterns("tests"))
    _replace(dest / CONFIG, "name: tiktok-us-data-2022", f"name: {name}")
    _replace(dest / CONFIG, "effective_from: 2021-01-01", f"effective_from: {effective_from}")
    return dest


def test_history_picks_the_version_in_force(tmp_path: Path) -> None:
    root = tmp_path / "versions"
    root.mkdir()
    # Directory names deliberately sort opposite to their dates.
    _version(root, "b-2021", "2021-01-01")
    late = _version(root, "a-2022", "2022-01-01")
    _replace(late / CSV, PROXY_ROW, PROXY_ROW.replace("data_access", "reads"))
    (root / "notes").mkdir()  # a subdirectory without pack.yaml is not a version
    history = load_policy(root)
    assert [pack.config.name for pack in history.packs] == ["b-2021", "a-2022"]

    def name_at(when: datetime) -> str:
        return history.at(when).config.name

    assert name_at(datetime(2020, 6, 1, tzinfo=UTC)) == "b-2021"  # before every version
    assert name_at(datetime(2021, 1, 1, tzinfo=UTC)) == "b-2021"
    assert name_at(datetime(2021, 12, 31, 23, 59, 59, tzinfo=UTC)) == "b-2021"
    assert name_at(datetime(2022, 1, 1, tzinfo=UTC)) == "a-2022"  # boundary is inclusive
    assert name_at(datetime(2030, 1, 1, tzinfo=UTC)) == "a-2022"
    # Judged on the UTC date: 19:30 on 31 Dec in New York is already 1 Jan in UTC.
    new_york = timezone(timedelta(hours=-5))
    assert name_at(datetime(2021, 12, 31, 19, 30, tzinfo=new_york)) == "a-2022"
    # The versions really differ: the later one no longer forbids proxy exports.
    export = ("proxy", "us_staff", "foreign_staff", "export", "-")
    assert not history.at(datetime(2021, 6, 1, tzinfo=UTC)).decide(export).allowed
    assert history.at(datetime(2022, 6, 1, tzinfo=UTC)).decide(export).allowed


def test_single_pack_directory_is_a_one_version_history() -> None:
    history = load_policy(POLICIES)
    assert len(history.packs) == 1
    assert history.at(datetime(1999, 1, 1, tzinfo=UTC)) is history.packs[0]


def test_two_versions_with_the_same_date(tmp_path: Path) -> None:
    root = tmp_path / "versions"
    root.mkdir()
    _version(root, "v1", "2021-01-01")
    second = _version(root, "v2", "2021-01-01")
    with pytest.raises(InputError) as info:
        load_policy(root)
    assert info.value.path == str(second / CONFIG)
    assert info.value.line == _line_of(second / CONFIG, "effective_from:")
    assert "effective_from 2021-01-01 is also the date of" in info.value.reason


def test_two_versions_with_the_same_name(tmp_path: Path) -> None:
    root = tmp_path / "versions"
    root.mkdir()
    _version(root, "v1", "2021-01-01")
    second = _version(root, "v2", "2022-01-01")
    _replace(second / CONFIG, "name: v2", "name: v1")
    with pytest.raises(InputError) as info:
        load_policy(root)
    line = _line_of(second / CONFIG, "name: v1")
    assert (info.value.path, info.value.line) == (str(second / CONFIG), line)
    assert "name 'v1' is also the name of" in info.value.reason


def test_no_policy_pack(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no policy pack in"):
        load_policy(tmp_path)
    with pytest.raises(InputError, match="no such directory"):
        load_policy(tmp_path / "missing")


def test_a_broken_version_is_reported_in_its_own_files(tmp_path: Path) -> None:
    root = tmp_path / "versions"
    root.mkdir()
    _version(root, "v1", "2021-01-01")
    second = _version(root, "v2", "2022-01-01")
    line = _append(second / CSV, "g9, a, b")
    with pytest.raises(InputError) as info:
        load_policy(root)
    assert (info.value.path, info.value.line) == (str(second / CSV), line)
