"""Interchangeable request values (audit/policy/symmetry.py): one pycasbin decision per orbit, proven equal.

The shortcut lint and prove take is held equal to pycasbin on every request: of the
shipped packs' whole lint domains, of random packs of every matcher the argument
admits (hypothesis), and of the Casbin examples corpus. The preconditions are
tested to refuse what the argument does not cover, and lint and prove reports of
broken packs are compared with the shortcut switched off.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import casbin
import pytest
from casbin.util import key_match2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.cli.app import main
from audit.errors import EXIT_CLEAN
from audit.policy import load_pack
from audit.policy.domain import load_invariants
from audit.policy.lint import UNDECLARED, lint_paths, pair_files
from audit.policy.load import RowsAdapter
from audit.policy.pack import PolicyPack, PolicyRow
from audit.policy.prove import prove
from audit.policy.symmetry import SymmetricDecisions, ValueClasses, interchangeable
from audit.replay.rules import rule_commitments
from tests.conftest import POLICIES, REPO
from tests.policy_breaks import insert_before

CASBIN_EXAMPLES = Path(
    os.environ.get("CASBIN_EXAMPLES", Path(__file__).resolve().parents[2] / "shared" / "corpora" / "casbin-examples")
)
EU_PACK = REPO / "packs" / "eu-personal-data"


def _enforcer(model: str, rows: Sequence[tuple[str, ...]]) -> casbin.Enforcer:
    loaded = casbin.Model()
    loaded.load_model_from_text(model)
    adapter = RowsAdapter([PolicyRow(row[0], row[1:], "policy.csv", n) for n, row in enumerate(rows, 1)])
    return casbin.Enforcer(loaded, adapter, enable_log=False)


def _model(matcher: str, effect: str = "priority(p.eft) || deny", roles: str = "g = _, _\ng2 = _, _") -> str:
    return (
        "[request_definition]\nr = sub, obj, act\n"
        "[policy_definition]\np = priority, sub, obj, act, eft\n"
        f"[role_definition]\n{roles}\n"
        f"[policy_effect]\ne = {effect}\n"
        f"[matchers]\nm = {matcher}\n"
    )


RBAC = 'g(r.sub, p.sub) && (p.obj == "*" || r.obj == p.obj || g2(r.obj, p.obj)) && r.act == p.act'


# ---------------------------------------------------------------- canonical requests


def test_canonical_renames_values_within_their_class_in_order_of_appearance() -> None:
    classes = ValueClasses([("vendor", "advertiser", "agency"), ("read", "query")])
    assert classes.canonical(("proxy", "advertiser", "vendor", "query", "-")) == (
        "proxy",
        "vendor",
        "advertiser",
        "read",
        "-",
    )
    assert classes.canonical(("proxy", "agency", "agency", "read", "-")) == ("proxy", "vendor", "vendor", "read", "-")
    assert classes.canonical(("proxy", "us_staff", "agency", "copy", "-")) == (
        "proxy",
        "us_staff",
        "vendor",
        "copy",
        "-",
    )


def test_classes_hold_only_unnamed_values_with_the_same_links() -> None:
    rows = [
        ("p", "1", "staff", "sensitive", "read", "allow"),
        ("p", "2", "named", "*", "read", "deny"),
        ("g", "alice", "staff"),
        ("g", "bob", "staff"),
        ("g", "carol", "staff"),
        ("g", "carol", "auditor"),
        ("g", "loop", "loop"),
        ("g2", "contact", "sensitive"),
        ("g2", "payment", "sensitive"),
        ("g2", "staff", "sensitive"),
    ]
    enforcer = _enforcer(_model(RBAC), rows)
    values = ["alice", "bob", "carol", "named", "loop", "dave", "erin", "contact", "payment", "staff", "*", ""]
    classes = interchangeable(enforcer, values)
    assert classes is not None
    # carol has one more link, named is in a p row, "staff" too (and has a g2 link), loop links to itself
    assert classes.classes == (("alice", "bob"), ("dave", "erin"), ("contact", "payment"))


def test_a_wrong_class_would_change_decisions() -> None:
    """The equality tests below can fail: merging a named value with an unnamed one changes a decision."""
    pack = load_pack(POLICIES)
    request = ("access", "us_staff", "contact", "read", "none")
    wrong = ValueClasses([("vendor", "us_staff")])
    assert pack.decide_uncached(request) != pack.decide_uncached(wrong.canonical(request))
    assert pack.interchangeable(["vendor", "us_staff", "advertiser"]) is not None


# ---------------------------------------------------------------- preconditions


@pytest.mark.parametrize(
    "matcher",
    [
        "keyMatch(r.obj, p.obj) && g(r.sub, p.sub)",
        "regexMatch(r.act, p.act)",
        "r.sub < p.sub",
        "r.obj in ('a', 'b')",
        "r.sub",
        "r.sub == p.sub || r.obj",
        "g(r.sub, p.sub) == True",
        "eval(p.sub) && r.obj == p.obj",
        "g(r.sub)",
        "h(r.sub, p.sub)",
        "r.sub == p.sub && (",
    ],
)
def test_matchers_outside_the_argument_take_no_shortcut(matcher: str) -> None:
    enforcer = _enforcer(_model("r.sub == p.sub"), [("p", "1", "a", "b", "c", "allow")])
    enforcer.model["m"]["m"].value = casbin.util.escape_assertion(matcher)
    assert interchangeable(enforcer, ["x", "y"]) is None


def test_role_managers_with_pattern_or_domain_matching_take_no_shortcut() -> None:
    rows = [("p", "1", "alice", "data", "read", "allow"), ("g", "bob", "alice")]
    plain = _enforcer(_model(RBAC), rows)
    assert interchangeable(plain, ["x", "y"]) is not None
    patterned = _enforcer(_model(RBAC), rows)
    patterned.add_named_matching_func("g", key_match2)
    assert interchangeable(patterned, ["x", "y"]) is None
    with_domain = [rows[0], ("g", "bob", "alice", "data")]
    domains = _enforcer(_model("g(r.sub, p.sub, r.obj) && r.act == p.act", roles="g = _, _, _"), with_domain)
    assert interchangeable(domains, ["x", "y"]) is None
    disabled = _enforcer(_model(RBAC), rows)
    disabled.enable_enforce(False)
    assert interchangeable(disabled, ["x", "y"]) is None


def test_a_failing_canonical_request_is_asked_again_as_itself() -> None:
    asked: list[tuple[str, ...]] = []

    def ask(request: tuple[str, ...]) -> str:
        asked.append(request)
        raise ValueError(f"fails on {request}")

    decide = SymmetricDecisions(ValueClasses([("a", "b")]), ask)
    with pytest.raises(ValueError, match=r"fails on \('b', 'x'\)"):
        decide(("b", "x"))
    assert asked == [("a", "x"), ("b", "x")]


def test_answers_are_kept_per_canonical_request() -> None:
    decide: SymmetricDecisions[tuple[str, ...], str] = SymmetricDecisions(
        ValueClasses([("a", "b", "c")]), lambda request: "".join(request)
    )
    assert [decide(r) for r in [("a", "x"), ("b", "x"), ("c", "b"), ("b", "a")]] == ["ax", "ax", "ab", "ab"]
    assert decide.asked == 2
    plain: SymmetricDecisions[tuple[str, ...], str] = SymmetricDecisions(None, lambda request: "".join(request))
    assert plain(("b", "x")) == "bx" and plain.asked == 1


# ---------------------------------------------------------------- the shipped packs, exhaustively


def _lint_domain_requests(directory: Path) -> tuple[PolicyPack, list[tuple[str, str, str, str, str]], ValueClasses]:
    pack = load_pack(directory)
    domain = load_invariants(directory / "invariants.yaml", pack.request_fields).domain.with_value(UNDECLARED)
    classes = pack.interchangeable(domain.every_value())
    assert classes is not None and classes.classes
    return pack, list(domain.requests()), classes


@pytest.mark.parametrize("directory", [POLICIES, EU_PACK, None], ids=["policies", "eu-personal-data", "template"])
def test_every_request_of_a_shipped_pack_is_decided_as_its_canonical_request(
    directory: Path | None, tmp_path: Path
) -> None:
    pack, requests, classes = _lint_domain_requests(directory or _template(tmp_path, "basic"))
    canonical = {request: classes.canonical(request) for request in requests}
    assert len(set(canonical.values())) * 3 < len(requests)  # the shortcut saves most of the work
    decided = {key: pack.decide_uncached(key) for key in set(canonical.values())}
    for request in requests:
        assert pack.decide_uncached(request) == decided[canonical[request]], request


# ---------------------------------------------------------------- random packs (hypothesis)

VOCABULARY = ("a", "b", "grp", "top")
UNNAMED = ("u1", "u2", "u3")
FIELDS = ("sub", "obj", "act")


@st.composite
def _matchers(draw: st.DrawFn, depth: int = 0) -> str:
    if depth >= 2 or draw(st.booleans()):
        r, other = draw(st.sampled_from(FIELDS)), draw(st.sampled_from(FIELDS))
        side = draw(st.sampled_from(["r", "p"]))
        literal = draw(st.sampled_from([*VOCABULARY, "*"]))
        return draw(
            st.sampled_from(
                [
                    f"r.{r} == p.{other}",
                    f"r.{r} != p.{other}",
                    f"r.{r} == r.{other}",
                    f'{side}.{other} == "{literal}"',
                    f"g(r.{r}, p.{other})",
                    f"g2(p.{other}, r.{r})",
                    f"g(r.{r}, r.{other})",
                    f'g2(r.{r}, "{literal}")',
                    f'(p.{other} == "*" || g(r.{r}, p.{other}))',
                ]
            )
        )
    left, right = draw(_matchers(depth + 1)), draw(_matchers(depth + 1))
    return draw(st.sampled_from([f"({left} && {right})", f"({left} || {right})", f"!({left})"]))


_ROWS = st.lists(
    st.tuples(
        st.sampled_from([*VOCABULARY, "*"]),
        st.sampled_from([*VOCABULARY, "*"]),
        st.sampled_from([*VOCABULARY, "*"]),
        st.sampled_from(["allow", "deny"]),
    ),
    min_size=1,
    max_size=6,
)
_LINKS = st.lists(
    st.tuples(
        st.sampled_from(["g", "g2"]), st.sampled_from(VOCABULARY + UNNAMED), st.sampled_from(VOCABULARY + UNNAMED)
    ),
    max_size=8,
)
_EFFECTS = st.sampled_from(
    [
        "priority(p.eft) || deny",
        "some(where (p.eft == allow))",
        "!some(where (p.eft == deny))",
        "some(where (p.eft == allow)) && !some(where (p.eft == deny))",
    ]
)


def _answer(enforcer: casbin.Enforcer, request: tuple[str, ...]) -> tuple[bool, list[str]] | str:
    try:
        allowed, explain = enforcer.enforce_ex(*request)
    except Exception as exc:  # compared like answers
        return type(exc).__name__
    return bool(allowed), list(explain)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(matcher=_matchers(), rows=_ROWS, links=_LINKS, effect=_EFFECTS)
def test_random_packs_decide_every_request_as_its_canonical_request(
    matcher: str, rows: list[tuple[str, str, str, str]], links: list[tuple[str, str, str]], effect: str
) -> None:
    policy = [("p", str(n), *row) for n, row in enumerate(rows)] + [(kind, a, b) for kind, a, b in links]
    enforcer = _enforcer(_model(matcher, effect), policy)
    values = [*VOCABULARY, *UNNAMED]
    classes = interchangeable(enforcer, values)
    assert classes is not None  # every matcher drawn is one the argument covers
    canonical: dict[tuple[str, ...], tuple[bool, list[str]] | str] = {}
    for request in itertools.product(values, repeat=3):
        key = classes.canonical(request)
        expected = canonical[key] if key in canonical else canonical.setdefault(key, _answer(enforcer, key))
        assert _answer(enforcer, request) == expected, (request, classes.classes)


# ---------------------------------------------------------------- the Casbin examples corpus


def _corpus_pairs() -> Iterator[tuple[Path, Path]]:
    files = sorted(p for p in CASBIN_EXAMPLES.rglob("*") if p.suffix in (".conf", ".csv"))
    for model, policies in pair_files(files):
        for policy in policies:
            if model is not None:
                yield model, policy


@pytest.mark.skipif(not CASBIN_EXAMPLES.is_dir(), reason=f"casbin examples not found at {CASBIN_EXAMPLES}")
def test_casbin_examples_decide_every_request_as_its_canonical_request() -> None:
    shortcut, refused = set(), set()
    for model, policy in _corpus_pairs():
        try:
            enforcer = casbin.Enforcer(str(model), str(policy))
        except Exception:  # examples pycasbin itself cannot load
            continue
        sections = [enforcer.model[key] for key in ("p", "g") if key in set(enforcer.model.keys())]
        rows = [row for section in sections for assertion in section.values() for row in assertion.policy]
        named = dict.fromkeys(value for row in rows for value in row)
        values = [*list(named)[:12], "zz-unnamed-1", "zz-unnamed-2"]
        classes = interchangeable(enforcer, values)
        if classes is None:
            refused.add(model.name)
            continue
        shortcut.add(model.name)
        size = len(enforcer.model["r"]["r"].tokens)
        for request in itertools.islice(itertools.product(values, repeat=size), 4000):
            assert _answer(enforcer, request) == _answer(enforcer, classes.canonical(request)), (model, request)
    assert {"basic_model.conf", "rbac_model.conf", "priority_model.conf"} <= shortcut
    assert {"keymatch_model.conf", "abac_rule_model.conf", "rbac_with_domains_model.conf"} <= refused


# ---------------------------------------------------------------- lint and prove reports, shortcut off


def _without_shortcut(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("audit.policy.lint.interchangeable", lambda enforcer, values: None)
    monkeypatch.setattr(PolicyPack, "interchangeable", lambda self, values: None)


def _template(tmp_path: Path, name: str) -> Path:
    pack = tmp_path / name
    assert main(["policy", "init", str(pack), "--home-country", "DE"]) == EXIT_CLEAN
    return pack


def _broken_templates(tmp_path: Path) -> list[Path]:
    """Scaffolded packs (a smaller domain than the shipped pack's) with a breach and rows that never decide."""
    breach = _template(tmp_path, "breach")
    insert_before(
        breach / "policy.csv", "p, 220, access", "p, 215, access, foreign_staff, contact, read, valid, allow, C1, -"
    )
    rows = _template(tmp_path, "rows")
    csv = rows / "policy.csv"
    insert_before(csv, "g2, unclassified, sensitive", "g2, shoe_size, sensitive")
    for row in (
        "p, 260, access, foreign_staff, sensitive, read, valid, deny, C2, foreign-sensitive-access",
        "p, 261, access, foreign_staff, *, *, on_hold, deny, C1, approval-unknown",
        "p, 262, access, robot, *, *, *, deny, C1, policy-default-deny",
        "p, 263, access, vendor, contact, read, none, allow, C1, -",
        "p, 264, access, *, public_content, write, *, allow, C1, -",
    ):
        insert_before(csv, "p, 299, access", row)
    return [_template(tmp_path, "clean"), breach, rows]


def test_lint_and_prove_reports_are_those_of_pycasbin_on_every_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    packs = _broken_templates(tmp_path)
    rules = rule_commitments()
    fast = [(lint_paths([pack], rules), prove(pack)) for pack in packs]
    _without_shortcut(monkeypatch)
    slow = [(lint_paths([pack], rules), prove(pack)) for pack in packs]
    for (fast_lint, fast_proof), (slow_lint, slow_proof) in zip(fast, slow, strict=True):
        assert fast_lint == slow_lint
        assert fast_proof.diagnostics() == slow_proof.diagnostics()
        assert [(r.checked, r.counterexamples) for r in fast_proof.results] == [
            (r.checked, r.counterexamples) for r in slow_proof.results
        ]
    checks = {d.check for lint, _ in fast for d in lint.diagnostics}
    assert {"row-shadowed", "row-unreachable", "unknown-category", "unknown-role"} <= checks
    assert [proof.ok for _, proof in fast] == [True, False, False]
