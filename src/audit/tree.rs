//! The stored audit tree: `merkle_nodes` and `tree_head` (see the `audit_tree` migration). The
//! SQL of the audit side lives here.

use std::collections::HashMap;

use sqlx::{PgConnection, PgExecutor};

use crate::domain::merkle::{AuditError, Frontier, Hash, Nodes};

/// The stored tree head: size, root, and the frontier to go on from.
pub async fn head<'e>(executor: impl PgExecutor<'e>) -> Result<Frontier, TreeError> {
    let (size, peaks): (i64, Vec<Vec<u8>>) = sqlx::query_as("select size, peaks from tree_head")
        .fetch_one(executor)
        .await?;
    let peaks = peaks.into_iter().map(to_hash).collect::<Result<_, _>>()?;
    Ok(Frontier::from_parts(size as u64, peaks)?)
}

/// Stores the nodes a batch of leaves completed and moves the head from `from` to `to`, in the
/// caller's transaction. Fails if another builder moved the head meanwhile.
pub async fn advance(
    transaction: &mut PgConnection,
    from: u64,
    to: &Frontier,
    nodes: &[(u32, u64, Hash)],
) -> Result<(), TreeError> {
    let levels: Vec<i16> = nodes.iter().map(|(l, _, _)| *l as i16).collect();
    let indexes: Vec<i64> = nodes.iter().map(|(_, i, _)| *i as i64).collect();
    let hashes: Vec<Vec<u8>> = nodes.iter().map(|(_, _, h)| h.to_vec()).collect();
    sqlx::query(
        "insert into merkle_nodes (level, index, hash) \
         select * from unnest($1::smallint[], $2::bigint[], $3::bytea[])",
    )
    .bind(&levels)
    .bind(&indexes)
    .bind(&hashes)
    .execute(&mut *transaction)
    .await?;
    let peaks: Vec<Vec<u8>> = to.peaks().iter().map(|p| p.to_vec()).collect();
    let moved = sqlx::query(
        "update tree_head set size = $2, root = $3, peaks = $4, updated_at = now() \
         where size = $1",
    )
    .bind(from as i64)
    .bind(to.size() as i64)
    .bind(to.root().to_vec())
    .bind(&peaks)
    .execute(&mut *transaction)
    .await?
    .rows_affected();
    if moved == 1 {
        Ok(())
    } else {
        Err(TreeError::Moved { from })
    }
}

/// The stored perfect subtrees asked for, fetched in one query.
pub async fn fetch<'e>(
    executor: impl PgExecutor<'e>,
    wanted: &[(u32, u64)],
) -> Result<StoredNodes, TreeError> {
    let levels: Vec<i16> = wanted.iter().map(|(l, _)| *l as i16).collect();
    let indexes: Vec<i64> = wanted.iter().map(|(_, i)| *i as i64).collect();
    let rows: Vec<(i16, i64, Vec<u8>)> = sqlx::query_as(
        "select n.level, n.index, n.hash from merkle_nodes n \
         join unnest($1::smallint[], $2::bigint[]) as w(level, index) \
           on n.level = w.level and n.index = w.index",
    )
    .bind(&levels)
    .bind(&indexes)
    .fetch_all(executor)
    .await?;
    let mut nodes = HashMap::with_capacity(rows.len());
    for (level, index, hash) in rows {
        nodes.insert((level as u32, index as u64), to_hash(hash)?);
    }
    Ok(StoredNodes(nodes))
}

/// The stored nodes at `level` with indexes `first..first + count`, in index order: the
/// bottom row of a tlog tile. Fewer than `count` if the tree has not reached them.
pub async fn nodes_in_row<'e>(
    executor: impl PgExecutor<'e>,
    level: u32,
    first: u64,
    count: u64,
) -> Result<Vec<Hash>, TreeError> {
    let hashes: Vec<Vec<u8>> = sqlx::query_scalar(
        "select hash from merkle_nodes where level = $1 and index >= $2 and index < $3 \
         order by index",
    )
    .bind(level as i16)
    .bind(first as i64)
    .bind((first + count) as i64)
    .fetch_all(executor)
    .await?;
    hashes.into_iter().map(to_hash).collect()
}

/// Perfect subtrees read from `merkle_nodes`.
pub struct StoredNodes(HashMap<(u32, u64), Hash>);

impl Nodes for StoredNodes {
    fn node(&self, level: u32, index: u64) -> Result<Hash, AuditError> {
        self.0
            .get(&(level, index))
            .copied()
            .ok_or(AuditError::MissingNode { level, index })
    }
}

fn to_hash(bytes: Vec<u8>) -> Result<Hash, TreeError> {
    bytes
        .try_into()
        .map_err(|bytes: Vec<u8>| TreeError::BadHash { len: bytes.len() })
}

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("a stored hash is {len} bytes, not 32")]
    BadHash { len: usize },
    #[error("the tree head moved from size {from} while this builder worked")]
    Moved { from: u64 },
    #[error("the log has no event at position {position}, which the tree needs next")]
    Gap { position: u64 },
}
