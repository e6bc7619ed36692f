//! The log's Merkle tree (RFC 6962 2.1, RFC 9162 2.1): leaf and node hashes, tree heads, and
//! inclusion and consistency proofs, generated and verified. Pure: the hashes of stored
//! subtrees come in through [`Nodes`], so the caller decides where they live and fetches them;
//! nothing here does I/O.
//!
//! Subtrees are named `(level, index)`: the perfect subtree at level `L`, index `i` covers
//! leaves `[i * 2^L, (i + 1) * 2^L)`, and level 0 is a leaf hash. Only perfect subtrees are
//! stored; a subtree on the right edge of a tree is hashed from the perfect ones that make it
//! up, so a tree head never needs nodes that a later append would change.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

/// A SHA-256 digest: a leaf hash, a node hash or a tree root.
pub type Hash = [u8; 32];

/// Why a proof could not be made or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    #[error("leaf index {index} is out of range for a tree of {size} leaves")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("tree size {old_size} is larger than tree size {new_size}: a log only grows")]
    SizesOutOfOrder { old_size: u64, new_size: u64 },
    #[error("the proof has {got} hashes where these tree sizes need {expected}")]
    WrongProofLength { expected: usize, got: usize },
    #[error("the inclusion proof does not lead to the given root hash")]
    RootMismatch,
    #[error("the consistency proof does not lead to the old root hash")]
    OldRootMismatch,
    #[error("the consistency proof does not lead to the new root hash")]
    NewRootMismatch,
    #[error("two tree heads of size {size} have different root hashes")]
    DifferentRootsForOneSize { size: u64 },
    #[error("a frontier of {size} leaves has {expected} peaks, not {got}")]
    WrongPeakCount {
        size: u64,
        expected: u32,
        got: usize,
    },
    #[error("the Merkle node at level {level}, index {index} is missing")]
    MissingNode { level: u32, index: u64 },
}

/// SHA-256(0x00 || leaf): the prefix keeps a leaf from passing for an inner node.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([0x00])
        .chain_update(leaf)
        .finalize()
        .into()
}

/// SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new()
        .chain_update([0x01])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// The root of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// MTH over leaf hashes (RFC 6962 2.1), by the RFC's recursion and nothing else, for tests and
/// for recomputing a root from stored rows.
pub fn root_of(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n as u64) as usize;
            node_hash(&root_of(&leaves[..k]), &root_of(&leaves[k..]))
        }
    }
}

/// The largest power of two smaller than `n` (`n >= 2`): where RFC 6962 splits `D[n]`.
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// The roots of the perfect subtrees that cover `[0, size)`, largest first (a compact range):
/// enough to append leaves and compute the root without the rest of the tree.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Frontier {
    size: u64,
    peaks: Vec<Hash>,
}

impl Frontier {
    pub fn new() -> Self {
        Self::default()
    }

    /// A frontier as stored. Only the shape is checked: the hashes are the caller's word.
    pub fn from_parts(size: u64, peaks: Vec<Hash>) -> Result<Self, AuditError> {
        let expected = size.count_ones();
        if peaks.len() != expected as usize {
            return Err(AuditError::WrongPeakCount {
                size,
                expected,
                got: peaks.len(),
            });
        }
        Ok(Self { size, peaks })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn peaks(&self) -> &[Hash] {
        &self.peaks
    }

    /// Appends one leaf hash and returns every perfect subtree it completes as
    /// `(level, index, hash)`, smallest first: the leaf itself, `(0, size_before, leaf)`, then
    /// one node per trailing one bit of `size_before`. Storing these is all proof generation needs.
    pub fn push(&mut self, leaf: Hash) -> Vec<(u32, u64, Hash)> {
        let position = self.size;
        let mut completed = vec![(0, position, leaf)];
        let mut hash = leaf;
        let mut level = 0;
        // Each trailing one bit of the old size is a peak of the same height to merge with.
        while level < u64::BITS && (position >> level) & 1 == 1 {
            let left = self
                .peaks
                .pop()
                .expect("every one bit of the size has a peak");
            hash = node_hash(&left, &hash);
            level += 1;
            completed.push((level, position >> level, hash));
        }
        self.peaks.push(hash);
        self.size += 1;
        completed
    }

    /// MTH of the leaves so far (`empty_root()` for none): the peaks folded from the right,
    /// which is what RFC 6962's split at the largest power of two comes to.
    pub fn root(&self) -> Hash {
        let mut peaks = self.peaks.iter().rev();
        match peaks.next() {
            None => empty_root(),
            Some(last) => peaks.fold(*last, |right, left| node_hash(left, &right)),
        }
    }
}

/// Where proof generation gets perfect-subtree hashes from (the server's store, or memory in
/// tests). Level 0 is a leaf hash. Callers fetch what `*_proof_nodes` lists in one go first.
pub trait Nodes {
    fn node(&self, level: u32, index: u64) -> Result<Hash, AuditError>;
}

impl Nodes for HashMap<(u32, u64), Hash> {
    fn node(&self, level: u32, index: u64) -> Result<Hash, AuditError> {
        self.get(&(level, index))
            .copied()
            .ok_or(AuditError::MissingNode { level, index })
    }
}

/// A subtree `[begin, end)` of the RFC's recursion, named by its leaves.
type Span = (u64, u64);

/// The perfect subtrees that make up `[begin, end)`, largest (leftmost) first. Every subtree in
/// the RFC's recursion starts at a multiple of the smallest power of two not below its length,
/// so each piece is aligned and at most 64 are needed.
fn perfect_subtrees((begin, end): Span) -> impl Iterator<Item = (u32, u64)> {
    let length = end - begin;
    let mut start = begin;
    (0..u64::BITS).rev().filter_map(move |level| {
        if (length >> level) & 1 == 0 {
            return None;
        }
        debug_assert_eq!(start % (1 << level), 0, "unaligned subtree");
        let node = (level, start >> level);
        start += 1 << level;
        Some(node)
    })
}

/// MTH of the subtree `span`, from its perfect pieces folded from the right (as `Frontier::root`).
fn subtree_hash(span: Span, nodes: &impl Nodes) -> Result<Hash, AuditError> {
    let pieces = perfect_subtrees(span)
        .map(|(level, index)| nodes.node(level, index))
        .collect::<Result<Vec<_>, _>>()?;
    let mut pieces = pieces.iter().rev();
    let last = *pieces.next().expect("a subtree in a proof is never empty");
    Ok(pieces.fold(last, |right, left| node_hash(left, &right)))
}

/// The subtrees whose hashes form PATH(index, D[size]) (RFC 6962 2.1.1), in proof order: the
/// leaf's sibling first, the root's child last.
fn inclusion_spans(index: u64, size: u64) -> Result<Vec<Span>, AuditError> {
    if index >= size {
        return Err(AuditError::IndexOutOfRange { index, size });
    }
    let (mut begin, mut end) = (0, size);
    let mut siblings = Vec::new();
    while end - begin > 1 {
        let middle = begin + split(end - begin);
        if index < middle {
            siblings.push((middle, end));
            end = middle;
        } else {
            siblings.push((begin, middle));
            begin = middle;
        }
    }
    siblings.reverse();
    Ok(siblings)
}

/// The subtrees whose hashes form PROOF(old_size, D[new_size]) (RFC 6962 2.1.2), in proof order.
/// Empty when there is nothing to prove (an empty old tree, or equal sizes).
fn consistency_spans(old_size: u64, new_size: u64) -> Result<Vec<Span>, AuditError> {
    if old_size > new_size {
        return Err(AuditError::SizesOutOfOrder { old_size, new_size });
    }
    if old_size == 0 || old_size == new_size {
        return Ok(Vec::new());
    }
    let (mut begin, mut end) = (0, new_size);
    // SUBPROOF's flag b: while true, the subtree that ends at old_size is the whole old tree,
    // whose root the verifier already has, so it is left out.
    let mut is_old_root = true;
    let mut spans = Vec::new();
    while end != old_size {
        let middle = begin + split(end - begin);
        if old_size <= middle {
            spans.push((middle, end));
            end = middle;
        } else {
            spans.push((begin, middle));
            begin = middle;
            is_old_root = false;
        }
    }
    if !is_old_root {
        spans.push((begin, end));
    }
    spans.reverse();
    Ok(spans)
}

/// The perfect subtrees `inclusion_proof(index, size, _)` asks for, in the order it asks.
pub fn inclusion_proof_nodes(index: u64, size: u64) -> Result<Vec<(u32, u64)>, AuditError> {
    Ok(inclusion_spans(index, size)?
        .into_iter()
        .flat_map(perfect_subtrees)
        .collect())
}

/// The perfect subtrees `consistency_proof(old_size, new_size, _)` asks for, in the order it asks.
pub fn consistency_proof_nodes(
    old_size: u64,
    new_size: u64,
) -> Result<Vec<(u32, u64)>, AuditError> {
    Ok(consistency_spans(old_size, new_size)?
        .into_iter()
        .flat_map(perfect_subtrees)
        .collect())
}

/// PATH(index, D[size]) (RFC 6962 2.1.1, RFC 9162 2.1.3.1). At most one of its subtrees lies on
/// the right edge and is hashed from up to log2(size) perfect ones, so it costs O(log size)
/// node fetches.
pub fn inclusion_proof(index: u64, size: u64, nodes: &impl Nodes) -> Result<Vec<Hash>, AuditError> {
    inclusion_spans(index, size)?
        .into_iter()
        .map(|span| subtree_hash(span, nodes))
        .collect()
}

/// PROOF(old_size, D[new_size]) (RFC 6962 2.1.2, RFC 9162 2.1.4.1); empty when `old_size` is 0
/// or equals `new_size`. O(log new_size) node fetches, as for `inclusion_proof`.
pub fn consistency_proof(
    old_size: u64,
    new_size: u64,
    nodes: &impl Nodes,
) -> Result<Vec<Hash>, AuditError> {
    consistency_spans(old_size, new_size)?
        .into_iter()
        .map(|span| subtree_hash(span, nodes))
        .collect()
}

/// The bit walk shared by RFC 9162 2.1.3.2 step 4 and 2.1.4.2 step 6, done ahead of the hashing:
/// for each proof hash in turn, whether it is a left sibling ("LSB(fn) is set, or fn is equal to
/// sn"). Its length is the number of hashes the proof must have, since the RFC fails a proof that
/// runs past `sn == 0` or stops before it.
fn rfc9162_walk(mut fn_: u64, mut sn: u64) -> Vec<bool> {
    let mut left = Vec::new();
    while sn != 0 {
        let is_left = fn_ & 1 == 1 || fn_ == sn;
        left.push(is_left);
        if is_left && fn_ & 1 == 0 {
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    left
}

/// Verifies that `leaf` (a leaf hash) is at `index` in the tree of `size` leaves whose root is
/// `root`, by RFC 9162 2.1.3.2 alone: bit operations on the index and size, independent of how
/// proofs are generated here.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), AuditError> {
    if index >= size {
        return Err(AuditError::IndexOutOfRange { index, size });
    }
    let sides = rfc9162_walk(index, size - 1);
    if proof.len() != sides.len() {
        return Err(AuditError::WrongProofLength {
            expected: sides.len(),
            got: proof.len(),
        });
    }
    let computed = proof.iter().zip(sides).fold(*leaf, |r, (p, is_left)| {
        if is_left {
            node_hash(p, &r)
        } else {
            node_hash(&r, p)
        }
    });
    if computed != *root {
        return Err(AuditError::RootMismatch);
    }
    Ok(())
}

/// Verifies that the tree of `new_size` leaves with root `new_root` extends the one of
/// `old_size` leaves with root `old_root`, by RFC 9162 2.1.4.2. The cases the RFC leaves out are
/// held strictly: from size 0 the proof is empty and `old_root` must be `empty_root()`; for
/// equal sizes the proof is empty and the roots must be equal.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), AuditError> {
    if old_size > new_size {
        return Err(AuditError::SizesOutOfOrder { old_size, new_size });
    }
    if old_size == 0 || old_size == new_size {
        if !proof.is_empty() {
            return Err(AuditError::WrongProofLength {
                expected: 0,
                got: proof.len(),
            });
        }
        if old_size == 0 && *old_root != empty_root() {
            return Err(AuditError::OldRootMismatch);
        }
        if old_size == new_size && old_root != new_root {
            return Err(AuditError::DifferentRootsForOneSize { size: old_size });
        }
        return Ok(());
    }
    // Step 2: a power-of-two old tree is a node of the new one; its root starts the path.
    let prepended = old_size.is_power_of_two();
    let mut path: Vec<&Hash> = Vec::with_capacity(proof.len() + 1);
    if prepended {
        path.push(old_root);
    }
    path.extend(proof);
    // Steps 3 and 4.
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let sides = rfc9162_walk(fn_, sn);
    if path.len() != sides.len() + 1 {
        return Err(AuditError::WrongProofLength {
            expected: sides.len() + 1 - usize::from(prepended),
            got: proof.len(),
        });
    }
    // Steps 5 and 6.
    let (mut fr, mut sr) = (*path[0], *path[0]);
    for (c, is_left) in path[1..].iter().zip(sides) {
        if is_left {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
        } else {
            sr = node_hash(&sr, c);
        }
    }
    // Step 7 (sn == 0 holds: the walk ran until it did, and the length matched).
    if fr != *old_root {
        return Err(AuditError::OldRootMismatch);
    }
    if sr != *new_root {
        return Err(AuditError::NewRootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn hex(hash: &[u8]) -> String {
        hash.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    fn unhex(text: &str) -> Vec<u8> {
        assert_eq!(text.len() % 2, 0, "odd hex {text:?}");
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    fn unhex32(text: &str) -> Hash {
        unhex(text).try_into().expect("32 bytes")
    }

    /// Leaf hashes of `n` distinct leaves.
    fn leaves(n: u64) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("event {i}").as_bytes()))
            .collect()
    }

    /// A tree as the server keeps it: every perfect subtree `Frontier::push` reports.
    fn build(leaves: &[Hash]) -> (Frontier, HashMap<(u32, u64), Hash>) {
        let mut frontier = Frontier::new();
        let mut nodes = HashMap::new();
        for leaf in leaves {
            for (level, index, hash) in frontier.push(*leaf) {
                assert!(nodes.insert((level, index), hash).is_none(), "stored twice");
            }
        }
        (frontier, nodes)
    }

    /// A `Nodes` that writes down what it is asked for.
    struct Recording<'a> {
        nodes: &'a HashMap<(u32, u64), Hash>,
        asked: RefCell<Vec<(u32, u64)>>,
    }

    impl Nodes for Recording<'_> {
        fn node(&self, level: u32, index: u64) -> Result<Hash, AuditError> {
            self.asked.borrow_mut().push((level, index));
            self.nodes.node(level, index)
        }
    }

    fn flip(hash: &Hash, byte: usize) -> Hash {
        let mut flipped = *hash;
        flipped[byte % 32] ^= 0x10;
        flipped
    }

    // Hash vectors: google/certificate-transparency python/ct/crypto/merkle_test.py
    // (TreeHasherTest: sha256_empty_hash, sha256_leaves, sha256_nodes; commit
    // 4bfca4952a090a76a0755fb0ddc6d288088b83ed) and transparency-dev/merkle
    // rfc6962/rfc6962_test.go ("RFC6962 Leaf"; commit 78493b07ef9b552e3379abf9e23d4da26fbe797c).
    #[test]
    fn leaf_node_and_empty_hashes_match_the_published_vectors() {
        assert_eq!(
            hex(&empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        assert_eq!(
            hex(&leaf_hash(&unhex("101112131415161718191a1b1c1d1e1f"))),
            "3bfb960453ebaebf33727da7a1f4db38acc051d381b6da20d6d4e88f0eabfd7a"
        );
        assert_eq!(
            hex(&leaf_hash(b"L123456")),
            "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
        );
        assert_eq!(
            hex(&node_hash(
                &unhex32("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"),
                &unhex32("202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"),
            )),
            "1a378704c17da31e2d05b6d121c2bb2c7d76f6ee6fa8f983e596c2d034963c57"
        );
    }

    /// The published Certificate Transparency vectors; `tests/fixtures/merkle/rfc6962_vectors.json`
    /// says where each comes from (google/certificate-transparency merkle_tree_test.cc and
    /// merkle_test.py, transparency-dev/merkle proof/verify_test.go).
    fn ct_vectors() -> serde_json::Value {
        serde_json::from_str(include_str!(
            "../../tests/fixtures/merkle/rfc6962_vectors.json"
        ))
        .unwrap()
    }

    fn hashes(value: &serde_json::Value) -> Vec<Hash> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|h| unhex32(h.as_str().unwrap()))
            .collect()
    }

    fn ct_leaves(vectors: &serde_json::Value) -> Vec<Hash> {
        vectors["leaves"]
            .as_array()
            .unwrap()
            .iter()
            .map(|input| leaf_hash(&unhex(input.as_str().unwrap())))
            .collect()
    }

    #[test]
    fn the_roots_of_the_ct_test_tree_match_the_published_ones_at_every_size() {
        let vectors = ct_vectors();
        let leaves = ct_leaves(&vectors);
        let roots = hashes(&vectors["roots"]);
        assert_eq!((leaves.len(), roots.len()), (8, 9));
        let mut frontier = Frontier::new();
        assert_eq!(frontier.root(), roots[0]);
        for size in 1..=8 {
            frontier.push(leaves[size - 1]);
            assert_eq!(
                hex(&root_of(&leaves[..size])),
                hex(&roots[size]),
                "size {size}"
            );
            assert_eq!(hex(&frontier.root()), hex(&roots[size]), "size {size}");
        }
    }

    #[test]
    fn inclusion_proofs_match_and_pass_the_published_ones() {
        let vectors = ct_vectors();
        let leaves = ct_leaves(&vectors);
        let (_, nodes) = build(&leaves);
        let items = vectors["inclusion"].as_array().unwrap();
        assert_eq!(items.len(), 6);
        for item in items {
            let index = item["index"].as_u64().unwrap();
            let size = item["size"].as_u64().unwrap();
            let leaf = unhex32(item["leaf_hash"].as_str().unwrap());
            let proof = hashes(&item["proof"]);
            let root = unhex32(item["root"].as_str().unwrap());
            assert_eq!(verify_inclusion(&leaf, index, size, &proof, &root), Ok(()));
            if size <= 8 {
                assert_eq!(leaf, leaves[index as usize]);
                let made = inclusion_proof(index, size, &nodes).unwrap();
                assert_eq!(made, proof, "PATH({index}, D[{size}])");
            } else {
                // The real CT log's proof: rejected at a neighbouring index or with a bit flipped.
                assert!(verify_inclusion(&leaf, index + 1, size, &proof, &root).is_err());
                assert!(verify_inclusion(&flip(&leaf, 3), index, size, &proof, &root).is_err());
            }
        }
    }

    #[test]
    fn consistency_proofs_match_and_pass_the_published_ones() {
        let vectors = ct_vectors();
        let (_, nodes) = build(&ct_leaves(&vectors));
        let items = vectors["consistency"].as_array().unwrap();
        assert_eq!(items.len(), 5);
        for item in items {
            let old_size = item["old_size"].as_u64().unwrap();
            let new_size = item["new_size"].as_u64().unwrap();
            let old_root = unhex32(item["old_root"].as_str().unwrap());
            let new_root = unhex32(item["new_root"].as_str().unwrap());
            let proof = hashes(&item["proof"]);
            assert_eq!(
                verify_consistency(old_size, new_size, &old_root, &new_root, &proof),
                Ok(())
            );
            let made = consistency_proof(old_size, new_size, &nodes).unwrap();
            assert_eq!(made, proof, "PROOF({old_size}, D[{new_size}])");
        }
    }

    type NodeId = (u32, u64);

    // transparency-dev/merkle proof/proof_test.go (TestInclusion, TestConsistency; commit
    // 02a3e2029520f515596d5238c54fb0ac9e19bff4) lists which stored nodes each proof reads. Its
    // order differs (it rehashes right-edge pieces in its own order), so compare as sets.
    #[test]
    fn proofs_read_the_same_nodes_as_the_transparency_dev_implementation() {
        let sorted = |mut ids: Vec<(u32, u64)>| {
            ids.sort();
            ids
        };
        let inclusion: &[(u64, u64, &[NodeId])] = &[
            (0, 1, &[]),
            (0, 2, &[(0, 1)]),
            (1, 2, &[(0, 0)]),
            (1, 3, &[(0, 0), (0, 2)]),
            (0, 7, &[(0, 1), (1, 1), (0, 6), (1, 2)]),
            (2, 7, &[(0, 3), (1, 0), (0, 6), (1, 2)]),
            (4, 7, &[(0, 5), (0, 6), (2, 0)]),
            (6, 7, &[(1, 2), (2, 0)]),
            (3, 5, &[(0, 2), (1, 0), (0, 4)]),
            (4, 6, &[(0, 5), (2, 0)]),
            (10, 15, &[(0, 11), (1, 4), (0, 14), (1, 6), (3, 0)]),
            (
                24,
                31,
                &[(0, 25), (1, 13), (0, 30), (1, 14), (3, 2), (4, 0)],
            ),
            (
                81,
                95,
                &[
                    (0, 80),
                    (1, 41),
                    (2, 21),
                    (0, 94),
                    (1, 46),
                    (2, 22),
                    (4, 4),
                    (6, 0),
                ],
            ),
        ];
        for &(index, size, want) in inclusion {
            assert_eq!(
                sorted(inclusion_proof_nodes(index, size).unwrap()),
                sorted(want.to_vec()),
                "inclusion {index} in {size}"
            );
        }
        let consistency: &[(u64, u64, &[NodeId])] = &[
            (1, 2, &[(0, 1)]),
            (1, 4, &[(0, 1), (1, 1)]),
            (1, 6, &[(0, 1), (1, 1), (1, 2)]),
            (2, 3, &[(0, 2)]),
            (2, 8, &[(1, 1), (2, 1)]),
            (3, 7, &[(0, 2), (0, 3), (1, 0), (0, 6), (1, 2)]),
            (4, 7, &[(0, 6), (1, 2)]),
            (5, 7, &[(0, 4), (0, 5), (0, 6), (2, 0)]),
            (6, 7, &[(1, 2), (0, 6), (2, 0)]),
            (7, 8, &[(0, 6), (0, 7), (1, 2), (2, 0)]),
            (4, 4, &[]),
            (3, 5, &[(0, 2), (0, 3), (1, 0), (0, 4)]),
            (4, 6, &[(1, 2)]),
            (10, 15, &[(1, 4), (1, 5), (0, 14), (1, 6), (3, 0)]),
            (24, 31, &[(3, 2), (0, 30), (1, 14), (2, 6), (4, 0)]),
            (
                81,
                95,
                &[
                    (0, 80),
                    (0, 81),
                    (1, 41),
                    (2, 21),
                    (0, 94),
                    (1, 46),
                    (2, 22),
                    (4, 4),
                    (6, 0),
                ],
            ),
        ];
        for &(old_size, new_size, want) in consistency {
            assert_eq!(
                sorted(consistency_proof_nodes(old_size, new_size).unwrap()),
                sorted(want.to_vec()),
                "consistency {old_size} to {new_size}"
            );
        }
    }

    #[test]
    fn the_frontier_root_equals_the_rfc_recursion_and_push_reports_every_perfect_subtree() {
        let all = leaves(70);
        let mut frontier = Frontier::new();
        for (position, leaf) in all.iter().enumerate() {
            for (level, index, hash) in frontier.push(*leaf) {
                let begin = (index << level) as usize;
                let end = ((index + 1) << level) as usize;
                assert!(
                    end == position + 1,
                    "({level}, {index}) does not end at the new leaf"
                );
                assert_eq!(hash, root_of(&all[begin..end]), "({level}, {index})");
            }
            assert_eq!(frontier.size(), position as u64 + 1);
            assert_eq!(frontier.peaks().len() as u32, frontier.size().count_ones());
            assert_eq!(
                frontier.root(),
                root_of(&all[..=position]),
                "size {}",
                position + 1
            );
        }
    }

    #[test]
    fn a_frontier_rebuilt_from_its_parts_carries_on_the_same() {
        let all = leaves(45);
        let mut whole = Frontier::new();
        for leaf in &all[..29] {
            whole.push(*leaf);
        }
        let mut resumed = Frontier::from_parts(whole.size(), whole.peaks().to_vec()).unwrap();
        for leaf in &all[29..] {
            assert_eq!(resumed.push(*leaf), whole.push(*leaf));
        }
        assert_eq!(resumed, whole);
        assert_eq!(resumed.root(), root_of(&all));
    }

    #[test]
    fn a_frontier_with_the_wrong_number_of_peaks_is_rejected() {
        assert_eq!(
            Frontier::from_parts(6, vec![[0; 32]]),
            Err(AuditError::WrongPeakCount {
                size: 6,
                expected: 2,
                got: 1
            })
        );
        assert_eq!(Frontier::from_parts(0, vec![]), Ok(Frontier::new()));
    }

    /// Every way of getting an inclusion proof wrong that the reference verifiers test.
    fn assert_inclusion_tampering_fails(
        leaf: &Hash,
        index: u64,
        size: u64,
        proof: &[Hash],
        root: &Hash,
    ) {
        let fails =
            |leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash, what: &str| {
                assert!(
                    verify_inclusion(leaf, index, size, proof, root).is_err(),
                    "{what} verified (index {index}, size {size})"
                );
            };
        for (i, byte) in [0, 13, 31].into_iter().enumerate() {
            fails(
                &flip(leaf, byte),
                index,
                size,
                proof,
                root,
                "a flipped leaf",
            );
            fails(
                leaf,
                index,
                size,
                proof,
                &flip(root, byte + i),
                "a flipped root",
            );
        }
        for at in 0..proof.len() {
            let mut wrong = proof.to_vec();
            wrong[at] = flip(&wrong[at], at + index as usize);
            fails(leaf, index, size, &wrong, root, "a flipped proof hash");
        }
        let others: Vec<u64> = if size <= 70 {
            (0..=size).collect()
        } else {
            vec![
                0,
                index.saturating_sub(1),
                index + 1,
                index ^ 2,
                size - 1,
                size,
            ]
        };
        for other in others.into_iter().filter(|&other| other != index) {
            fails(leaf, other, size, proof, root, "another index");
        }
        // Twice or half the height, as the reference verifiers try. (A size one off can verify:
        // a proof of only right-hand siblings reads the same for sizes n and n + 1, and it is
        // the signed (size, root) pair that pins the size down.)
        for other in [size * 2, size / 2] {
            if other != size && other > index {
                fails(leaf, index, other, proof, root, "another size");
            }
        }
        fails(
            leaf,
            index,
            size,
            &[proof, &[*root]].concat(),
            root,
            "a longer proof",
        );
        fails(
            leaf,
            index,
            size,
            &[&[*leaf], proof].concat(),
            root,
            "a prefixed proof",
        );
        if let Some((_, shorter)) = proof.split_last() {
            fails(leaf, index, size, shorter, root, "a shorter proof");
        }
    }

    fn assert_consistency_tampering_fails(
        old_size: u64,
        new_size: u64,
        old_root: &Hash,
        new_root: &Hash,
        proof: &[Hash],
    ) {
        let fails =
            |old_size: u64, new_size: u64, old: &Hash, new: &Hash, proof: &[Hash], what: &str| {
                assert!(
                    verify_consistency(old_size, new_size, old, new, proof).is_err(),
                    "{what} verified ({old_size} to {new_size})"
                );
            };
        if old_size == 0 {
            // Every tree extends the empty one: only a wrong empty root or a proof can fail.
            fails(
                0,
                new_size,
                &flip(old_root, 5),
                new_root,
                proof,
                "a flipped empty root",
            );
            fails(
                0,
                new_size,
                old_root,
                new_root,
                &[*new_root],
                "a proof from size 0",
            );
            return;
        }
        for byte in [0, 17, 31] {
            fails(
                old_size,
                new_size,
                &flip(old_root, byte),
                new_root,
                proof,
                "a flipped old root",
            );
            fails(
                old_size,
                new_size,
                old_root,
                &flip(new_root, byte),
                proof,
                "a flipped new root",
            );
        }
        for at in 0..proof.len() {
            let mut wrong = proof.to_vec();
            wrong[at] = flip(&wrong[at], at * 7 + old_size as usize);
            fails(
                old_size,
                new_size,
                old_root,
                new_root,
                &wrong,
                "a flipped proof hash",
            );
        }
        if old_size == new_size {
            return;
        }
        fails(
            old_size,
            new_size,
            new_root,
            old_root,
            proof,
            "swapped roots",
        );
        fails(
            old_size,
            new_size,
            old_root,
            new_root,
            &[],
            "an empty proof",
        );
        for other in [old_size.wrapping_sub(1), old_size + 1, old_size ^ 2] {
            if other != old_size && other <= new_size {
                fails(
                    other,
                    new_size,
                    old_root,
                    new_root,
                    proof,
                    "another old size",
                );
            }
        }
        for other in [new_size * 2, new_size / 2] {
            if other != new_size && other >= old_size {
                fails(
                    old_size,
                    other,
                    old_root,
                    new_root,
                    proof,
                    "another new size",
                );
            }
        }
        fails(
            old_size,
            new_size,
            old_root,
            new_root,
            &[proof, &[*new_root]].concat(),
            "a longer proof",
        );
        fails(
            old_size,
            new_size,
            old_root,
            new_root,
            &[&[*old_root], proof].concat(),
            "a prefixed proof",
        );
        if let Some((_, shorter)) = proof.split_last() {
            fails(
                old_size,
                new_size,
                old_root,
                new_root,
                shorter,
                "a shorter proof",
            );
        }
    }

    #[test]
    fn every_inclusion_proof_up_to_size_70_verifies_and_any_tampering_fails() {
        let all = leaves(70);
        let (_, nodes) = build(&all);
        for size in 1..=70u64 {
            let root = root_of(&all[..size as usize]);
            for index in 0..size {
                let leaf = all[index as usize];
                let proof = inclusion_proof(index, size, &nodes).unwrap();
                assert_eq!(verify_inclusion(&leaf, index, size, &proof, &root), Ok(()));
                assert_inclusion_tampering_fails(&leaf, index, size, &proof, &root);
            }
        }
    }

    #[test]
    fn every_consistency_proof_up_to_size_70_verifies_and_any_tampering_fails() {
        let all = leaves(70);
        let (_, nodes) = build(&all);
        let roots: Vec<Hash> = (0..=70).map(|size| root_of(&all[..size])).collect();
        for new_size in 0..=70u64 {
            for old_size in 0..=new_size {
                let (old_root, new_root) = (&roots[old_size as usize], &roots[new_size as usize]);
                let proof = consistency_proof(old_size, new_size, &nodes).unwrap();
                assert_eq!(
                    verify_consistency(old_size, new_size, old_root, new_root, &proof),
                    Ok(()),
                    "{old_size} to {new_size}"
                );
                assert_consistency_tampering_fails(old_size, new_size, old_root, new_root, &proof);
            }
        }
    }

    #[test]
    fn proofs_ask_for_exactly_the_listed_nodes_and_no_others() {
        let all = leaves(70);
        let (_, nodes) = build(&all);
        for size in 1..=70u64 {
            for index in 0..size {
                let recording = Recording {
                    nodes: &nodes,
                    asked: RefCell::default(),
                };
                inclusion_proof(index, size, &recording).unwrap();
                assert_eq!(
                    recording.asked.into_inner(),
                    inclusion_proof_nodes(index, size).unwrap(),
                    "inclusion {index} in {size}"
                );
            }
            for old_size in 0..=size {
                let recording = Recording {
                    nodes: &nodes,
                    asked: RefCell::default(),
                };
                consistency_proof(old_size, size, &recording).unwrap();
                assert_eq!(
                    recording.asked.into_inner(),
                    consistency_proof_nodes(old_size, size).unwrap(),
                    "consistency {old_size} to {size}"
                );
            }
        }
    }

    #[test]
    fn large_trees_prove_with_logarithmically_many_node_fetches() {
        for size in [1024u64, 1025, 4093, 5000] {
            let all = leaves(size);
            let (frontier, nodes) = build(&all);
            let root = frontier.root();
            assert_eq!(root, root_of(&all));
            let height = 64 - (size - 1).leading_zeros() as usize; // ceil(log2 size)
            let cases = [0, 1, size / 3, size / 2, size - 2, size - 1];
            for index in cases {
                assert!(inclusion_proof_nodes(index, size).unwrap().len() <= 2 * height);
                let proof = inclusion_proof(index, size, &nodes).unwrap();
                assert_eq!(
                    verify_inclusion(&all[index as usize], index, size, &proof, &root),
                    Ok(())
                );
                assert_inclusion_tampering_fails(&all[index as usize], index, size, &proof, &root);
            }
            for old_size in cases.into_iter().chain([size, 512, 1023]) {
                assert!(consistency_proof_nodes(old_size, size).unwrap().len() <= 2 * height);
                let old_root = root_of(&all[..old_size as usize]);
                let proof = consistency_proof(old_size, size, &nodes).unwrap();
                assert_eq!(
                    verify_consistency(old_size, size, &old_root, &root, &proof),
                    Ok(())
                );
                assert_consistency_tampering_fails(old_size, size, &old_root, &root, &proof);
            }
        }
    }

    #[test]
    fn proofs_for_sizes_that_do_not_fit_are_refused() {
        let nodes = HashMap::new();
        assert_eq!(
            inclusion_proof(3, 3, &nodes),
            Err(AuditError::IndexOutOfRange { index: 3, size: 3 })
        );
        assert_eq!(
            inclusion_proof_nodes(0, 0),
            Err(AuditError::IndexOutOfRange { index: 0, size: 0 })
        );
        assert_eq!(
            consistency_proof(5, 4, &nodes),
            Err(AuditError::SizesOutOfOrder {
                old_size: 5,
                new_size: 4
            })
        );
        assert_eq!(consistency_proof(0, 9, &nodes), Ok(vec![]));
        assert_eq!(consistency_proof(9, 9, &nodes), Ok(vec![]));
        let root = empty_root();
        assert_eq!(
            verify_inclusion(&root, 0, 0, &[], &root),
            Err(AuditError::IndexOutOfRange { index: 0, size: 0 })
        );
        assert_eq!(
            verify_consistency(2, 1, &root, &root, &[]),
            Err(AuditError::SizesOutOfOrder {
                old_size: 2,
                new_size: 1
            })
        );
    }

    #[test]
    fn a_missing_node_is_named() {
        let (_, mut nodes) = build(&leaves(6));
        nodes.remove(&(1, 2));
        assert_eq!(
            inclusion_proof(0, 6, &nodes),
            Err(AuditError::MissingNode { level: 1, index: 2 })
        );
        assert_eq!(
            consistency_proof(4, 6, &nodes),
            Err(AuditError::MissingNode { level: 1, index: 2 })
        );
    }

    #[test]
    fn the_trivial_consistency_cases_are_held_strictly() {
        let (empty, one) = (empty_root(), leaf_hash(b"x"));
        assert_eq!(verify_consistency(0, 0, &empty, &empty, &[]), Ok(()));
        assert_eq!(verify_consistency(0, 1, &empty, &one, &[]), Ok(()));
        assert_eq!(verify_consistency(1, 1, &one, &one, &[]), Ok(()));
        assert_eq!(
            verify_consistency(0, 1, &one, &one, &[]),
            Err(AuditError::OldRootMismatch)
        );
        assert_eq!(
            verify_consistency(1, 1, &one, &empty, &[]),
            Err(AuditError::DifferentRootsForOneSize { size: 1 })
        );
        assert_eq!(
            verify_consistency(0, 1, &empty, &one, &[empty]),
            Err(AuditError::WrongProofLength {
                expected: 0,
                got: 1
            })
        );
        assert_eq!(
            verify_consistency(1, 1, &one, &one, &[empty]),
            Err(AuditError::WrongProofLength {
                expected: 0,
                got: 1
            })
        );
        assert_eq!(
            verify_consistency(1, 2, &one, &empty, &[]),
            Err(AuditError::WrongProofLength {
                expected: 1,
                got: 0
            })
        );
    }

    #[test]
    fn wrong_lengths_are_reported_with_the_length_needed() {
        let all = leaves(8);
        let (_, nodes) = build(&all);
        let root = root_of(&all);
        let proof = inclusion_proof(5, 8, &nodes).unwrap();
        assert_eq!(
            verify_inclusion(&all[5], 5, 8, &proof[..2], &root),
            Err(AuditError::WrongProofLength {
                expected: 3,
                got: 2
            })
        );
        let proof = consistency_proof(6, 8, &nodes).unwrap();
        assert_eq!(
            verify_consistency(6, 8, &root_of(&all[..6]), &root, &proof[..2]),
            Err(AuditError::WrongProofLength {
                expected: 3,
                got: 2
            })
        );
    }
}
