-- API tokens. The token text (`diplog_<lookup_id>_<secret>`) is shown once, at creation, and
-- never stored: only a random salt and SHA-256(salt || secret). `lookup_id` is public (it is
-- in the token) and finds the row without scanning; `name` is what the log records as
-- `appended_by` on the events the token appends.
create table api_tokens (
    name text primary key,
    lookup_id text not null unique,
    salt bytea not null,
    hash bytea not null,
    roles text[] not null check (cardinality(roles) > 0),
    created_at timestamptz not null default now(),
    expires_at timestamptz,
    revoked_at timestamptz
);

-- Every change to a token notifies channel `diplog_tokens`, so each server drops its cache of
-- authenticated tokens at once: a revocation takes effect on every server, not only the one
-- (or the CLI) that made it.
create function api_tokens_notify() returns trigger
language plpgsql as $$
begin
    perform pg_notify('diplog_tokens', '');
    return null;
end;
$$;

create trigger api_tokens_changed
    after insert or update or delete on api_tokens
    for each statement execute function api_tokens_notify();
