"""Signing: Ed25519 keys, the keyring of trusted public keys, and DSSE envelopes.

:mod:`audit.signing.keys` loads/stores keys and answers key-status questions;
:mod:`audit.signing.dsse` signs and verifies DSSE v1 envelopes. This package does
not know what is signed (checkpoints, reports) — callers decide that.
"""
