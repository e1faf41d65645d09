"""``report.html``: one self-contained page an auditor who is not an engineer can read.

Rendered with Jinja2 (autoescaping on) from the signed predicate, the cases and the
findings: the verdict per commitment, inline SVG charts (:mod:`audit.report.charts`),
filterable case and finding tables, and per finding its event (segment:line), the
policy row that decided (file:line), the approvals considered and the commitment's
seed quote. No network: no CDN, no fonts, no images; a Content-Security-Policy
forbids any fetch. At most :data:`MAX_HTML_FINDINGS` findings are listed (all are
counted, and all are in ``findings.jsonl``). Nothing is verified or signed here.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from jinja2 import Environment, StrictUndefined

from audit.models import FindingT, FindingView
from audit.report.cases import Case
from audit.report.charts import monthly_bars, ranked_bars
from audit.report.statement import Predicate

MAX_HTML_FINDINGS = 2_000
TOP = 10

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Residency audit report {{ p.generated_at.isoformat() }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1200px}
table{border-collapse:collapse;width:100%;margin:1rem 0;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}.num{text-align:right}.broken{color:#b00;font-weight:bold}.kept{color:#070}
.waived{color:#a60}.muted{color:#666}code{font-size:.85rem}svg{margin:.5rem 1rem .5rem 0}
.axis{font-size:10px;fill:#555}.legend{font-size:11px;fill:#222}.charts{display:flex;flex-wrap:wrap}
input[type=search]{width:20rem;padding:.3rem}details{margin:.2rem 0}
</style></head><body>
<h1>Residency audit report</h1>
<p class="muted">Generated {{ p.generated_at.isoformat() }} by {{ p.tool['name'] }} {{ p.tool['version'] }}.</p>
<dl id="facts">
<dt>Audit period</dt><dd id="period">{{ period }}</dd>
<dt>Scope</dt><dd>log <code>{{ log_name }}</code>: {{ p.log.tree_size }} events in {{ p.log.segments }} segments,
 signatures verified; completeness <strong>{{ p.log.completeness|upper }}</strong> ({{ p.log.completeness_detail }})
 {% if import_report %}; import report <code>{{ import_report }}</code>{% endif %}</dd>
<dt>Signer</dt><dd id="signer">{{ signer }}</dd>
<dt>Approvals</dt><dd>{{ p.approvals.count }} from {{ p.approvals.source }};
 {{ 'signature-verified sealed log' if p.approvals.signature_verified else 'NOT signature-verified (plain file)' }}</dd>
<dt>Result</dt><dd>{{ p.summary.events }} events replayed; <strong>{{ p.summary.findings }}</strong> findings in
 <strong>{{ cases|length }}</strong> cases{% if waived %}; {{ waived }} waived{% endif %}</dd>
</dl>
<h2>Verdict per commitment</h2>
<table id="verdicts"><thead><tr><th>Commitment</th><th>Verdict</th><th class="num">Cases</th>
<th class="num">Events</th><th class="num">Findings</th><th>Severity</th><th>Commitment text</th><th>Source</th></tr>
</thead><tbody>
{% for v in p.verdicts %}<tr data-commitment="{{ v.id }}"><td>{{ v.id }}: {{ v.title }}</td>
<td class="{{ v.verdict.split()[0] }}">{{ v.verdict|upper }}</td><td class="num">{{ v.cases }}</td>
<td class="num">{{ v.events }}</td><td class="num">{{ v.findings }}</td>
<td>{% for s, n in v.severity.items() %}{{ n }} {{ s }} {% endfor %}</td><td>{{ v.text }}</td>
<td>{% for s in v.sources %}<code>{{ s.file }}:{{ s.line }}</code> &ldquo;{{ s.quote }}&rdquo;<br>{% endfor %}</td></tr>
{% endfor %}</tbody></table>
<h2>Charts</h2>
<div class="charts" id="charts">
<figure>{{ charts.events }}<figcaption>Events with findings per month, by commitment</figcaption></figure>
<figure>{{ charts.cases }}<figcaption>Cases opened per month, by commitment</figcaption></figure>
<figure>{{ charts.actors }}<figcaption>Top actors by findings</figcaption></figure>
<figure>{{ charts.stores }}<figcaption>Top stores by findings</figcaption></figure>
<figure>{{ charts.locations }}<figcaption>Where the actors were (country) by findings</figcaption></figure>
</div>
<h2>Cases</h2>
<p><input type="search" id="case-filter" placeholder="Filter cases (any text)" data-table="cases"></p>
<table id="cases"><thead><tr><th>Case</th><th>Commitment</th><th>Rule</th><th>Severity</th><th>Subject</th>
<th>First seen</th><th>Last seen</th><th class="num">Findings</th><th class="num">Events</th></tr></thead><tbody>
{% for c in cases %}<tr><td><code>{{ c.id }}</code></td><td>{{ c.commitment }}</td><td>{{ c.rule_id }}</td>
<td>{{ c.severity }}</td><td>{{ c.subject_kind }} <code>{{ c.subject }}</code></td>
<td>{{ c.first_seen.isoformat() }}</td><td>{{ c.last_seen.isoformat() }}</td>
<td class="num">{{ c.findings }}{% if c.waived %}
 <span class="waived">({{ c.waived }} waived)</span>{% endif %}</td><td class="num">{{ c.events }}</td></tr>
{% endfor %}</tbody></table>
<h2>Findings</h2>
<p><input type="search" id="finding-filter" placeholder="Filter findings (any text)" data-table="findings"></p>
<table id="findings"><thead><tr><th>Finding</th><th>Time</th><th>Severity</th><th>Commitment</th><th>Rule</th>
<th>Actor</th><th>Detail</th></tr></thead><tbody>
{% for f in findings %}<tr class="finding{% if f.waiver %} waived{% endif %}" id="{{ f.id }}">
<td><code>{{ f.id }}</code>{% if f.waiver %}<br><span class="waived">WAIVED ({{ f.waiver }})</span>{% endif %}</td>
<td>{{ f.time.isoformat() }}</td><td>{{ f.severity }}</td><td>{{ f.commitment }}</td><td>{{ f.rule_id }}</td>
<td>{{ f.actor_id }}</td><td><details><summary>{{ f.message }}</summary><ul>
<li>Event {{ f.event_ids|join(', ') }}{% if f.position %} at
 <code>{{ f.position.segment }}:{{ f.position.line }}</code>{% endif %}</li>
<li>Decided by {% if f.policy_row %}policy row <code>{{ f.policy_row.file }}:{{ f.policy_row.line }}</code>
 ({{ f.policy_row.fields|join(', ') }}){% else %}the default deny{% endif %}</li>
<li>Approvals considered: {{ f.approval_ids|join(', ') if f.approval_ids else 'none cited' }}</li>
<li>Commitment {{ f.commitment }}: {{ quotes.get(f.commitment, '') }}</li>
<li>Remediation: {{ f.remediation }}</li></ul></details></td></tr>
{% endfor %}</tbody></table>
{% if more %}<p id="more">... and {{ more }} more finding(s), all listed in findings.jsonl.</p>{% endif %}
<script>
document.querySelectorAll('input[type=search]').forEach(function (box) {
  box.addEventListener('input', function () {
    var needle = box.value.toLowerCase();
    document.querySelectorAll('#' + box.dataset.table + ' tbody tr').forEach(function (row) {
      row.hidden = needle !== '' && row.textContent.toLowerCase().indexOf(needle) < 0;
    });
  });
});
</script>
</body></html>
"""

_ENV = Environment(autoescape=True, undefined=StrictUndefined, keep_trailing_newline=True)
_COMPILED = _ENV.from_string(_TEMPLATE)


def _charts(cases: Sequence[Case], all_counts: dict[str, Any]) -> dict[str, Any]:
    by_month: dict[str, Counter[str]] = defaultdict(Counter)
    for case in cases:
        by_month[case.commitment][case.first_seen.strftime("%Y-%m")] += 1
    months = sorted({m for counts in (*all_counts["months"].values(), *by_month.values()) for m in counts})
    return {
        "events": monthly_bars(dict(sorted(all_counts["months"].items())), months, "Events per month"),
        "cases": monthly_bars(dict(sorted(by_month.items())), months, "Cases per month"),
        "actors": ranked_bars(all_counts["actors"].most_common(TOP), "Top actors"),
        "stores": ranked_bars(all_counts["stores"].most_common(TOP), "Top stores"),
        "locations": ranked_bars(all_counts["locations"].most_common(TOP), "Locations of access"),
    }


def render_html(pred: Predicate, findings: Iterable[FindingView], cases: Sequence[Case]) -> str:
    """The whole page; every finding is counted, the first :data:`MAX_HTML_FINDINGS` listed."""
    page = PageTally()
    for _ in page.counting(findings):
        pass
    return page.render(pred, cases)


class PageTally:
    """What the page shows of the findings, gathered as they pass (in ``findings.jsonl`` order).

    :meth:`counting` is one pass another reader can share; :meth:`render` writes the
    page once the pass is done. ``listed`` holds the first :data:`MAX_HTML_FINDINGS`.
    """

    def __init__(self) -> None:
        self.listed: list[FindingView] = []
        self.total = self.waived = 0
        self._counts: dict[str, Any] = {"actors": Counter(), "stores": Counter(), "locations": Counter()}
        self._months: dict[str, Counter[str]] = defaultdict(Counter)

    def counting(self, findings: Iterable[FindingT]) -> Iterator[FindingT]:
        """``findings`` unchanged, each counted as it passes."""
        listed, months = self.listed, self._months
        actors, stores, locations = self._counts["actors"], self._counts["stores"], self._counts["locations"]
        last: dict[str, tuple[str, ...]] = {}
        month_names: dict[tuple[int, int], str] = {}  # strftime once per month, not once per event
        for f in findings:
            self.total += 1
            self.waived += f.waiver is not None
            if len(listed) < MAX_HTML_FINDINGS:
                listed.append(f)
            actors[f.actor_id] += 1
            stores[f.store or "unknown"] += 1
            locations[f.actor_country or "unknown"] += 1
            if last.get(f.commitment) != f.event_ids:  # findings of one event are adjacent
                time = f.time
                month = month_names.get((time.year, time.month))
                if month is None:
                    month = month_names[time.year, time.month] = time.strftime("%Y-%m")
                months[f.commitment][month] += 1
                last[f.commitment] = f.event_ids
            yield f

    def render(self, pred: Predicate, cases: Sequence[Case]) -> str:
        """The whole page, from the findings counted so far."""
        return _render(pred, cases, self.listed, self.total, self.waived, {**self._counts, "months": self._months})


def _render(
    pred: Predicate, cases: Sequence[Case], listed: list[FindingView], total: int, waived: int, counts: dict[str, Any]
) -> str:
    period = pred.period
    signer = pred.signer
    log_name, _, import_report = (pred.log.origin or "unnamed").partition(";import-report=")
    quotes = {
        v.id: v.text + "".join(f" \u2014 {s.file}:{s.line} \u201c{s.quote}\u201d" for s in v.sources)
        for v in pred.verdicts
    } or dict(pred.commitments)
    return _COMPILED.render(
        p=pred,
        period=f"{period.first_event.isoformat()} to {period.last_event.isoformat()}"
        if period and period.first_event and period.last_event
        else "no events",
        signer=f"{signer.label or 'unlabelled key'} (key {signer.key_id})" if signer else "see the envelope",
        log_name=log_name,
        import_report=import_report,
        cases=cases,
        findings=listed,
        more=total - len(listed),
        waived=waived,
        quotes=quotes,
        charts=_charts(cases, counts),
    )
