"""Sealed, signed, segmented access logs.

:mod:`audit.logs.merkle` computes RFC 9162 Merkle tree hashes;
:mod:`audit.logs.checkpoint` defines the signed checkpoint body and file layout;
:mod:`audit.logs.writer` seals canonical records into a log directory;
:mod:`audit.logs.verify` verifies one and localises tampering. The on-disk format
is specified in ``docs/log-format.md``. This package does not validate or
interpret records (callers hand it canonical JSON bytes and parse what it yields).
"""
