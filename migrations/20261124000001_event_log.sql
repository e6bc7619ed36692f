-- The event log: immutable events in a gapless, commit-ordered global sequence.

-- One row holding the last position handed out. Every append transaction locks it
-- (`select ... for update`), takes the next positions and updates it before committing, so
-- positions are allocated one transaction at a time: position order is commit order, and a
-- rolled-back transaction leaves no hole (unlike a sequence or bigserial).
create table log_head (
    singleton boolean primary key default true check (singleton),
    position bigint not null check (position >= 0),
    -- recorded_at of the last event; new events never get an earlier time, so recorded_at is
    -- non-decreasing in position order and "as of time T" maps to a prefix of the log.
    last_recorded_at timestamptz not null default '-infinity'
);
insert into log_head (position) values (0);

-- Each stream's current version, so appends check expected versions without counting events.
create table streams (
    stream_id text primary key,
    version bigint not null check (version > 0),
    created_at timestamptz not null,
    updated_at timestamptz not null
);

create table events (
    position bigint primary key check (position > 0),
    event_id uuid not null,
    stream_id text not null,
    stream_version bigint not null check (stream_version > 0),
    event_type text not null,
    -- The payload twice: as jsonb for auditors' plain SQL, and as the exact text appended,
    -- which is what reads return.
    data jsonb not null,
    data_text text not null,
    correlation_id uuid,
    causation_id uuid,
    -- Free key/values as a JSON object of strings.
    metadata jsonb not null default '{}',
    recorded_at timestamptz not null,
    appended_by text not null,
    constraint events_event_id_key unique (event_id),
    constraint events_stream_version_key unique (stream_id, stream_version)
);

create index events_event_type_position_idx on events (event_type, position);

-- Append-only, enforced by the database itself: no UPDATE, DELETE or TRUNCATE, whoever asks.
create function events_reject_change() returns trigger
language plpgsql as $$
begin
    raise exception 'the events table is append-only: % is not allowed', tg_op
        using errcode = 'insufficient_privilege',
              hint = 'correct or retract an event by appending a new one';
end;
$$;

create trigger events_no_update_or_delete
    before update or delete on events
    for each row execute function events_reject_change();

create trigger events_no_truncate
    before truncate on events
    for each statement execute function events_reject_change();
