"""Sealed, signed, segmented access logs.

:mod:`audit.logs.merkle` computes RFC 9162 Merkle tree hashes and proofs;
:mod:`audit.logs.checkpoint` defines the signed checkpoint body, the append
journal and the file layout; :mod:`audit.logs.writer` seals canonical records
into a new log directory and :mod:`audit.logs.append` extends one, resumably;
:mod:`audit.logs.verify` verifies one and localises tampering;
:mod:`audit.logs.trusted` authenticates a single checkpoint file (a pin);
:mod:`audit.logs.proofs` builds and checks inclusion and consistency proofs. The
on-disk format is specified in ``docs/log-format.md``. The log machinery does not
validate or interpret records (callers hand it canonical JSON bytes and parse
what it yields); only :mod:`audit.logs.record_types` (the record types a log
holds, and records validated for sealing) and :mod:`audit.logs.approvals`
(approvals from a JSON Lines file or a verified sealed log) know record models.
"""
