"""RFC 9162 inclusion and consistency proofs: reference vectors, the library, and the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.cli.app import main
from audit.errors import EXIT_CLEAN, EXIT_INPUT, EXIT_INTEGRITY, InputError, IntegrityError
from audit.logs.merkle import (
    consistency_path,
    inclusion_path,
    leaf_hash,
    leaf_hashes,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from audit.logs.proofs import check_consistency, check_inclusion, prove_consistency, prove_inclusion
from audit.logs.trusted import load_checkpoint
from audit.signing.keys import load_keyring
from tests.conftest import FIXTURES

TAMPERED = FIXTURES / "tampered"
UNTOUCHED = TAMPERED / "untouched"
RING_PATH = UNTOUCHED / "keyring.json"

# Certificate Transparency reference data (RFC 6962/9162 test inputs, as published with
# transparency-dev/merkle testonly): the leaves, and proofs over trees of their prefixes.
CT_INPUTS = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
CT_ROOT_8 = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
CT_INCLUSION = [  # (leaf index, tree size, audit path)
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CT_CONSISTENCY = [  # (old size, new size, proof)
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CT_LEAVES = leaf_hashes(CT_INPUTS)


def hexes(hashes: list[bytes]) -> list[str]:
    return [h.hex() for h in hashes]


def test_reference_root() -> None:
    assert root_of(CT_LEAVES).hex() == CT_ROOT_8


@pytest.mark.parametrize(("index", "size", "path"), CT_INCLUSION)
def test_inclusion_reference_vectors(index: int, size: int, path: list[str]) -> None:
    leaves = CT_LEAVES[:size]
    assert hexes(inclusion_path(leaves, index)) == path
    assert verify_inclusion(leaves[index], index, size, [bytes.fromhex(h) for h in path], root_of(leaves))


@pytest.mark.parametrize(("old", "new", "proof"), CT_CONSISTENCY)
def test_consistency_reference_vectors(old: int, new: int, proof: list[str]) -> None:
    assert hexes(consistency_path(CT_LEAVES[:new], old)) == proof
    assert verify_consistency(
        old, new, root_of(CT_LEAVES[:old]), root_of(CT_LEAVES[:new]), [bytes.fromhex(h) for h in proof]
    )


def test_every_proof_up_to_size_33_verifies_and_tampering_fails() -> None:
    for n in range(1, 34):
        leaves = [leaf_hash(b"leaf %d" % i) for i in range(n)]
        root = root_of(leaves)
        for i in range(n):
            path = inclusion_path(leaves, i)
            assert verify_inclusion(leaves[i], i, n, path, root)
            assert not verify_inclusion(leaf_hash(b"x"), i, n, path, root)
            assert not verify_inclusion(leaves[i], i, n, [*path, root], root)
            if n > 1:
                assert not verify_inclusion(leaves[i], (i + 1) % n, n, path, root)
                assert not verify_inclusion(leaves[i], i, n, path[:-1], root)
        for m in range(1, n + 1):
            proof = consistency_path(leaves, m)
            old = root_of(leaves[:m])
            assert verify_consistency(m, n, old, root, proof)
            assert not verify_consistency(m, n, leaf_hash(b"x"), root, proof)
            if proof:
                assert not verify_consistency(m, n, old, root, proof[:-1])
                assert not verify_consistency(m, n, old, root, [leaf_hash(b"x"), *proof[1:]])


def test_consistency_edge_cases() -> None:
    root = root_of(CT_LEAVES)
    assert verify_consistency(0, 8, b"\x00" * 32, root, [])
    assert not verify_consistency(0, 8, b"\x00" * 32, root, [root])
    assert not verify_consistency(8, 8, root_of(CT_LEAVES[:7]), root, [])
    assert not verify_consistency(8, 7, root, root_of(CT_LEAVES[:7]), [])
    assert not verify_consistency(3, 8, root_of(CT_LEAVES[:3]), root, [b"short"])
    with pytest.raises(ValueError, match="not in a tree"):
        inclusion_path(CT_LEAVES, 8)
    with pytest.raises(ValueError, match="old size"):
        consistency_path(CT_LEAVES, 0)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), data=st.data())
def test_proofs_hold_for_random_trees(n: int, data: st.DataObject) -> None:
    leaves = [leaf_hash(b"%d" % i) for i in range(n)]
    i = data.draw(st.integers(0, n - 1))
    m = data.draw(st.integers(1, n))
    root = root_of(leaves)
    assert verify_inclusion(leaves[i], i, n, inclusion_path(leaves, i), root)
    assert verify_consistency(m, n, root_of(leaves[:m]), root, consistency_path(leaves, m))


# ----------------------------------------------------------------------------- library


def test_prove_and_check_inclusion_from_a_log() -> None:
    ring = load_keyring(RING_PATH)
    proof = prove_inclusion(UNTOUCHED / "log", ring, event_id="evt-t004")
    assert (proof.leaf_index, proof.segment, proof.line, proof.checkpoint.tree_size) == (
        4,
        "segments/00000001.jsonl",
        2,
        9,
    )
    last = load_checkpoint(UNTOUCHED / "log" / "checkpoints" / "00000002.json", ring)
    assert check_inclusion(proof, last) == []
    middle = load_checkpoint(UNTOUCHED / "log" / "checkpoints" / "00000001.json", ring)
    assert {p.code for p in check_inclusion(proof, middle)} == {"checkpoint-mismatch", "inclusion-failed"}
    forged = proof.model_copy(update={"record": proof.record.replace("evt-t004", "evt-t005")})
    assert {p.code for p in check_inclusion(forged, last)} == {"leaf-mismatch", "inclusion-failed"}
    at_middle = prove_inclusion(UNTOUCHED / "log", ring, event_id="evt-t004", checkpoint_index=1)
    assert at_middle.checkpoint.tree_size == 6 and check_inclusion(at_middle, middle) == []
    with pytest.raises(InputError, match="after checkpoint 0"):
        prove_inclusion(UNTOUCHED / "log", ring, event_id="evt-t004", checkpoint_index=0)
    with pytest.raises(InputError, match="no record with id"):
        prove_inclusion(UNTOUCHED / "log", ring, event_id="evt-nope")


def test_no_proof_from_a_log_that_does_not_verify() -> None:
    ring = load_keyring(TAMPERED / "modified_event" / "keyring.json")
    with pytest.raises(IntegrityError, match="event-modified"):
        prove_inclusion(TAMPERED / "modified_event" / "log", ring, event_id="evt-t000")


def test_consistency_detects_rollback_equivocation_and_forks() -> None:
    ring = load_keyring(RING_PATH)
    cps = [load_checkpoint(UNTOUCHED / "log" / "checkpoints" / f"0000000{i}.json", ring) for i in range(3)]
    proof = prove_consistency(UNTOUCHED / "log", ring, cps[0], cps[2])
    assert check_consistency(proof, cps[0], cps[2]) == []
    assert [p.code for p in check_consistency(proof, cps[2], cps[0])] == ["rollback"]
    rival = load_checkpoint(TAMPERED / "equivocation_trusted" / "trusted-checkpoint.json", ring)
    assert [p.code for p in check_consistency(proof, cps[1], rival)] == ["equivocation"]
    assert [p.code for p in check_consistency(proof, cps[1], cps[2])] == ["checkpoint-mismatch", "consistency-failed"]
    with pytest.raises(IntegrityError, match="a fork"):
        prove_consistency(UNTOUCHED / "log", ring, rival, cps[2])


# ----------------------------------------------------------------------------- CLI


def test_cli_inclusion_round_trip_with_only_checkpoint_and_keyring(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    proof_path = tmp_path / "proof.json"
    assert (
        main(
            [
                "log",
                "prove",
                "inclusion",
                str(UNTOUCHED / "log"),
                "--event",
                "evt-t007",
                "--keyring",
                str(RING_PATH),
                "--out",
                str(proof_path),
            ]
        )
        == EXIT_CLEAN
    )
    assert "leaf 7" in capsys.readouterr().out
    doc = json.loads(proof_path.read_text())
    assert doc["format"] == "residency-audit/inclusion-proof/v1" and len(doc["audit_path"]) == 4
    holder = tmp_path / "holder"  # someone with only the checkpoint, the keyring and the proof
    holder.mkdir()
    for src in (UNTOUCHED / "log" / "checkpoints" / "00000002.json", RING_PATH, proof_path):
        shutil.copy(src, holder)
    check = [
        "log",
        "verify-inclusion",
        str(holder / "proof.json"),
        "--checkpoint",
        str(holder / "00000002.json"),
        "--keyring",
        str(holder / "keyring.json"),
    ]
    assert main(check) == EXIT_CLEAN
    assert capsys.readouterr().out.startswith("OK evt-t007 is leaf 7")
    doc["audit_path"][1] = "00" * 32
    (holder / "proof.json").write_text(json.dumps(doc))
    assert main([*check, "--format", "json"]) == EXIT_INTEGRITY
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] is False and [p["code"] for p in result["problems"]] == ["inclusion-failed"]
    (holder / "proof.json").write_text('{"format": "something else"}')
    assert main(check) == EXIT_INPUT
    assert "not a InclusionProof" in capsys.readouterr().err


def test_cli_consistency_round_trip_and_rollback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cps = UNTOUCHED / "log" / "checkpoints"
    proof_path = tmp_path / "consistency.json"
    assert (
        main(
            [
                "log",
                "prove",
                "consistency",
                str(cps / "00000000.json"),
                str(cps / "00000002.json"),
                "--keyring",
                str(RING_PATH),
                "--out",
                str(proof_path),
            ]
        )
        == EXIT_CLEAN
    )
    assert "from size 3 to 9" in capsys.readouterr().out
    check = ["log", "verify-consistency", str(proof_path), "--keyring", str(RING_PATH)]
    assert main([*check, "--old", str(cps / "00000000.json"), "--new", str(cps / "00000002.json")]) == EXIT_CLEAN
    assert "is a prefix of" in capsys.readouterr().out
    assert main([*check, "--old", str(cps / "00000002.json"), "--new", str(cps / "00000000.json")]) == EXIT_INTEGRITY
    assert "rollback" in capsys.readouterr().out
    loose = tmp_path / "old.json"  # outside a log directory: --log is needed
    shutil.copy(cps / "00000000.json", loose)
    assert (
        main(
            [
                "log",
                "prove",
                "consistency",
                str(cps / "00000000.json"),
                str(loose),
                "--keyring",
                str(RING_PATH),
                "--out",
                str(tmp_path / "x.json"),
            ]
        )
        == EXIT_INPUT
    )
    assert "pass --log" in capsys.readouterr().err
