"""One ``$name`` template syntax for every pack message, replay's and residency's (audit.policy.wording).

Replay's binder used to parse templates by hand (a lone ``$`` was text) and
residency's with ``string.Template`` (a lone ``$`` was refused): both now check and
fill with :class:`PackTemplate`, and a ``$`` that starts no placeholder is refused in
either scope, at the file and line of the template.
"""

from __future__ import annotations

import re
import shutil
from datetime import date
from pathlib import Path

import pytest

from audit.cli.app import main
from audit.errors import EXIT_INPUT, InputError
from audit.policy import load_pack, load_policy
from audit.policy.load import load_rules_file
from audit.policy.wording import MAX_TEMPLATE_CHARS, PackTemplate, TemplateError, fill_home
from audit.replay.engine import rule_books
from audit.replay.rules import load_rules, rule_book
from audit.residency.scanner import settings_from_policy
from audit.signing.keys import PASSPHRASE_ENV
from tests.conftest import ACCESS_LOG, APPROVALS_LOG, KEYS, POLICIES, REPO
from tests.test_rules import _ctx

EU_PACK = REPO / "packs" / "eu-personal-data"
NAMES = ("who", "what", "home")


def test_names_are_filled_by_name_and_values_are_text() -> None:
    template = PackTemplate("$who read ${what}s in {home} ($$5, 100%) $who.", NAMES)
    assert template.names == ("who", "what")
    values = {"who": "a {0} $what", "what": "contact {home}"}
    assert template.fill(values) == "a {0} $what read contact {home}s in {home} ($5, 100%) a {0} $what."


@pytest.mark.parametrize(
    ("text", "at"),
    [
        ("costs $", "at character 7: '$'"),
        ("costs $5", "at character 7: '$5'"),
        ("$ who", "at character 1: '$ who'"),
        ("${who", "at character 1: '${who'"),
        ("${ who }", "at character 1: '${ who }'"),
        ("$who and $-", "at character 10: '$-'"),
    ],
    ids=["trailing", "digit", "space", "unclosed-brace", "spaced-brace", "after-a-name"],
)
def test_a_dollar_that_starts_no_placeholder_is_refused(text: str, at: str) -> None:
    with pytest.raises(TemplateError) as caught:
        PackTemplate(text, NAMES)
    assert str(caught.value) == f"a $ must start $name, ${{name}} or $$ (for a dollar sign), {at}"


@pytest.mark.parametrize("text", ["$wat", "${__class__}", "$Who", "$who_", "${what.__class__}"])
def test_names_the_scope_does_not_fill_are_refused(text: str) -> None:
    with pytest.raises(TemplateError, match=r"unknown placeholder \$|a \$ must start"):
        PackTemplate(text, NAMES)


def test_unknown_placeholder_lists_the_known_names() -> None:
    with pytest.raises(TemplateError) as caught:
        PackTemplate("$wat", NAMES)
    assert str(caught.value) == "unknown placeholder $wat (known: home, what, who)"


def test_templates_are_bounded() -> None:
    assert PackTemplate("$" * MAX_TEMPLATE_CHARS, NAMES).fill({}) == "$" * (MAX_TEMPLATE_CHARS // 2)
    with pytest.raises(TemplateError, match=f"longer than {MAX_TEMPLATE_CHARS} characters"):
        PackTemplate("x" * (MAX_TEMPLATE_CHARS + 1), NAMES)


def test_engine_texts_take_home_and_nothing_else() -> None:
    assert fill_home("outside $home; in ${home}.", "the EU/EEA") == "outside the EU/EEA; in the EU/EEA."
    assert fill_home("no placeholder", "X") == "no placeholder"
    with pytest.raises(TemplateError, match=r"unknown placeholder \$who"):
        fill_home("$who outside $home", "X")


# ---------------------------------------------------------------- both scopes, at rules.yaml:line


def _pack_with(tmp_path: Path, source: Path, old: str, new: str) -> tuple[Path, int]:
    """A copy of a pack with ``old`` replaced by ``new`` in rules.yaml, and the line it is on."""
    pack = tmp_path / "pack"
    shutil.copytree(source, pack)
    rules = pack / "rules.yaml"
    text = rules.read_text()
    assert text.count(old) == 1, old
    text = text.replace(old, new)
    rules.write_text(text)
    return pack, next(n for n, line in enumerate(text.splitlines(), 1) if new in line)


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        (
            '"$who $what; store class $detail is outside OCI US"',
            '"$who $what; store class $detail costs $5"',
            "rule 'store-outside-oci-us': message: a $ must start $name, ${name} or $$ (for a dollar sign), "
            "at character 39: '$5'",
        ),
        (
            '"$who $what after the Singapore backup deletion deadline ($detail)"',
            '"$who $what after the backup deadline (${detail)"',
            "rule 'singapore-backup-after-deadline': message: a $ must start $name, ${name} or $$ (for a dollar sign), "
            "at character 39: '${detail)'",
        ),
        (
            '"$who $what for $related, who is outside the US ($detail)"',
            '"$who $what for $relatd ($detail)"',
            "rule 'proxy-access': message: unknown placeholder $relatd (known: action, actor, approval, ",
        ),
        ("kind: proxy-access", "kind: proxy-acces", "rule 'proxy-access': kind 'proxy-acces' is not an engine rule"),
    ],
    ids=["lone-dollar", "unclosed-brace", "unknown-name", "unknown-kind"],
)
def test_replay_rules_that_do_not_bind_are_refused_at_their_line(
    tmp_path: Path, old: str, new: str, reason: str
) -> None:
    pack, line = _pack_with(tmp_path, POLICIES, old, new)
    with pytest.raises(InputError) as caught:
        rule_books(load_policy(pack), load_rules())
    assert (caught.value.path, caught.value.line) == (str(pack / "rules.yaml"), line)
    assert caught.value.reason.startswith(reason)


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        (
            '"$store holds US user data outside Oracle Cloud Infrastructure"',
            '"$store holds US user data worth $"',
            "rule 'store-not-on-oci': message: a $ must start $name, ${name} or $$ (for a dollar sign), "
            "at character 33: '$'",
        ),
        (
            'copy_message: "$copy_kind of $store is still made to Singapore ($target) on $as_of (deadline $deadline)"',
            'copy_message: "$copy_kind of $store on $as_of (deadline ${deadline})${"',
            "rule 'singapore-after-deadline': copy_message: a $ must start $name, ${name} or $$ (for a dollar sign), "
            "at character 54: '${'",
        ),
        (
            '"$store holds US user data on OCI outside the US"',
            '"$store holds US user data in $country"',
            "rule 'oci-outside-us': message: unknown placeholder $country (known: as_of, copy_kind, deadline, ",
        ),
    ],
    ids=["lone-dollar", "copy-message-brace", "unknown-name"],
)
def test_residency_rules_that_do_not_bind_are_refused_at_their_line(
    tmp_path: Path, old: str, new: str, reason: str
) -> None:
    pack, line = _pack_with(tmp_path, POLICIES, old, new)
    with pytest.raises(InputError) as caught:
        settings_from_policy(load_policy(pack), as_of=date(2022, 6, 30))
    assert (caught.value.path, caught.value.line) == (str(pack / "rules.yaml"), line)
    assert caught.value.reason.startswith(reason)


def test_a_dollar_sign_is_written_twice_in_replay(tmp_path: Path) -> None:
    pack, _ = _pack_with(
        tmp_path, EU_PACK, "without a transfer basis ($detail)", "without a transfer basis ($detail, fine: $$20M)"
    )
    rule = rule_book(load_pack(pack), load_rules())["transfer-without-legal-basis"]
    assert rule.explain(_ctx()).endswith("without a transfer basis (detail {x}, fine: $20M)")


def test_rules_know_the_lines_of_their_keys() -> None:
    rules = {(r.scope, r.id): r for r in load_rules_file(POLICIES / "rules.yaml")}
    lines = (POLICIES / "rules.yaml").read_text().splitlines()
    rule = rules["residency", "singapore-after-deadline"]
    entry, copy_message = rule.line(), rule.line("copy_message")
    assert entry is not None and copy_message is not None
    assert lines[entry - 1].strip() == "- id: singapore-after-deadline"
    assert lines[copy_message - 1].strip().startswith("copy_message: ")
    assert rule.line("no-such-key") == entry  # a key the entry does not have: the entry's line
    assert rule.model_copy(update={"message": "x"}).line("copy_message") == copy_message


def test_shipped_templates_all_check() -> None:
    """Every message of both shipped packs binds (no shipped template relied on a lone ``$``)."""
    for directory in (POLICIES, EU_PACK):
        for rule in load_rules_file(directory / "rules.yaml"):
            for text in (rule.message, rule.copy_message):
                assert text is None or not re.search(r"\$(?![A-Za-z_{$])", text), (rule.id, text)
        rule_book(load_pack(directory), load_rules())


@pytest.mark.parametrize("text", ["$approval", " ${related}$approval ", "$related\t"])
def test_a_template_that_can_fill_to_blank_text_is_refused(text: str) -> None:
    with pytest.raises(TemplateError, match="can fill to blank text"):
        PackTemplate(text, (*NAMES, "approval", "related"), may_be_empty=("approval", "related"))


@pytest.mark.parametrize("text", ["$who", "by $approval", "$$", "$approval ($who)"])
def test_a_template_with_words_or_a_name_that_always_has_a_value_is_accepted(text: str) -> None:
    PackTemplate(text, (*NAMES, "approval"), may_be_empty=("approval",))


def test_replay_of_a_pack_whose_message_can_be_blank_exits_2_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: ``message: "$approval"`` filled to an empty message for a finding
    without an approval, and the Finding model refused it mid-replay: exit 4, "a bug
    in residency-audit". The template is now refused when the pack's rules are bound."""
    old = '"$who $what; location $location is not proof of US presence"'
    pack, line = _pack_with(tmp_path, POLICIES, old, '"$approval"')
    monkeypatch.setenv(PASSPHRASE_ENV, "residency-audit-fixtures-TEST-ONLY")
    out = tmp_path / "report"
    args = ["replay", str(ACCESS_LOG), "--keyring", str(KEYS / "keyring.json"), "--approvals", str(APPROVALS_LOG)]
    code = main([*args, "--policy", str(pack), "--report-key", str(KEYS / "auditor.key"), "--out", str(out)])
    assert code == EXIT_INPUT
    err = capsys.readouterr().err.strip()
    assert err.startswith(
        f"error: {pack / 'rules.yaml'}:{line}: rule 'actor-location-unknown': message: can fill to blank"
    )
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert not out.exists()
