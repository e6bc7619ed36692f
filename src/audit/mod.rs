//! The audit side of the log: the Merkle tree built right behind the appends, signed tree
//! heads, and inclusion and consistency proofs, so an auditor can check with the server's
//! public key alone that the history they saw has not been rewritten since.

pub mod archive;
pub mod builder;
pub mod keys;
pub mod signer;
pub mod tiles;
pub mod tree;
pub mod verify;
pub mod witness;
pub mod witness_server;

use sqlx::PgPool;

use crate::domain::audit_head::{SignedTreeHead, TreeHead};
use crate::domain::checkpoint::{Checkpoint, LogOrigin, VerifierKey};
use crate::domain::merkle::{self, AuditError, Hash};
use signer::TreeSigner;
use tree::TreeError;

/// Answers about the tree: signed heads and proofs. Cheap to clone.
#[derive(Clone)]
pub struct Auditor {
    pool: PgPool,
    signer: TreeSigner,
    /// The log's name in its checkpoints and the name of its key there.
    origin: LogOrigin,
    /// The witnesses' cosignatures of recent checkpoints.
    cosignatures: witness::Cosignatures,
}

#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// `field` names the request's size at fault (`tree_size`, `old_size`, `new_size`).
    #[error("{field} {size} is past the current tree head {head}")]
    PastHead {
        field: &'static str,
        size: u64,
        head: u64,
    },
    #[error(
        "old_size {old_size} is greater than new_size {new_size}: a consistency proof goes \
         from a tree to a larger one"
    )]
    OldAfterNew { old_size: u64, new_size: u64 },
    #[error("position {position} is not in a tree of size {size}")]
    NotInTree { position: u64, size: u64 },
    #[error("no event has id {0}")]
    UnknownEvent(uuid::Uuid),
    #[error(transparent)]
    Tree(#[from] TreeError),
}

impl From<sqlx::Error> for ProofError {
    fn from(error: sqlx::Error) -> Self {
        Self::Tree(error.into())
    }
}

impl From<AuditError> for ProofError {
    fn from(error: AuditError) -> Self {
        Self::Tree(error.into())
    }
}

/// An inclusion proof, with what it proves.
#[derive(Debug, Clone)]
pub struct InclusionProof {
    pub position: u64,
    pub tree_size: u64,
    pub leaf_hash: Hash,
    pub path: Vec<Hash>,
    /// The root of the tree of `tree_size`, signed.
    pub head: SignedTreeHead,
}

#[derive(Debug, Clone)]
pub struct ConsistencyProof {
    pub old: SignedTreeHead,
    pub new: SignedTreeHead,
    pub path: Vec<Hash>,
}

impl Auditor {
    pub fn new(pool: PgPool, signer: TreeSigner, origin: LogOrigin) -> Self {
        Self {
            pool,
            signer,
            origin,
            cosignatures: witness::Cosignatures::default(),
        }
    }

    pub fn signer(&self) -> &TreeSigner {
        &self.signer
    }

    /// The key that checks this log's checkpoints, named by its origin.
    pub fn verifier_key(&self) -> VerifierKey {
        VerifierKey::new(&self.origin, self.signer.public_key().to_bytes())
    }

    /// The C2SP checkpoint of `head` with the witnesses' cosignatures of its size.
    pub fn checkpoint(&self, head: &TreeHead) -> String {
        self.log_checkpoint(head) + &self.cosignatures.lines_for(head.size)
    }

    /// The C2SP checkpoint of `head` as this log signs it: a signed note over origin, size
    /// and root. Ed25519 signatures are deterministic, so a size's is the same text each time.
    pub fn log_checkpoint(&self, head: &TreeHead) -> String {
        let checkpoint = Checkpoint {
            origin: self.origin.to_string(),
            size: head.size,
            root: head.root,
        };
        checkpoint.signed(&self.verifier_key(), |body| self.signer.sign_bytes(body))
    }

    /// The current tree head, signed now.
    pub async fn signed_head(&self) -> Result<SignedTreeHead, ProofError> {
        let frontier = tree::head(&self.pool).await?;
        Ok(self.sign(frontier.size(), frontier.root()))
    }

    /// The tree head of an earlier size (or the current one for `None`), signed now.
    pub async fn signed_head_at(&self, size: Option<u64>) -> Result<SignedTreeHead, ProofError> {
        self.head_at("tree_size", size).await
    }

    /// `signed_head_at`, naming the size as `field` if it is past the head.
    async fn head_at(
        &self,
        field: &'static str,
        size: Option<u64>,
    ) -> Result<SignedTreeHead, ProofError> {
        let current = tree::head(&self.pool).await?;
        let size = size.unwrap_or(current.size());
        if size > current.size() {
            return Err(ProofError::PastHead {
                field,
                size,
                head: current.size(),
            });
        }
        if size == current.size() {
            return Ok(self.sign(size, current.root()));
        }
        let nodes = tree::fetch(&self.pool, &root_nodes(size)).await?;
        Ok(self.sign(size, root_at(size, &nodes)?))
    }

    fn sign(&self, size: u64, root: Hash) -> SignedTreeHead {
        self.signer.sign(TreeHead {
            size,
            root,
            timestamp_ms: chrono::Utc::now().timestamp_millis().max(0) as u64,
        })
    }

    /// The position of the event with this id.
    pub async fn position_of(&self, event_id: uuid::Uuid) -> Result<u64, ProofError> {
        crate::store::position_of(&self.pool, event_id)
            .await?
            .ok_or(ProofError::UnknownEvent(event_id))
    }

    /// Proves that the event at `position` is in the tree of `tree_size` (the current head's
    /// for `None`).
    pub async fn inclusion(
        &self,
        position: u64,
        tree_size: Option<u64>,
    ) -> Result<InclusionProof, ProofError> {
        let head = self.signed_head_at(tree_size).await?;
        let size = head.head.size;
        if position == 0 || position > size {
            return Err(ProofError::NotInTree { position, size });
        }
        let index = position - 1;
        let mut wanted = merkle::inclusion_proof_nodes(index, size)?;
        wanted.push((0, index));
        let nodes = tree::fetch(&self.pool, &wanted).await?;
        let path = merkle::inclusion_proof(index, size, &nodes)?;
        use merkle::Nodes;
        Ok(InclusionProof {
            position,
            tree_size: size,
            leaf_hash: nodes.node(0, index)?,
            path,
            head,
        })
    }

    /// Proves that the tree of `new_size` (the current head's for `None`) extends the tree of
    /// `old_size`.
    pub async fn consistency(
        &self,
        old_size: u64,
        new_size: Option<u64>,
    ) -> Result<ConsistencyProof, ProofError> {
        if let Some(new_size) = new_size
            && old_size > new_size
        {
            return Err(ProofError::OldAfterNew { old_size, new_size });
        }
        let new = self.head_at("new_size", new_size).await?;
        if old_size > new.head.size {
            // Only when new_size is the current head's.
            return Err(ProofError::PastHead {
                field: "old_size",
                size: old_size,
                head: new.head.size,
            });
        }
        let old = self.signed_head_at(Some(old_size)).await?;
        let nodes = tree::fetch(
            &self.pool,
            &merkle::consistency_proof_nodes(old_size, new.head.size)?,
        )
        .await?;
        let path = merkle::consistency_proof(old_size, new.head.size, &nodes)?;
        Ok(ConsistencyProof { old, new, path })
    }
}

/// The perfect subtrees whose hashes make the root of a tree of `size`: one per set bit of the
/// size, largest first.
fn root_nodes(size: u64) -> Vec<(u32, u64)> {
    let mut offset = 0u64;
    let mut nodes = Vec::new();
    for level in (0..64u32).rev() {
        if size & (1 << level) != 0 {
            nodes.push((level, offset >> level));
            offset += 1 << level;
        }
    }
    nodes
}

/// RFC 6962 MTH of the first `size` leaves, from the perfect subtrees that cover them: a
/// split at the largest power of two below `size` leaves a perfect left subtree, so the root is
/// the right-to-left fold of node hashes over them.
fn root_at(size: u64, nodes: &impl merkle::Nodes) -> Result<Hash, AuditError> {
    let mut hashes = root_nodes(size)
        .into_iter()
        .map(|(level, index)| nodes.node(level, index))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(mut root) = hashes.pop() else {
        return Ok(merkle::empty_root());
    };
    while let Some(left) = hashes.pop() {
        root = merkle::node_hash(&left, &root);
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::domain::merkle::{Frontier, Nodes, leaf_hash, root_of};

    struct Memory(HashMap<(u32, u64), Hash>);

    impl Nodes for Memory {
        fn node(&self, level: u32, index: u64) -> Result<Hash, AuditError> {
            self.0
                .get(&(level, index))
                .copied()
                .ok_or(AuditError::MissingNode { level, index })
        }
    }

    #[test]
    fn the_root_of_every_earlier_size_comes_from_the_stored_perfect_subtrees() {
        let leaves: Vec<Hash> = (0..70u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut frontier = Frontier::new();
        let mut stored = HashMap::new();
        for leaf in &leaves {
            for (level, index, hash) in frontier.push(*leaf) {
                stored.insert((level, index), hash);
            }
        }
        let memory = Memory(stored);
        for size in 0..=70 {
            assert_eq!(
                root_at(size, &memory).unwrap(),
                root_of(&leaves[..size as usize]),
                "size {size}"
            );
        }
    }
}
