"""Where ``import cloudtrail`` spends its time, on the records ``make bench`` imports.

    python benchmarks/import_profile.py [--records N] [--repeat R] [--profile] [--unique-keys]

Builds ``N`` synthetic CloudTrail records in gzip files of 2,000 (``cloudtrail_files``
of benchmarks/run.py; with ``--unique-keys``, as real trails have them: UUID ids and a
fresh S3 object key per record, so the resource memos miss), then runs ``run_import``
and the import floor (gunzip, orjson parse, sorted orjson dump and leaf hash of every
record) ``R`` times, interleaved, and prints the best CPU and wall time of each per
record and their ratio. CPU time moves less than wall time on a shared machine.
``--profile`` prints the functions that took the most time in one more run under
cProfile (which slows small functions most).
Nothing here is a test: timings never are.
"""

from __future__ import annotations

import argparse
import cProfile
import gzip
import pstats
import random
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from audit.importers.enrichment import load_enrichment  # noqa: E402
from audit.importers.run import SOURCES, run_import  # noqa: E402
from audit.signing.keys import signing_key_from_seed  # noqa: E402
from benchmarks.run import FIXTURES, cloudtrail_files, measure_import_floor  # noqa: E402


def _fresh_key(record: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The record with UUID ids and, for an S3 object, a fresh key in its parameters and resource ARNs."""
    ids = {name: str(uuid.UUID(int=rng.getrandbits(128))) for name in ("eventID", "requestID", "sharedEventID")}
    record = {**record, **ids}
    params = record.get("requestParameters")
    if isinstance(params, dict) and isinstance(params.get("key"), str) and isinstance(params.get("bucketName"), str):
        key = f"data/{rng.getrandbits(64):016x}.parquet"
        old = f"arn:aws:s3:::{params['bucketName']}/{params['key']}"
        new = f"arn:aws:s3:::{params['bucketName']}/{key}"
        record["requestParameters"] = {**params, "key": key}
        resources = record.get("resources")
        if isinstance(resources, list):
            record["resources"] = [{**r, "ARN": new} if r.get("ARN") == old else r for r in resources]
    return record


def unique_key_files(files: list[Path]) -> None:
    """Rewrite ``cloudtrail_files`` in place with :func:`_fresh_key` records (deterministic)."""
    rng = random.Random(18)
    for path in files:
        records = orjson.loads(gzip.decompress(path.read_bytes()))["Records"]
        fresh = [_fresh_key(record, rng) for record in records]
        path.write_bytes(gzip.compress(orjson.dumps({"Records": fresh}), 6))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--unique-keys", action="store_true")
    args = parser.parse_args(argv)
    key = signing_key_from_seed(b"\x01" * 32)  # TEST-ONLY key
    enrichment = load_enrichment(FIXTURES / "sources" / "directory.csv", FIXTURES / "sources" / "catalog.yaml")
    best = {
        "import_cpu": float("inf"),
        "import_wall": float("inf"),
        "floor_cpu": float("inf"),
        "floor_wall": float("inf"),
    }
    with tempfile.TemporaryDirectory() as tmp:
        files = cloudtrail_files(args.records, Path(tmp) / "cloudtrail")
        if args.unique_keys:
            unique_key_files(files)
        for run in range(args.repeat):
            out = Path(tmp) / f"log-{run}"
            wall, cpu = time.perf_counter(), time.process_time()
            run_import(SOURCES["cloudtrail"], files, enrichment, key=key, out=out)
            best["import_cpu"] = min(best["import_cpu"], time.process_time() - cpu)
            best["import_wall"] = min(best["import_wall"], time.perf_counter() - wall)
            shutil.rmtree(out)
            wall, cpu = time.perf_counter(), time.process_time()
            measure_import_floor(files)
            best["floor_cpu"] = min(best["floor_cpu"], time.process_time() - cpu)
            best["floor_wall"] = min(best["floor_wall"], time.perf_counter() - wall)
        per = {name: seconds * 1e6 / args.records for name, seconds in best.items()}
        print(
            f"{args.records} records, best of {args.repeat}: import {per['import_cpu']:.2f} us CPU "
            f"({per['import_wall']:.2f} wall), floor {per['floor_cpu']:.2f} us CPU ({per['floor_wall']:.2f} wall), "
            f"import_floor_ratio {best['import_cpu'] / best['floor_cpu']:.2f} CPU, "
            f"{best['import_wall'] / best['floor_wall']:.2f} wall"
        )
        if args.profile:
            profile = cProfile.Profile()
            profile.enable()
            run_import(SOURCES["cloudtrail"], files, enrichment, key=key, out=Path(tmp) / "profiled")
            profile.disable()
            pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
