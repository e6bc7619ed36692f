"""The proof checks of diplog.proofs against a tree built here, by RFC 6962's definition (no
server needed), and the canonical encoding against the bytes src/domain/canonical.rs pins."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import pytest

from diplog import RecordedEvent, VerificationError
from diplog.proofs import (
    EMPTY_ROOT,
    canonical_bytes,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)


def mth(hashes: list[bytes]) -> bytes:
    if not hashes:
        return EMPTY_ROOT
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return node_hash(mth(hashes[:k]), mth(hashes[k:]))


def path(index: int, hashes: list[bytes]) -> list[bytes]:
    """RFC 6962 2.1.1 PATH(m, D[n])."""
    if len(hashes) <= 1:
        return []
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    if index < k:
        return path(index, hashes[:k]) + [mth(hashes[k:])]
    return path(index - k, hashes[k:]) + [mth(hashes[:k])]


def subproof(m: int, hashes: list[bytes], complete: bool) -> list[bytes]:
    """RFC 6962 2.1.2 SUBPROOF(m, D[n], b)."""
    n = len(hashes)
    if m == n:
        return [] if complete else [mth(hashes)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return subproof(m, hashes[:k], complete) + [mth(hashes[k:])]
    return subproof(m - k, hashes[k:], False) + [mth(hashes[:k])]


LEAVES = [leaf_hash(f"event {i}".encode()) for i in range(13)]


def test_every_inclusion_proof_of_a_13_leaf_tree_verifies_and_a_flipped_bit_fails() -> None:
    for size in range(1, len(LEAVES) + 1):
        root = mth(LEAVES[:size])
        for index in range(size):
            proof = path(index, LEAVES[:size])
            verify_inclusion(LEAVES[index], index, size, proof, root)
            if proof:
                bad = [bytes([proof[0][0] ^ 1]) + proof[0][1:]] + proof[1:]
                with pytest.raises(VerificationError):
                    verify_inclusion(LEAVES[index], index, size, bad, root)


def test_every_consistency_proof_of_a_13_leaf_tree_verifies_and_a_wrong_root_fails() -> None:
    for new in range(1, len(LEAVES) + 1):
        for old in range(1, new):
            proof = subproof(old, LEAVES[:new], True)
            old_root, new_root = mth(LEAVES[:old]), mth(LEAVES[:new])
            verify_consistency(old, new, old_root, new_root, proof)
            with pytest.raises(VerificationError):
                verify_consistency(old, new, hashlib.sha256(b"x").digest(), new_root, proof)


def test_the_canonical_bytes_are_the_ones_the_server_pins() -> None:
    # The sample of src/domain/canonical.rs's the_encoding_is_stable.
    event = RecordedEvent(
        position=7,
        stream_id="call-2025-02-15",
        stream_version=2,
        id="0f5b8f5e-6f55-4c1e-9d8e-2b1c2f5d7a01",
        type="CallHeld",
        data='{"quote": "Лавров"}',
        metadata={"b": "2", "a": "1"},
        correlation_id="",
        causation_id="00000000-0000-0000-0000-000000000000",
        recorded_at=datetime.fromtimestamp(1_739_620_800, tz=timezone.utc),
        recorded_at_micros=1_739_620_800_123_456,
        appended_by="anonymous",
    )
    data = '{"quote": "Лавров"}'.encode()
    expected = b"".join(
        [
            b"diplog.event.v1",
            (7).to_bytes(8, "big"),
            bytes.fromhex("0f5b8f5e6f554c1e9d8e2b1c2f5d7a01"),
            (15).to_bytes(4, "big") + b"call-2025-02-15",
            (2).to_bytes(8, "big"),
            (8).to_bytes(4, "big") + b"CallHeld",
            len(data).to_bytes(4, "big") + data,
            b"\x00",
            b"\x01" + bytes(16),
            (2).to_bytes(4, "big"),
            (1).to_bytes(4, "big") + b"a" + (1).to_bytes(4, "big") + b"1",
            (1).to_bytes(4, "big") + b"b" + (1).to_bytes(4, "big") + b"2",
            (1_739_620_800_123_456).to_bytes(8, "big"),
            (9).to_bytes(4, "big") + b"anonymous",
        ]
    )
    assert canonical_bytes(event) == expected
