"""``policy diff``: requests whose decision differs between two versions of a pack.

Each side is a pack directory or a git revision of one, written ``REV:PATH``
(``HEAD~1:policies``), which is exported with ``git archive`` (fixed argv, no
shell) into a temporary directory. Both packs decide every request of the union of
their declared domains (``invariants.yaml``); a request denied before and allowed
now is *new access* (the "no new access" check), one allowed before and denied now
is *access removed*, and a request denied by another rule or commitment is a
*reason change*.

It does not judge whether a change is intended; the CLI fails on new access unless
told it is.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from audit.errors import InputError, PolicyError
from audit.policy.budget import UNLIMITED, Budget
from audit.policy.diagnostics import Diagnostic, clean, diagnostic, quote
from audit.policy.domain import (
    INVARIANTS_FILE,
    Domain,
    candidates,
    check_domain_size,
    load_invariants,
    matcher_is_simple,
    reach,
)
from audit.policy.load import load_pack
from audit.policy.pack import Decision, PolicyPack, Request
from audit.policy.prove import describe_decision, describe_request

ChangeKind = Literal["new-access", "access-removed", "reason-changed"]
GIT_TIMEOUT = 60


@dataclass(frozen=True)
class Change:
    """One request decided differently by the new pack."""

    request: Request
    old: Decision
    new: Decision
    kind: ChangeKind


@dataclass(frozen=True)
class DiffReport:
    """Every change between two packs over their shared domain."""

    old_label: str
    new_label: str
    old: PolicyPack
    new: PolicyPack
    compared: int
    changes: tuple[Change, ...]
    renames: tuple[tuple[str, str], ...] = ()
    """``(directory, label)``: files of a git export are shown under their ``REV:PATH`` label."""

    @property
    def new_access(self) -> tuple[Change, ...]:
        """Requests the new pack allows and the old one denied."""
        return tuple(change for change in self.changes if change.kind == "new-access")

    def diagnostics(self) -> list[Diagnostic]:
        """One diagnostic per kind of change and deciding row (the new pack's, else the old one's).

        The message gives how many requests changed that way and the first of them.
        """
        groups: dict[tuple[ChangeKind, str | None, int | None], list[Change]] = {}
        for change in self.changes:
            row = change.new.row or change.old.row
            key = (change.kind, row.file if row else None, row.line if row else None)
            groups.setdefault(key, []).append(change)
        found = []
        for (kind, file, line), changes in groups.items():
            first = changes[0]
            more = f" (and {len(changes) - 1} more request(s) changed the same way)" if len(changes) > 1 else ""
            message = (
                f"{describe_request(first.request, self.new.request_fields)}: was {describe_decision(first.old)} "
                f"in {self.old_label}, is {describe_decision(first.new)} in {self.new_label}{more}"
            )
            found.append(diagnostic(kind, message, self.shown(file) if file else None, line))
        return found

    def shown(self, file: str) -> str:
        """``file`` as the user named it: a git export's temporary directory becomes its ``REV:PATH``."""
        for directory, label in self.renames:
            if file.startswith(directory + "/"):
                return label.rstrip("/") + file[len(directory) :]
        return file


def _git_export(spec: str, repo: Path, into: Path) -> Path:
    revision, _, subpath = spec.partition(":")
    if not revision or revision.startswith("-"):
        raise InputError(f"{quote(spec)} is not REV:PATH (a git revision and a directory in it)")
    argv = ["git", "-C", str(repo), "archive", "--format=tar", revision, "--", subpath or "."]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=GIT_TIMEOUT, check=False)  # noqa: S603
    except (OSError, subprocess.SubprocessError) as exc:
        raise InputError(f"cannot run git: {exc}", path=repo) from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        last = clean(message[-1], 200) if message else "failed"
        raise InputError(f"git archive {revision} {subpath}: {last}", path=repo)
    try:
        with tarfile.open(fileobj=io.BytesIO(done.stdout)) as archive:
            archive.extractall(into, filter="data")  # refuses links out of the export and special files
    except (tarfile.TarError, OSError) as exc:
        reason = f"git archive {revision} {subpath}: cannot export: {clean(str(exc), 200)}"
        raise PolicyError(reason, path=repo) from None
    target = into / subpath if subpath else into
    if not target.is_dir():
        raise InputError(f"{quote(subpath)} is not a directory at revision {revision}", path=repo)
    return target


@contextmanager
def materialize(spec: str, repo: Path) -> Iterator[Path]:
    """A directory holding the pack ``spec`` names: the directory itself, or a git export.

    ``spec`` is a directory when one exists at that path; otherwise ``REV:PATH``
    with ``PATH`` relative to the top of the repository ``repo`` is in.
    """
    if Path(spec).is_dir():
        yield Path(spec)
        return
    if ":" not in spec:
        raise InputError("no such directory, and not REV:PATH (e.g. HEAD~1:policies)", path=spec)
    with tempfile.TemporaryDirectory(prefix="policy-diff-") as tmp:
        yield _git_export(spec, repo, Path(tmp))


def _domain(old: PolicyPack, new: PolicyPack) -> Domain:
    if old.request_fields != new.request_fields:
        raise InputError(
            f"request fields differ: {', '.join(old.request_fields)} -> {', '.join(new.request_fields)}; "
            "the versions decide different questions",
            path=new.files[0],
        )
    domains = [
        load_invariants(pack.directory / INVARIANTS_FILE, pack.request_fields, pack.directory).domain
        for pack in (old, new)
        if (pack.directory / INVARIANTS_FILE).is_file()
    ]
    if not domains:
        raise InputError(f"neither version declares a request domain ({INVARIANTS_FILE})", path=new.directory)
    union = domains[0].union(domains[-1]) if len(domains) == 2 else domains[0]
    check_domain_size(union, new.directory / INVARIANTS_FILE)
    return union


def _kind(old: Decision, new: Decision) -> ChangeKind | None:
    if old.allowed != new.allowed:
        return "new-access" if new.allowed else "access-removed"
    if not new.allowed and (old.rule_id, old.commitment) != (new.rule_id, new.commitment):
        return "reason-changed"
    return None


def _rows(pack: PolicyPack, ptype_is_p: bool) -> set[tuple[str, tuple[str, ...]]]:
    return {(row.ptype, row.fields) for row in pack.rows if (row.ptype == "p") == ptype_is_p}


def _requests(old: PolicyPack, new: PolicyPack, domain: Domain) -> Iterator[Request]:
    """The requests whose decision can differ: all of the domain, or only those a changed row may match.

    When both packs have the same matcher (of the simple kind), the same grouping
    rows and the same p rows but for some, a request no changed row matches has
    the same matching rows in both, so the same first match.
    """
    same_model = old.matcher == new.matcher and matcher_is_simple(new.matcher)
    if not same_model or _rows(old, False) != _rows(new, False) or old.definitions != new.definitions:
        yield from domain.requests()
        return
    changed = _rows(old, True) ^ _rows(new, True)
    groups = reach([row for row in new.rows if row.ptype != "p"])
    seen: set[Request] = set()
    for row in (row for pack in (old, new) for row in pack.rows if (row.ptype, row.fields) in changed):
        for request in domain.requests(candidates(domain, row, new.definitions["p"], groups)):
            if request not in seen:
                seen.add(request)
                yield request


def diff_packs(
    old_dir: Path, new_dir: Path, *, old_label: str, new_label: str, budget: Budget = UNLIMITED
) -> DiffReport:
    """Decide the shared domain with both packs and list every request decided differently.

    ``compared`` counts the requests actually decided (see :func:`_requests`);
    ``budget`` is checked between enforcer calls.
    """
    old, new = load_pack(old_dir), load_pack(new_dir)
    compared = 0
    changes: list[Change] = []
    for request in _requests(old, new, _domain(old, new)):
        budget.check(new_label)
        compared += 1
        before, after = old.decide(request), new.decide(request)
        kind = _kind(before, after)
        if kind is not None:
            changes.append(Change(request, before, after, kind))
    return DiffReport(old_label, new_label, old, new, compared, tuple(changes))


def diff(old_spec: str, new_spec: str, repo: Path, *, budget: Budget = UNLIMITED) -> DiffReport:
    """:func:`diff_packs` on two directories or ``REV:PATH`` git revisions."""
    with materialize(old_spec, repo) as old_dir, materialize(new_spec, repo) as new_dir:
        report = diff_packs(old_dir, new_dir, old_label=old_spec, new_label=new_spec, budget=budget)
    renames = tuple((str(d), spec) for d, spec in ((old_dir, old_spec), (new_dir, new_spec)) if str(d) != spec)
    return DiffReport(
        report.old_label, report.new_label, report.old, report.new, report.compared, report.changes, renames
    )
