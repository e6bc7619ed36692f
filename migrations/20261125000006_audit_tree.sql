-- The audit Merkle tree (RFC 6962) over the log in position order. Leaves are the SHA-256
-- leaf hashes of each event's canonical bytes (src/domain/canonical.rs); interior nodes are
-- stored for every perfect subtree, so any inclusion or consistency proof needs O(log n)
-- lookups. Built right behind the appends by one tree builder at a time (an advisory lock);
-- `tree_head` never claims an event whose leaf is not stored.
create table merkle_nodes (
    -- 0 for a leaf; a node at level L covers leaves [index * 2^L, (index + 1) * 2^L).
    level smallint not null check (level between 0 and 63),
    index bigint not null check (index >= 0),
    hash bytea not null check (length(hash) = 32),
    primary key (level, index)
);

create table tree_head (
    singleton boolean primary key default true check (singleton),
    size bigint not null check (size >= 0),
    root bytea not null check (length(root) = 32),
    -- The roots of the perfect subtrees covering [0, size), largest first: enough to go on
    -- appending without reading the tree.
    peaks bytea[] not null,
    updated_at timestamptz not null default now()
);
insert into tree_head (size, root, peaks) values (0, sha256(''), '{}');

-- Hashes, once written, never change.
create function merkle_nodes_reject_change() returns trigger
language plpgsql as $$
begin
    raise exception 'the merkle_nodes table is append-only: % is not allowed', tg_op
        using errcode = 'insufficient_privilege';
end;
$$;

create trigger merkle_nodes_no_update_or_delete
    before update or delete on merkle_nodes
    for each row execute function merkle_nodes_reject_change();

create trigger merkle_nodes_no_truncate
    before truncate on merkle_nodes
    for each statement execute function merkle_nodes_reject_change();
