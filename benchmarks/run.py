"""Throughput benchmark: verify + replay against baselines measured in the same run.

    make bench [EVENTS=N] [REPEAT=R]   # or: python benchmarks/run.py --events N --repeat R

Builds a deterministic synthetic log by cycling the seed-scenario events (fresh ids),
seals it with a TEST-ONLY key, then measures, in one run:

- ``floor``: the fastest of orjson parse, msgspec typed decode and msgspec decode of 128
  lines per call (as the replay decodes), plus the RFC 9162
  leaf hash, of every line (no verification, no replay)
- ``machine_2``: the workers' per-segment work (read, check, decode, judge) in one,
  then split over two, already-running processes with nothing shared - the speed-up
  this machine gives that work right now, the ceiling for ``--workers 2``
- ``events``: ``replay`` end to end in one process - log verification (hashes, roots,
  signatures), replay, findings streamed to ``findings.jsonl``, signed report
- ``workers_2``: the same with ``--workers 2`` (its findings file must be identical; its
  children forked or spawned as a CLI run's would be, ``workers_start_method`` says which)
- ``naive``: one Ed25519 verification and one uncached pycasbin enforce per event,
  measured on a sample
- ``heavy``: ``replay`` of a second log in which half the events have findings
- ``import``: ``import cloudtrail`` of synthetic CloudTrail files (gzip, ``{"Records": [...]}``,
  cycling the CloudTrail fixture records with fresh ids) into a sealed log, against its
  floor: gunzip, orjson parse, sorted orjson dump and leaf hash of every record
- ``startup``: the best of several ``residency-audit --help`` runs (wall clock), with
  bytecode caches as an installed package has them; also ``log verify --help``, and
  ``--help`` compiling from source (no bytecode cache)
- ``policy_lint``/``policy_test``/``policy_prove``: each on the shipped pack, timed
  inside a fresh interpreter after its imports (the work, without start-up)

The timed measurements except start-up and policy are repeated ``--repeat`` times, interleaved, and the
fastest of each is kept, so a slow moment of a shared machine hurts all of them
alike. Prints one JSON line with the ratios: compare those across runs, not the
absolute numbers.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from multiprocessing import get_context
from multiprocessing.pool import Pool
from pathlib import Path

import casbin
import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from audit.canonical import canonical_bytes, is_canonical  # noqa: E402
from audit.importers.enrichment import load_enrichment  # noqa: E402
from audit.importers.run import SOURCES, run_import  # noqa: E402
from audit.logs.approvals import load_approvals  # noqa: E402
from audit.logs.merkle import leaf_hash  # noqa: E402
from audit.logs.record_types import ACCESS_RECORD_TYPE  # noqa: E402
from audit.logs.verify import LogVerifier  # noqa: E402
from audit.logs.writer import seal  # noqa: E402
from audit.models import AccessEvent  # noqa: E402
from audit.pipeline import replay  # noqa: E402
from audit.policy import load_policy  # noqa: E402
from audit.records import sha256_file  # noqa: E402
from audit.replay.facts import actor_class, base_facts  # noqa: E402
from audit.replay.fast import FastReplay, decode, decode_chunk  # noqa: E402
from audit.replay.options import Execution  # noqa: E402
from audit.replay.parallel import SegmentJob, WorkerContext, judge_segment, policy_digests, start_method  # noqa: E402
from audit.replay.tuning import fewer_collections  # noqa: E402
from audit.report.publish import FINDINGS_FILE  # noqa: E402
from audit.signing.keys import (  # noqa: E402
    Keyring,
    KeyringEntry,
    SigningKey,
    public_key_pem,
    signing_key_from_seed,
)

FIXTURES = REPO / "fixtures"
POLICY = REPO / "policies"


_ID = "bench-id-placeholder"


def _fixture_events(heavy: bool) -> list[bytes]:
    """The fixture events in order; with ``heavy``, those with findings alternating with the rest (half each)."""
    lines = (FIXTURES / "events.jsonl").read_bytes().splitlines()
    if not heavy:
        return lines
    flagged = {f["event_id"] for f in json.loads((FIXTURES / "expected_findings.json").read_text())["findings"]}
    bad = [line for line in lines if orjson.loads(line)["event_id"] in flagged]
    good = [line for line in lines if orjson.loads(line)["event_id"] not in flagged]
    return [line for pair in zip(bad * (len(good) // len(bad) + 1), good, strict=False) for line in pair]


def synthetic(n: int, *, heavy: bool = False) -> Iterator[bytes]:
    """``n`` canonical events cycling the fixture events, each with a fresh id.

    Each fixture event is canonicalised once with a placeholder id; an ASCII id
    needs no escaping and keys sort by name, so substituting it keeps the bytes
    canonical (checked on the first cycle). With ``heavy``, every other event is one
    the fixtures expect a finding for.
    """
    base = []
    for line in _fixture_events(heavy):
        record = orjson.loads(line)
        record["event_id"] = _ID
        base.append(canonical_bytes(record).split(_ID.encode()))
    for i in range(n):
        head, tail = base[i % len(base)]
        line = b"%sbench-%09d%s" % (head, i, tail)
        if i < len(base) and not is_canonical(line):
            raise SystemExit(f"synthetic event {i} is not canonical")
        yield line


_PARSERS = {"orjson": orjson.loads, "msgspec": decode}
FLOOR_CHUNK = 128
"""Lines per ``decode_lines`` call of the chunked floor: what the replay's own loop takes at once."""


def floor_pass(segments: list[Path], parser: str) -> int:
    """Parse and leaf-hash every line of ``segments``; the number of lines.

    ``msgspec-chunked`` decodes :data:`FLOOR_CHUNK` lines per call (``decode_lines``), as
    the replay does (ADR 0016 amendment); the others one line per call.
    """
    if parser == "msgspec-chunked":
        return _chunked_floor_pass(segments)
    parse, count = _PARSERS[parser], 0
    with fewer_collections():
        for segment in segments:
            with segment.open("rb") as fh:
                for line in fh:
                    record = line.rstrip(b"\n")
                    parse(record)
                    leaf_hash(record)
                    count += 1
    return count


def _chunked_floor_pass(segments: list[Path]) -> int:
    decode_lines, count = decode_chunk, 0
    with fewer_collections():
        for segment in segments:
            lines = segment.read_bytes().split(b"\n")[:-1]
            for start in range(0, len(lines), FLOOR_CHUNK):
                part = lines[start : start + FLOOR_CHUNK]
                count += len(decode_lines(b"\n".join(part) + b"\n"))  # events decoded, so a test can count them
                for record in part:
                    leaf_hash(record)
    return count


FLOOR_PARSERS = (*_PARSERS, "msgspec-chunked")


def measure_floor(segments: list[Path]) -> tuple[int, float, str]:
    """The fastest of orjson parse, msgspec typed decode and chunked msgspec decode, each + leaf hash, per line."""
    best: tuple[int, float, str] | None = None
    for parser in FLOOR_PARSERS:
        start = time.perf_counter()
        count = floor_pass(segments, parser)
        took = time.perf_counter() - start
        if best is None or took < best[1]:
            best = (count, took, parser)
    assert best is not None
    return best


def judge_pass(ctx: WorkerContext, jobs: list[SegmentJob]) -> float:
    """A new worker's job: read, check, decode and judge each segment, starting cold; then its peak RSS in MB.

    The peak is VmHWM where Linux has it: a spawned child's ``ru_maxrss`` also counts
    the parent's pages it shared between fork and exec.
    """
    fast = FastReplay.for_policy(load_policy(ctx.policy_dir), ctx.approvals)
    with fewer_collections():
        for job in jobs:
            judge_segment(fast, job)
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return maxrss_mb()


def maxrss_mb() -> float:
    """This process's peak RSS in MB (``ru_maxrss`` is in KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def measure_machine_2(ctx: WorkerContext, jobs: list[SegmentJob]) -> tuple[float, float, float]:
    """Seconds for the workers' per-segment work in one of two started processes, then split over both.

    The same work ``--workers 2`` shares out, with no verification, merging or report:
    how much faster two processes are than one on this machine right now. Also the
    peak RSS of a process that did that work for the whole log. The pool (and its
    threads) is gone when this returns, so the replays measured next run as a CLI
    does: with no other thread, their workers are forked (ADR 0017).
    """
    pool: Pool
    with get_context("spawn").Pool(2) as pool:
        pool.map(time.sleep, [0.5, 0.5])  # give both processes time to start before anything is timed
        start = time.perf_counter()
        peak = pool.apply(judge_pass, (ctx, jobs))
        one = time.perf_counter() - start
        start = time.perf_counter()
        pool.starmap(judge_pass, [(ctx, jobs[0::2]), (ctx, jobs[1::2])])
        return one, time.perf_counter() - start, peak


def measure_full(
    logdir: Path, keyring: Keyring, key: SigningKey, out: Path, workers: int = 1
) -> tuple[int, float, int]:
    """``replay`` end to end - verify, replay, findings streamed to findings.jsonl, signed report."""
    start = time.perf_counter()
    outcome = replay(
        logdir, keyring, FIXTURES / "approvals.jsonl", POLICY, key, out, execution=Execution(workers=workers)
    )
    took = time.perf_counter() - start
    summary = outcome.statement.predicate.summary
    return summary.events, took, summary.findings


def measure_naive(logdir: Path, sample: int) -> tuple[int, float]:
    """Per event: parse, Ed25519-verify a signature, pycasbin enforce every request uncached."""
    key = signing_key_from_seed(hashlib.sha256(b"bench naive").digest())
    pack = load_policy(POLICY).packs[0]
    enforcer = casbin.Enforcer(str(pack.directory / "model.conf"), str(pack.directory / "policy.csv"))
    lines: list[bytes] = []
    for segment in sorted((logdir / "segments").glob("*.jsonl")):
        lines += segment.read_bytes().splitlines()[: sample - len(lines)]
        if len(lines) >= sample:
            break
    signatures = [key.sign(line) for line in lines]
    start = time.perf_counter()
    for line, sig in zip(lines, signatures, strict=True):
        event = AccessEvent.model_validate(orjson.loads(line))
        key.public.verify(sig, line)
        actor = actor_class(event.actor, pack.config)
        for fact in base_facts(event, pack, actor):
            enforcer.enforce_ex(*fact.request)
        enforcer.enforce_ex("access", actor, event.resource.category, event.action, "valid")
    return len(lines), time.perf_counter() - start


def cloudtrail_files(n: int, dest: Path, per_file: int = 2_000) -> list[Path]:
    """``n`` CloudTrail records in gzip files of ``per_file``, cycling the fixture records with fresh ids."""
    base: list[dict[str, object]] = []
    for path in sorted((FIXTURES / "sources" / "cloudtrail" / "logs").glob("*.json.gz")):
        base += orjson.loads(gzip.decompress(path.read_bytes()))["Records"]
    dest.mkdir(parents=True)
    files = []
    for start in range(0, n, per_file):
        records = [
            {**base[i % len(base)], "eventID": f"bench-{i:09d}", "requestID": f"req-{i:09d}"}
            for i in range(start, min(n, start + per_file))
        ]
        path = dest / f"111122223333_CloudTrail_us-east-1_bench_{start // per_file:06d}.json.gz"
        path.write_bytes(gzip.compress(orjson.dumps({"Records": records}), 6))
        files.append(path)
    return files


def measure_import(files: list[Path], key: SigningKey, out: Path) -> tuple[int, float]:
    """``import cloudtrail`` end to end: read, convert, enrich, canonicalise, seal, sign, import report."""
    enrichment = load_enrichment(FIXTURES / "sources" / "directory.csv", FIXTURES / "sources" / "catalog.yaml")
    start = time.perf_counter()
    result = run_import(SOURCES["cloudtrail"], files, enrichment, key=key, out=out)
    took = time.perf_counter() - start
    shutil.rmtree(out)
    return result.stats.records, took


def measure_import_floor(files: list[Path]) -> tuple[int, float]:
    """Gunzip, orjson parse, sorted orjson dump and leaf hash of every CloudTrail record."""
    count = 0
    start = time.perf_counter()
    with fewer_collections():
        for path in files:
            for record in orjson.loads(gzip.decompress(path.read_bytes()))["Records"]:
                leaf_hash(orjson.dumps(record, option=orjson.OPT_SORT_KEYS))
                count += 1
    return count, time.perf_counter() - start


def _best_wall(command: list[str], env: dict[str, str], runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
        best = min(best, time.perf_counter() - start)
    return best


def measure_startup(runs: int = 5) -> dict[str, float]:
    """Best wall-clock seconds of ``residency-audit --help`` (interpreter, imports, help text), three ways.

    ``startup_s``: as an installed package starts - with bytecode caches, which ``pip
    install`` writes and an interpreter writes on first run (here into a temporary
    ``PYTHONPYCACHEPREFIX``, after one untimed run, so no file of the checkout or the
    venv changes). ``startup_command_help_s``: the same for ``log verify --help``, which
    also runs the root callback and parses options. ``startup_uncached_s``: ``--help``
    compiling every module from source each time (``PYTHONDONTWRITEBYTECODE`` and an
    empty cache), the cost where no bytecode can be kept.
    """
    cli = Path(sys.executable).parent / "residency-audit"
    command = [str(cli)] if cli.exists() else [sys.executable, "-m", "audit"]
    with tempfile.TemporaryDirectory(prefix="bench-pycache-") as cache, tempfile.TemporaryDirectory() as empty:
        cached = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cached["PYTHONPYCACHEPREFIX"] = cache
        uncached = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": empty}
        for warm in ([*command, "--help"], [*command, "log", "verify", "--help"]):
            subprocess.run(warm, check=True, stdout=subprocess.DEVNULL, env=cached)
        return {
            "startup_s": _best_wall([*command, "--help"], cached, runs),
            "startup_command_help_s": _best_wall([*command, "log", "verify", "--help"], cached, runs),
            "startup_uncached_s": _best_wall([*command, "--help"], uncached, runs),
        }


_REPLAY = ("floor", "machine_1", "machine_2", "events", "workers_2")
"""The measurements of the replay path (``spread``); the others' spreads are in ``spread_import_heavy``."""

_POLICY_WORK = """
import sys, time
sys.path.insert(0, {repo!r})
from pathlib import Path
from audit.policy.lint import lint_paths
from audit.policy.prove import prove
from audit.policy.testing import run_tests
from audit.replay.rules import rule_commitments, template_scope
from audit.residency.rules import template_scope as residency_scope
pack = Path({pack!r})
scopes = {{"replay": template_scope(), "residency": residency_scope()}}
work = {{
    "lint": lambda: lint_paths([pack], rule_commitments(), scopes=scopes),
    "test": lambda: run_tests(pack, None),
    "prove": lambda: prove(pack, None),
}}[{what!r}]
start = time.perf_counter()
work()
print(time.perf_counter() - start)
"""


def measure_policy(what: str, runs: int = 2) -> float:
    """Best seconds of ``policy lint|test|prove`` of the shipped pack, in a fresh interpreter, after imports."""
    best = float("inf")
    for _ in range(runs):
        script = _POLICY_WORK.format(repo=str(REPO), pack=str(POLICY), what=what)
        done = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
        best = min(best, float(done.stdout.strip().splitlines()[-1]))
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--segment-size", type=int, default=10_000)
    parser.add_argument("--naive-sample", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved repetitions; the fastest of each is kept")
    parser.add_argument(
        "--import-records",
        type=int,
        default=None,
        help="CloudTrail records to import (default: --events, at most 200,000)",
    )
    args = parser.parse_args(argv)
    if args.import_records is None:
        args.import_records = min(args.events, 200_000)
    for name in ("events", "segment_size", "naive_sample", "repeat", "import_records"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    key = signing_key_from_seed(hashlib.sha256(b"residency-audit TEST-ONLY bench key").digest())
    keyring = Keyring(keys=(KeyringEntry(key_id=key.key_id, public_key=public_key_pem(key.public)),))
    times: dict[str, list[float]] = {
        "floor": [],
        "machine_1": [],
        "machine_2": [],
        "events": [],
        "workers_2": [],
        "heavy": [],
        "import": [],
        "import_floor": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        logdir = Path(tmp) / "log"
        seal(
            synthetic(args.events),
            out=logdir,
            key=key,
            origin="bench",
            record_type=ACCESS_RECORD_TYPE,
            segment_size=args.segment_size,
        )
        heavy_dir = Path(tmp) / "heavy"
        seal(
            synthetic(args.events, heavy=True),
            out=heavy_dir,
            key=key,
            origin="bench-heavy",
            record_type=ACCESS_RECORD_TYPE,
            segment_size=args.segment_size,
        )
        trail = cloudtrail_files(args.import_records, Path(tmp) / "cloudtrail")
        segments = sorted((logdir / "segments").glob("*.jsonl"))
        policy = load_policy(POLICY)
        ctx = WorkerContext(POLICY, policy_digests(policy), load_approvals(FIXTURES / "approvals.jsonl", keyring))
        verifier = LogVerifier(logdir, keyring, defer_content=True)
        jobs = [SegmentJob(seg.name, logdir / seg.name, seg.body.segment) for seg in verifier.segments()]
        if not verifier.report().ok:
            raise SystemExit("the benchmark log does not verify")
        floor_parsers: list[str] = []
        worker_peak = 0.0
        for _ in range(args.repeat):
            floor_n, floor_s, parser_used = measure_floor(segments)
            times["floor"].append(floor_s)
            floor_parsers.append(parser_used)
            machine_1, machine_2, peak = measure_machine_2(ctx, jobs)
            workers_start = start_method()  # what the replay with --workers 2 below uses
            worker_peak = max(worker_peak, peak)
            times["machine_1"].append(machine_1)
            times["machine_2"].append(machine_2)
            full_n, full_s, findings = measure_full(logdir, keyring, key, Path(tmp) / "one")
            times["events"].append(full_s)
            two_n, two_s, two_findings = measure_full(logdir, keyring, key, Path(tmp) / "two", workers=2)
            times["workers_2"].append(two_s)
            if sha256_file(Path(tmp) / "one" / FINDINGS_FILE) != sha256_file(Path(tmp) / "two" / FINDINGS_FILE) or (
                two_n,
                two_findings,
            ) != (full_n, findings):
                raise SystemExit("2 workers disagree with 1 process")
            heavy_n, heavy_s, heavy_findings = measure_full(heavy_dir, keyring, key, Path(tmp) / "heavy-out")
            times["heavy"].append(heavy_s)
            import_n, import_s = measure_import(trail, key, Path(tmp) / "imported")
            times["import"].append(import_s)
            import_floor_n, import_floor_s = measure_import_floor(trail)
            times["import_floor"].append(import_floor_s)
            for out in ("one", "two", "heavy-out"):
                shutil.rmtree(Path(tmp) / out)
        naive_n, naive_s = measure_naive(logdir, args.naive_sample)
    startup = measure_startup()
    policy_s = {what: measure_policy(what) for what in ("lint", "test", "prove")}
    best = {name: min(runs) for name, runs in times.items()}
    floor_parser = floor_parsers[times["floor"].index(best["floor"])]
    events_per_s = full_n / best["events"]
    floor_per_s = floor_n / best["floor"]
    naive_per_s = naive_n / naive_s
    workers_2_ratio = best["events"] / best["workers_2"]
    machine_2_ratio = best["machine_1"] / best["machine_2"]
    print(
        orjson.dumps(
            {
                "events": full_n,
                "repeat": args.repeat,
                "events_per_s": round(events_per_s),
                "naive_events_per_s": round(naive_per_s),
                "speedup": round(events_per_s / naive_per_s, 2),
                "floor_events_per_s": round(floor_per_s),
                "floor_parser": floor_parser,
                "floor_ratio": round(floor_per_s / events_per_s, 2),
                "findings": findings,
                "events_per_s_heavy": round(heavy_n / best["heavy"]),
                "heavy_findings": heavy_findings,
                "heavy_ratio": round(events_per_s / (heavy_n / best["heavy"]), 2),
                "import_events_per_s": round(import_n / best["import"]),
                "import_floor_events_per_s": round(import_floor_n / best["import_floor"]),
                "import_floor_ratio": round(best["import"] / best["import_floor"] * import_floor_n / import_n, 2),
                "import_records": import_n,
                **{name: round(seconds, 3) for name, seconds in startup.items()},
                "policy_lint_s": round(policy_s["lint"], 3),
                "policy_test_s": round(policy_s["test"], 3),
                "policy_prove_s": round(policy_s["prove"], 3),
                "peak_rss_mb": round(maxrss_mb(), 1),
                "worker_peak_rss_mb": round(worker_peak, 1),
                "workers_2_events_per_s": round(full_n / best["workers_2"]),
                "workers_2_ratio": round(workers_2_ratio, 2),
                "machine_2_ratio": round(machine_2_ratio, 2),
                "workers_2_efficiency": round(workers_2_ratio / machine_2_ratio, 2),
                "workers_start_method": workers_start,
                "spread": {name: round(max(runs) / min(runs), 2) for name, runs in times.items() if name in _REPLAY},
                "spread_import_heavy": {
                    name: round(max(runs) / min(runs), 2) for name, runs in times.items() if name not in _REPLAY
                },
            }
        ).decode()
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
