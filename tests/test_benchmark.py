"""The benchmark script still runs and checks itself (a smoke run; nothing here is timed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

REPO = Path(__file__).resolve().parent.parent


def test_benchmark_prints_every_ratio_on_a_small_log() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "run.py"),
            "--events",
            "3000",
            "--segment-size",
            "500",
            "--repeat",
            "1",
            "--naive-sample",
            "50",
        ],
        capture_output=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr.decode()
    result = orjson.loads(done.stdout.splitlines()[-1])
    assert result["events"] == 3000 and result["findings"] > 0
    for name in (
        "events_per_s",
        "naive_events_per_s",
        "floor_events_per_s",
        "workers_2_events_per_s",
        "peak_rss_mb",
        "worker_peak_rss_mb",
        "startup_s",
        "startup_command_help_s",
        "startup_uncached_s",
    ):
        assert result[name] > 0, name
    assert set(result["spread"]) == {"floor", "machine_1", "machine_2", "events", "workers_2"}
    assert result["floor_parser"] in ("orjson", "msgspec", "msgspec-chunked")
    efficiency = result["workers_2_ratio"] / result["machine_2_ratio"]
    assert abs(result["workers_2_efficiency"] - efficiency) < 0.02


@pytest.mark.parametrize("flag", ["--events", "--segment-size", "--naive-sample", "--repeat"])
def test_benchmark_rejects_a_zero_count(flag: str) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), flag, "0"], capture_output=True, check=False, timeout=60
    )
    assert done.returncode == 2 and f"{flag} must be at least 1".encode() in done.stderr


def test_every_floor_parser_reads_every_line_of_the_fixture_log() -> None:
    """The floor takes the fastest parser: each must do the whole work (a chunk cut short would look fast)."""
    from benchmarks import run as bench

    segments = sorted((REPO / "fixtures" / "logs" / "access" / "segments").glob("*.jsonl"))
    lines = sum(len(segment.read_bytes().splitlines()) for segment in segments)
    assert lines > bench.FLOOR_CHUNK  # more than one chunk
    assert {parser: bench.floor_pass(segments, parser) for parser in bench.FLOOR_PARSERS} == dict.fromkeys(
        ("orjson", "msgspec", "msgspec-chunked"), lines
    )
