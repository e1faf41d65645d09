"""Where a heavy replay's report side spends its time, on the heavy log ``make bench`` replays.

    python benchmarks/report_profile.py [--events N] [--repeat R] [--profile]

Seals ``N`` synthetic events of which every other one has a finding (``synthetic(n,
heavy=True)`` of benchmarks/run.py), replays them once (``measure_full``), then times
the report pass over the ``findings.jsonl`` it wrote ``R`` times: the decode of the lines
as the spool hands them on (``findings_as_written``; here, the file's lines already in
memory), the validated read of any report (``iter_findings``) for comparison, and the
whole pass the replay makes (decode, verdict tallies, the page's counts,
``findings.csv``, ``findings.ocsf.jsonl`` and the cases) over those lines. It prints the best
CPU and wall time of each per finding. ``--profile`` prints the functions that took
the most time in one more pass under cProfile. Nothing here is a test: timings never are.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from audit.logs.record_types import ACCESS_RECORD_TYPE  # noqa: E402
from audit.logs.writer import seal  # noqa: E402
from audit.pipeline import _commitment_texts, store_rule_ids  # noqa: E402
from audit.policy import load_policy  # noqa: E402
from audit.replay.tuning import fewer_collections  # noqa: E402
from audit.report.bundle import DerivedFiles  # noqa: E402
from audit.report.cases import build_cases  # noqa: E402
from audit.report.claims import FindingTallies  # noqa: E402
from audit.report.findings import iter_findings  # noqa: E402
from audit.report.publish import FINDINGS_FILE  # noqa: E402
from audit.report.readback import findings_as_written  # noqa: E402
from audit.signing.keys import Keyring, KeyringEntry, public_key_pem, signing_key_from_seed  # noqa: E402
from benchmarks.run import POLICY, measure_full, synthetic  # noqa: E402


def _best(run: Callable[[], None], repeat: int) -> tuple[float, float]:
    """The best CPU and wall seconds of ``repeat`` runs."""
    cpu = wall = float("inf")
    for _ in range(repeat):
        with fewer_collections():
            started, ticked = time.perf_counter(), time.process_time()
            run()
            cpu, wall = min(cpu, time.process_time() - ticked), min(wall, time.perf_counter() - started)
    return cpu, wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    key = signing_key_from_seed(b"\x01" * 32)  # TEST-ONLY key
    keyring = Keyring(keys=(KeyringEntry(key_id=key.key_id, public_key=public_key_pem(key.public)),))
    policy = load_policy(POLICY)
    rules, texts = store_rule_ids(policy), _commitment_texts(policy)
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "heavy"
        seal(synthetic(args.events, heavy=True), out=log, key=key, origin="heavy", record_type=ACCESS_RECORD_TYPE)
        _, took, count = measure_full(log, keyring, key, Path(tmp) / "report")
        path = Path(tmp) / "report" / FINDINGS_FILE
        print(f"replay: {took:.2f} s for {args.events} events and {count} findings")
        passes = iter(range(10**9))

        lines = path.read_bytes().splitlines(keepends=True)

        def read_back() -> None:
            for _ in findings_as_written(lines, path):
                pass

        def validated() -> None:
            for _ in iter_findings(path):
                pass

        def whole_pass() -> None:
            out = Path(tmp) / f"pass-{next(passes)}"
            out.mkdir()
            with DerivedFiles(out, texts, out) as derived:
                build_cases(FindingTallies().counting(derived.feeding(findings_as_written(lines, path))), rules)
                derived._export_digests()

        for name, run in (("decode as written", read_back), ("validated read", validated), ("report pass", whole_pass)):
            cpu, wall = _best(run, args.repeat)
            print(f"{name}: {cpu / count * 1e6:.1f} µs CPU, {wall / count * 1e6:.1f} µs wall per finding")
        if args.profile:
            profile = cProfile.Profile()
            profile.runcall(whole_pass)
            pstats.Stats(profile).sort_stats("tottime").print_stats(20)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
