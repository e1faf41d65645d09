"""Throughput benchmark: verify + replay against baselines measured in the same run.

    make bench [EVENTS=N]          # or: python benchmarks/run.py --events N

Builds a deterministic synthetic log by cycling the seed-scenario events (fresh ids),
seals it with a TEST-ONLY key, then measures, in one process and one run:

- ``floor``: orjson parse + RFC 9162 leaf hash of every line (no verification, no replay)
- ``events``: full pipeline - log verification (hashes, roots, signatures) + replay
- ``naive``: one Ed25519 verification and one uncached pycasbin enforce per event,
  measured on a sample

and prints one JSON line with the ratios. Machines here are noisy: compare the ratios,
not the absolute numbers, across runs.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import casbin
import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from audit.canonical import canonical_bytes, is_canonical  # noqa: E402
from audit.logs.merkle import leaf_hash  # noqa: E402
from audit.logs.verify import LogVerifier  # noqa: E402
from audit.logs.writer import seal  # noqa: E402
from audit.models import AccessEvent  # noqa: E402
from audit.pipeline import ACCESS_RECORD_TYPE, replay_log  # noqa: E402
from audit.policy import load_policy  # noqa: E402
from audit.replay.approvals import load_approvals  # noqa: E402
from audit.replay.engine import ReplayEngine  # noqa: E402
from audit.replay.facts import actor_class, base_facts  # noqa: E402
from audit.replay.fast import FastReplay  # noqa: E402
from audit.replay.parallel import WorkerContext, policy_digests, replay_with_processes  # noqa: E402
from audit.replay.rules import load_rules  # noqa: E402
from audit.replay.tuning import fewer_collections  # noqa: E402
from audit.signing.keys import Keyring, KeyringEntry, public_key_pem, signing_key_from_seed  # noqa: E402

FIXTURES = REPO / "fixtures"
POLICY = REPO / "policies"


_ID = "bench-id-placeholder"


def synthetic(n: int) -> Iterator[bytes]:
    """``n`` canonical events cycling the fixture events, each with a fresh id.

    Each fixture event is canonicalised once with a placeholder id; an ASCII id
    needs no escaping and keys sort by name, so substituting it keeps the bytes
    canonical (checked on the first cycle).
    """
    base = []
    for line in (FIXTURES / "events.jsonl").read_bytes().splitlines():
        record = orjson.loads(line)
        record["event_id"] = _ID
        base.append(canonical_bytes(record).split(_ID.encode()))
    for i in range(n):
        head, tail = base[i % len(base)]
        line = b"%sbench-%09d%s" % (head, i, tail)
        if i < len(base) and not is_canonical(line):
            raise SystemExit(f"synthetic event {i} is not canonical")
        yield line


def measure_floor(logdir: Path) -> tuple[int, float]:
    count = 0
    start = time.perf_counter()
    for segment in sorted((logdir / "segments").glob("*.jsonl")):
        with segment.open("rb") as fh:
            for line in fh:
                orjson.loads(line)
                leaf_hash(line.rstrip(b"\n"))
                count += 1
    return count, time.perf_counter() - start


def measure_full(logdir: Path, keyring: Keyring, workers: int = 1) -> tuple[int, float, int]:
    """Verify + replay (findings counted, not kept): events, seconds, findings."""
    start = time.perf_counter()
    policy = load_policy(POLICY)
    approvals = load_approvals(FIXTURES / "approvals.jsonl", None)
    engine = ReplayEngine(policy, approvals, load_rules())
    verifier = LogVerifier(logdir, keyring, record_type=ACCESS_RECORD_TYPE, defer_content=workers > 1)
    if workers == 1:
        stream = replay_log(logdir, verifier, FastReplay(engine, policy, approvals))
    else:
        ctx = WorkerContext(POLICY, policy_digests(policy), approvals)
        here = FastReplay(ReplayEngine(policy, approvals, load_rules()), policy, approvals)
        stream = replay_with_processes(logdir, verifier, engine, ctx, workers, here)
    with fewer_collections():
        findings = sum(1 for _ in stream)
    report = verifier.report()
    if not report.ok:
        raise SystemExit(f"benchmark log did not verify: {report.problems[0]}")
    return engine.stats.events, time.perf_counter() - start, findings


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--segment-size", type=int, default=10_000)
    parser.add_argument("--naive-sample", type=int, default=5_000)
    args = parser.parse_args(argv)
    key = signing_key_from_seed(hashlib.sha256(b"residency-audit TEST-ONLY bench key").digest())
    keyring = Keyring(keys=(KeyringEntry(key_id=key.key_id, public_key=public_key_pem(key.public)),))
    with tempfile.TemporaryDirectory() as tmp:
        logdir = Path(tmp) / "log"
        seal(synthetic(args.events), out=logdir, key=key, origin="bench", record_type=ACCESS_RECORD_TYPE,
             segment_size=args.segment_size)
        floor_n, floor_s = measure_floor(logdir)
        full_n, full_s, findings = measure_full(logdir, keyring)
        two_n, two_s, two_findings = measure_full(logdir, keyring, workers=2)
        naive_n, naive_s = measure_naive(logdir, args.naive_sample)
    if (two_n, two_findings) != (full_n, findings):
        raise SystemExit("2 workers disagree with 1 process")
    events_per_s = full_n / full_s
    floor_per_s = floor_n / floor_s
    naive_per_s = naive_n / naive_s
    print(orjson.dumps({
        "events": full_n,
        "events_per_s": round(events_per_s),
        "naive_events_per_s": round(naive_per_s),
        "speedup": round(events_per_s / naive_per_s, 2),
        "floor_events_per_s": round(floor_per_s),
        "floor_ratio": round(floor_per_s / events_per_s, 2),
        "findings": findings,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "workers_2_events_per_s": round(two_n / two_s),
        "workers_2_ratio": round(full_s / two_s, 2),
    }).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
