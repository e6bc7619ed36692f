#!/usr/bin/env python3
"""An independent check of a `diplog export` file, on the standard library alone.

Re-encodes every event by the documented canonical encoding (src/domain/canonical.rs), checks
its leaf_hash, recomputes the RFC 6962 root over all of them and compares it with the closing
tree head. (The Ed25519 signature needs a library beyond the standard one and is checked by
`diplog restore`.) Usage: verify_export.py FILE. Exits 0 if all holds, else prints the first
line that does not and exits 1.
"""
import datetime
import json
import os
import struct
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from verify_merkle import leaf_hash, mth  # noqa: E402

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def string(text):
    raw = text.encode("utf-8")
    return struct.pack(">I", len(raw)) + raw


def optional_uuid(text):
    return b"\x00" if text is None else b"\x01" + uuid.UUID(text).bytes


def micros(text):
    # RFC 3339 with up to nine fractional digits; PostgreSQL keeps microseconds.
    main, _, rest = text.rstrip("Z").partition(".")
    when = datetime.datetime.fromisoformat(main).replace(tzinfo=datetime.timezone.utc)
    fraction = (rest + "000000")[:6] if rest else "000000"
    delta = when - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + int(fraction)


def raw_data(line):
    """The payload exactly as written: the JSON text after the first top-level "data" key (a
    quote inside a string is always escaped, so the first `,"data":` is the key)."""
    start = line.index(',"data":') + len(',"data":')
    _, end = json.JSONDecoder().raw_decode(line, start)
    return line[start:end]


def canonical(line, event):
    out = b"diplog.event.v1"
    out += struct.pack(">Q", event["position"]) + uuid.UUID(event["id"]).bytes
    out += string(event["stream_id"]) + struct.pack(">Q", event["stream_version"])
    out += string(event["type"]) + string(raw_data(line))
    out += optional_uuid(event.get("correlation_id")) + optional_uuid(event.get("causation_id"))
    metadata = sorted(event["metadata"].items(), key=lambda kv: kv[0].encode("utf-8"))
    out += struct.pack(">I", len(metadata))
    for key, value in metadata:
        out += string(key) + string(value)
    out += struct.pack(">q", micros(event["recorded_at"])) + string(event["appended_by"])
    return out


def main(path):
    leaves = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            document = json.loads(line)
            if "tree_head" in document:
                head = document["tree_head"]
                root = mth(leaves).hex()
                if head["tree_size"] != len(leaves) or head["root_hash"] != root:
                    print(f"line {number}: the tree head (size {head['tree_size']}, root "
                          f"{head['root_hash']}) does not match the {len(leaves)} events "
                          f"before it (root {root})")
                    return 1
                print(f"verified: {len(leaves)} events, root {root}")
                return 0
            if document["position"] != len(leaves) + 1:
                print(f"line {number}: position {document['position']}, expected {len(leaves) + 1}")
                return 1
            leaf = leaf_hash(canonical(line, document))
            if leaf.hex() != document["leaf_hash"]:
                print(f"line {number}: the event does not match its leaf_hash")
                return 1
            leaves.append(leaf)
    print("no closing tree head")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
