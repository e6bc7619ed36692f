//! `diplog.v1.Audit`: signed tree heads and Merkle proofs.

use tonic::{Request, Response, Status};

use super::status::invalid;
use crate::audit::Auditor;
use crate::domain::audit_head::SignedTreeHead;
use crate::domain::{EventId, non_negative};
use crate::proto::{self, audit_server::Audit};

pub struct AuditService {
    auditor: Auditor,
}

impl AuditService {
    pub fn new(auditor: Auditor) -> Self {
        Self { auditor }
    }
}

/// A size from the wire: 0 means the current head.
fn size(field: &'static str, raw: i64) -> Result<Option<u64>, Status> {
    let size = non_negative(raw).map_err(|e| invalid(field, e.to_string()))?;
    Ok((size > 0).then_some(size))
}

/// A signed head on the wire, with its checkpoint.
fn head(auditor: &Auditor, signed: SignedTreeHead) -> proto::SignedTreeHead {
    proto::SignedTreeHead {
        tree_size: signed.head.size as i64,
        root_hash: signed.head.root.to_vec(),
        timestamp_ms: signed.head.timestamp_ms as i64,
        signature: signed.signature.to_vec(),
        checkpoint: auditor.checkpoint(&signed.head),
    }
}

#[tonic::async_trait]
impl Audit for AuditService {
    async fn get_tree_head(
        &self,
        request: Request<proto::GetTreeHeadRequest>,
    ) -> Result<Response<proto::SignedTreeHead>, Status> {
        let size = size("tree_size", request.into_inner().tree_size)?;
        let signed = self.auditor.signed_head_at(size).await?;
        Ok(Response::new(head(&self.auditor, signed)))
    }

    async fn get_public_key(
        &self,
        _request: Request<()>,
    ) -> Result<Response<proto::PublicKey>, Status> {
        let signer = self.auditor.signer();
        Ok(Response::new(proto::PublicKey {
            ed25519: signer.public_key().to_bytes().to_vec(),
            pem: signer.public_key_pem(),
            vkey: self.auditor.verifier_key().to_string(),
            origin: self.auditor.verifier_key().name,
        }))
    }

    async fn get_inclusion_proof(
        &self,
        request: Request<proto::InclusionProofRequest>,
    ) -> Result<Response<proto::InclusionProof>, Status> {
        use proto::inclusion_proof_request::Event;
        let request = request.into_inner();
        let tree_size = size("tree_size", request.tree_size)?;
        let position = match request.event {
            Some(Event::Position(position)) => {
                non_negative(position).map_err(|e| invalid("position", e.to_string()))?
            }
            Some(Event::EventId(id)) => {
                let id = EventId::parse(&id).map_err(|e| invalid("event_id", e.to_string()))?;
                self.auditor.position_of(id.as_uuid()).await?
            }
            None => {
                return Err(invalid(
                    "event",
                    "a position or an event_id is required".into(),
                ));
            }
        };
        let proof = self.auditor.inclusion(position, tree_size).await?;
        Ok(Response::new(proto::InclusionProof {
            position: proof.position as i64,
            leaf_index: proof.position as i64 - 1,
            leaf_hash: proof.leaf_hash.to_vec(),
            audit_path: proof.path.iter().map(|h| h.to_vec()).collect(),
            tree_head: Some(head(&self.auditor, proof.head)),
        }))
    }

    async fn get_consistency_proof(
        &self,
        request: Request<proto::ConsistencyProofRequest>,
    ) -> Result<Response<proto::ConsistencyProof>, Status> {
        let request = request.into_inner();
        let old_size =
            non_negative(request.old_size).map_err(|e| invalid("old_size", e.to_string()))?;
        let new_size = size("new_size", request.new_size)?;
        let proof = self.auditor.consistency(old_size, new_size).await?;
        Ok(Response::new(proto::ConsistencyProof {
            old_head: Some(head(&self.auditor, proof.old)),
            new_head: Some(head(&self.auditor, proof.new)),
            proof: proof.path.iter().map(|h| h.to_vec()).collect(),
        }))
    }
}
