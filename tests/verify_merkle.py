#!/usr/bin/env python3
"""An independent check of diplog's Merkle tree heads and proofs, on the standard library alone.

Reads one JSON document from stdin:
  {"leaves": [hex leaf input, ...],
   "roots": [hex MTH of the first n leaves, for n = 0, 1, ...],                   (optional)
   "inclusion": [{"index", "size", "leaf_hash", "proof": [hex], "root", "valid"}, ...],
   "consistency": [{"old_size", "new_size", "old_root", "new_root", "proof": [hex], "valid"}, ...]}
Every root and leaf hash that `leaves` determines is recomputed from them (MTH, RFC 6962 2.1);
every proof is checked by RFC 9162 2.1.3.2 and 2.1.4.2. An item with "valid": false must fail.
Exits 0 only if every item comes out as expected, and prints each one that does not.
"""
import hashlib
import json
import sys

EMPTY = hashlib.sha256(b"").digest()


def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def mth(hashes):
    if len(hashes) <= 1:
        return hashes[0] if hashes else EMPTY
    k = 1 << ((len(hashes) - 1).bit_length() - 1)  # largest power of two below len
    return node_hash(mth(hashes[:k]), mth(hashes[k:]))


def verify_inclusion(leaf, index, size, proof, root):
    """RFC 9162 2.1.3.2, step by step."""
    if index >= size:
        return "index out of range"
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return "proof too long"
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        return "proof too short"
    return None if r == root else "proof does not lead to the root"


def verify_consistency(m, n, old_root, new_root, proof):
    """RFC 9162 2.1.4.2, step by step; sizes 0 and m == n held as strictly as diplog does."""
    if m > n:
        return "old size is larger than new size"
    if m == 0 or m == n:
        ok = not proof and old_root == (EMPTY if m == 0 else new_root)
        return None if ok else "a proof, or roots that differ, where none may be"
    if not proof:
        return "empty proof"
    path = ([old_root] if m & (m - 1) == 0 else []) + proof
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return "proof too long"
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        return "proof too short"
    return None if (fr, sr) == (old_root, new_root) else "proof does not lead to the roots"


def check(doc):
    """Yields (item name, reason it failed, or None) for every item."""
    hashes = [leaf_hash(bytes.fromhex(x)) for x in doc.get("leaves", [])]
    prefix = [mth(hashes[:n]) for n in range(len(hashes) + 1)]

    def h(x):
        b = bytes.fromhex(x)
        if len(b) != 32:
            raise ValueError(f"{x!r} is not a 32-byte hash")
        return b

    for n, root in enumerate(doc.get("roots", [])):
        ok = n < len(prefix) and h(root) == prefix[n]
        yield f"roots[{n}]", None if ok else "not the MTH of the leaves", True
    for i, it in enumerate(doc.get("inclusion", [])):
        name = f"inclusion[{i}] (index {it.get('index')}, size {it.get('size')})"
        try:
            idx, size, leaf, root = it["index"], it["size"], h(it["leaf_hash"]), h(it["root"])
            why = verify_inclusion(leaf, idx, size, [h(p) for p in it["proof"]], root)
            if size < len(prefix) and root != prefix[size]:
                why = "root is not the MTH of the leaves"
            if idx < min(size, len(hashes)) and leaf != hashes[idx]:
                why = "leaf_hash is not the hash of that leaf"
        except (KeyError, TypeError, ValueError) as e:
            why = f"malformed: {e}"
        yield name, why, it.get("valid", True)
    for i, it in enumerate(doc.get("consistency", [])):
        name = f"consistency[{i}] ({it.get('old_size')} to {it.get('new_size')})"
        try:
            m, n, old, new = it["old_size"], it["new_size"], h(it["old_root"]), h(it["new_root"])
            why = verify_consistency(m, n, old, new, [h(p) for p in it["proof"]])
            if m <= n < len(prefix) and (old, new) != (prefix[m], prefix[n]):
                why = "a root is not the MTH of the leaves"
        except (KeyError, TypeError, ValueError) as e:
            why = f"malformed: {e}"
        yield name, why, it.get("valid", True)


def main():
    results = list(check(json.load(sys.stdin)))
    wrong = 0
    for name, why, valid in results:
        if valid and why:
            print(f"FAILED {name}: {why}")
        elif not valid and not why:
            print(f"FAILED {name}: verified, but it is marked invalid")
        wrong += (why is None) != valid
    print(f"verify_merkle: {len(results) - wrong} of {len(results)} items as expected")
    return 1 if wrong or not results else 0


if __name__ == "__main__":
    sys.exit(main())
