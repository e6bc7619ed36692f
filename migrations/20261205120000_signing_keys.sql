-- Which Ed25519 keys have signed this log's tree heads, in the order they were adopted. A
-- server refuses to start with another key than the latest one here (unless the operator
-- rotates on purpose, which also appends an event to the log), so a key made by mistake
-- (another working directory, a lost file) cannot silently replace the one auditors know.
create table signing_keys (
    public_key bytea primary key check (length(public_key) = 32),
    -- The log's head when the key was adopted.
    adopted_at_position bigint not null check (adopted_at_position >= 0),
    adopted_at timestamptz not null default clock_timestamp(),
    previous_key bytea references signing_keys (public_key)
);

create function signing_keys_reject_change() returns trigger
language plpgsql as $$
begin
    raise exception 'the signing_keys table is append-only: % is not allowed', tg_op
        using errcode = 'insufficient_privilege';
end;
$$;

create trigger signing_keys_append_only
    before update or delete on signing_keys
    for each row execute function signing_keys_reject_change();
create trigger signing_keys_no_truncate
    before truncate on signing_keys
    for each statement execute function signing_keys_reject_change();
