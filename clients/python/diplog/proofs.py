"""Local verification of the log's audit proofs, from the RFCs alone: nothing the server says
is taken on trust.

- Leaves: SHA-256(0x00 || canonical bytes of the event), the encoding of
  src/domain/canonical.rs (version tag `diplog.event.v1`); nodes: SHA-256(0x01 || left ||
  right); leaf index = position - 1 (RFC 6962 2.1).
- Inclusion and consistency proofs: RFC 9162 2.1.3.2 and 2.1.4.2.
- Signed tree heads: Ed25519 over `diplog.tree-head.v1` || size (u64 BE) || root ||
  timestamp (u64 BE, ms).

Every check raises `VerificationError` when it fails.
"""

from __future__ import annotations

import hashlib
import struct
import uuid
from typing import Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .errors import VerificationError
from .models import RecordedEvent, SignedTreeHead

__all__ = [
    "EMPTY_ROOT",
    "canonical_bytes",
    "leaf_hash",
    "node_hash",
    "verify_inclusion",
    "verify_consistency",
    "verify_tree_head",
]

VERSION_TAG = b"diplog.event.v1"
TREE_HEAD_TAG = b"diplog.tree-head.v1"
EMPTY_ROOT = hashlib.sha256(b"").digest()


def _string(value: str) -> bytes:
    raw = value.encode("utf-8")
    return struct.pack(">I", len(raw)) + raw


def _optional_uuid(value: str) -> bytes:
    return b"\x01" + uuid.UUID(value).bytes if value else b"\x00"


def canonical_bytes(event: RecordedEvent) -> bytes:
    """The event's canonical bytes, the data of its leaf (src/domain/canonical.rs)."""
    out = bytearray(VERSION_TAG)
    out += struct.pack(">Q", event.position)
    out += uuid.UUID(event.id).bytes
    out += _string(event.stream_id)
    out += struct.pack(">Q", event.stream_version)
    out += _string(event.type)
    out += _string(event.data)
    out += _optional_uuid(event.correlation_id)
    out += _optional_uuid(event.causation_id)
    out += struct.pack(">I", len(event.metadata))
    # Keys in byte order, as the server's BTreeMap<String, _> holds them.
    for key in sorted(event.metadata, key=lambda k: k.encode("utf-8")):
        out += _string(key) + _string(event.metadata[key])
    out += struct.pack(">q", event.recorded_at_micros)
    out += _string(event.appended_by)
    return bytes(out)


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """RFC 9162 2.1.3.2: `leaf` is at `index` in the tree of `size` leaves whose root is `root`."""
    if index < 0 or index >= size:
        raise VerificationError(f"leaf index {index} is not in a tree of {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise VerificationError("inclusion proof too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise VerificationError("inclusion proof too short")
    if r != root:
        raise VerificationError(
            f"inclusion proof of leaf {index} does not lead to the root of tree {size}"
        )


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 2.1.4.2: the tree of `new_size` (root `new_root`) extends the tree of
    `old_size` (root `old_root`)."""
    if old_size > new_size:
        raise VerificationError(f"old size {old_size} is larger than new size {new_size}")
    if old_size == 0 or old_size == new_size:
        expected = EMPTY_ROOT if old_size == 0 else new_root
        if proof or old_root != expected:
            raise VerificationError(f"trees of {old_size} and {new_size} are not consistent")
        return
    if not proof:
        raise VerificationError("empty consistency proof")
    path = ([old_root] if old_size & (old_size - 1) == 0 else []) + list(proof)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationError("consistency proof too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise VerificationError("consistency proof too short")
    if fr != old_root:
        raise VerificationError(f"consistency proof does not lead to the root of tree {old_size}")
    if sr != new_root:
        raise VerificationError(f"consistency proof does not lead to the root of tree {new_size}")


def tree_head_message(head: SignedTreeHead) -> bytes:
    return TREE_HEAD_TAG + struct.pack(">Q", head.tree_size) + head.root_hash + struct.pack(
        ">Q", head.timestamp_ms
    )


def verify_tree_head(head: SignedTreeHead, public_key: bytes) -> None:
    """The head's Ed25519 signature, by the 32-byte raw `public_key`."""
    if len(head.root_hash) != 32:
        raise VerificationError("a tree head's root is not 32 bytes")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            head.signature, tree_head_message(head)
        )
    except (InvalidSignature, ValueError) as error:
        raise VerificationError(
            f"the signature of the tree head of size {head.tree_size} does not verify"
        ) from error
