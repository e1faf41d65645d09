"""Country codes are exact ASCII ISO 3166-1 codes: no Unicode case folding turns a foreign actor into US staff."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from audit.cli.app import main
from audit.errors import EXIT_INPUT
from audit.models import AccessEvent, Actor, country_or_region
from audit.policy import load_policy
from audit.replay.facts import FOREIGN_STAFF, UNLOCATED, location_class
from tests.conftest import FIXTURES, KEYS, POLICIES

US_STAFF = "us_staff"  # the US pack's home staff class (pack.yaml home.staff_class)

LONG_S = "u\u017f"  # LATIN SMALL LETTER LONG S: LONG_S.upper() == "US" in Python


def test_long_s_spoof_is_not_us_staff_in_replay() -> None:
    pack_config = load_policy(POLICIES).packs[0].config
    assert LONG_S.upper() == "US"  # the trap
    assert location_class(LONG_S, pack_config) == UNLOCATED
    assert location_class("US", pack_config) == US_STAFF
    assert location_class("us", pack_config) == US_STAFF  # ASCII folding is harmless
    assert location_class("\u0455\u0433", pack_config) == UNLOCATED  # Cyrillic look-alikes are not folded either
    assert location_class("CN", pack_config) == FOREIGN_STAFF


@pytest.mark.parametrize("code", [LONG_S, "us", "U S", "ZZ", "U", "ÜS", "NAMERICAREGION"])
def test_long_s_spoof_and_unknown_codes_are_refused_by_the_record_model(code: str) -> None:
    with pytest.raises(ValueError, match="ISO 3166"):
        country_or_region(code)
    with pytest.raises(ValidationError):
        Actor(id="x", office_country=code)


@pytest.mark.parametrize("code", ["US", "CN", "SG", "PH", "EU", "NAM", "APAC", "GLOBAL"])
def test_real_country_and_region_codes_are_accepted(code: str) -> None:
    assert Actor(id="x", physical_country=code).physical_country == code


def test_long_s_spoof_is_an_input_error_at_seal(
    tmp_path: Path, fixture_passphrase: None, capsys: pytest.CaptureFixture[str]
) -> None:
    record = json.loads((FIXTURES / "events.jsonl").read_text().splitlines()[0])
    record["actor"]["physical_country"] = LONG_S
    AccessEvent.model_validate({**record, "actor": {**record["actor"], "physical_country": "US"}})  # else valid
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(record, ensure_ascii=False) + "\n")
    code = main(["log", "seal", str(events), "--key", str(KEYS / "log-producer.key"), "--out", str(tmp_path / "log")])
    assert code == EXIT_INPUT
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {events}:1: actor.physical_country") and "ISO 3166" in err
    assert not (tmp_path / "log").exists()
