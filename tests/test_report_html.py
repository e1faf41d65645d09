"""``report.html``: self-contained, small, and readable in a real browser (headless Chromium).

The browser test needs Debian's ``chromium`` (``.ci/run`` installs it when missing);
without it the test is skipped locally, never silently in CI (``CI`` set: it fails).
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from audit.pipeline import ReplayOutcome
from audit.report.cases import iter_cases
from audit.report.html import render_html
from audit.report.publish import CASES_FILE, HTML_FILE
from audit.report.statement import subject_digests
from tests.report_helpers import fixture_report

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> ReplayOutcome:
    return fixture_report(tmp_path_factory.mktemp("html") / "report")


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def _run_chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_html_is_a_signed_self_contained_page(outcome: ReplayOutcome) -> None:
    page = (outcome.outdir / HTML_FILE).read_text()
    assert HTML_FILE in subject_digests(outcome.statement)
    assert len(page.encode()) < 2 * 1024 * 1024
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "no network resources"
    assert "default-src 'none'" in page
    for verdict in outcome.statement.predicate.verdicts:
        assert f'data-commitment="{verdict.id}"' in page
    assert page.count('class="finding') == len(outcome.findings)


def test_html_escapes_log_content(outcome: ReplayOutcome) -> None:
    finding = outcome.findings[0].model_copy(update={"actor_id": "<script>alert(1)</script>"})
    page = render_html(outcome.statement.predicate, [finding], [])
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page


@pytest.mark.slow
def test_html_renders_in_headless_chromium(outcome: ReplayOutcome, tmp_path: Path) -> None:
    url = (outcome.outdir / HTML_FILE).as_uri()
    dom = _run_chromium(["--dump-dom", url], tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    cases = list(iter_cases(outcome.outdir / CASES_FILE))
    assert "Verdict per commitment" in html
    assert html.count("<svg") >= 5
    assert len(re.findall(r'<tr class="finding', html)) == len(outcome.findings)
    assert len(re.findall(r"<tr><td><code>K-", html)) == len(cases)
    shot = tmp_path / "report.png"
    run = _run_chromium(["--window-size=1280,2000", f"--screenshot={shot}", url], tmp_path / "profile-shot")
    assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 2000)
    assert len(data) > 20_000  # a page with tables and charts, not a blank one
