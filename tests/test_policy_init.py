"""``policy init``: every template scaffolds a pack that passes lint, test and prove as generated."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.cli.app import main
from audit.commitments import load_commitments, source_file
from audit.errors import EXIT_CLEAN, EXIT_INPUT
from audit.policy import load_pack
from audit.policy.scaffold import template_names


def _init(directory: Path, *args: str) -> int:
    return main(["policy", "init", str(directory), *args])


def _passes_all_three(pack: Path) -> None:
    assert main(["policy", "lint", str(pack)]) == EXIT_CLEAN
    assert main(["policy", "test", str(pack), "--min-coverage", "100"]) == EXIT_CLEAN
    assert main(["policy", "prove", str(pack)]) == EXIT_CLEAN


def test_basic_template_passes_lint_test_and_prove(tmp_path: Path) -> None:
    pack = tmp_path / "acme-eu"
    assert _init(pack, "--home-country", "de", "--home-country", "FR", "--home-name", 'the "EU"') == EXIT_CLEAN
    _passes_all_three(pack)
    loaded = load_pack(pack)
    assert loaded.config.name == "acme-eu"
    assert loaded.config.home.countries == ("DE", "FR")
    assert loaded.config.home.name == 'the "EU"'
    for commitment in load_commitments(pack / "commitments.yaml").values():
        for source in commitment.sources:  # the scaffold's citations hold, as the shipped packs' do
            lines = source_file(pack, source).read_text(encoding="utf-8").splitlines()
            assert source.quote in lines[source.line - 1], (commitment.id, source)


@pytest.mark.parametrize("template", [t for t in template_names() if t != "basic"])
def test_shipped_pack_templates_pass_and_take_the_new_name(tmp_path: Path, template: str) -> None:
    pack = tmp_path / "copy"
    assert _init(pack, "--template", template, "--name", "our-pack") == EXIT_CLEAN
    _passes_all_three(pack)
    assert load_pack(pack).config.name == "our-pack"


def test_shipped_packs_are_templates_by_their_pack_name() -> None:
    assert {"basic", "tiktok-us-data-2022", "eu-personal-data-2024"} <= set(template_names())


def test_help_examples_name_existing_templates() -> None:
    from audit.cli.conventions import EXAMPLES

    for example in EXAMPLES["policy init"]:
        words = example.split()
        assert words[words.index("--template") + 1] in template_names(), example


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ((), "template basic needs --home-country"),
        (("--home-country", "USA"), "template basic needs --home-country"),
        (("--template", "nope", "--home-country", "DE"), "no template 'nope'"),
        (("--name", "../x", "--home-country", "DE"), "pack name '../x'"),
        (("--home-country", "DE", "--home-name", "a\nb"), "--home-name must be"),
    ],
)
def test_bad_init_options_are_input_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], reason: str
) -> None:
    assert _init(tmp_path / "p", *args) == EXIT_INPUT
    err = capsys.readouterr().err
    assert reason in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "p").exists()


def test_init_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pack = tmp_path / "p"
    pack.mkdir()
    (pack / "policy.csv").write_text("mine\n")
    assert _init(pack, "--home-country", "DE") == EXIT_INPUT
    assert "never overwrites" in capsys.readouterr().err
    assert (pack / "policy.csv").read_text() == "mine\n"


def test_list_templates(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert _init(tmp_path / "unused", "--list-templates") == EXIT_CLEAN
    assert capsys.readouterr().out.split() == list(template_names())
    assert not (tmp_path / "unused").exists()
