-- Typed diplomatic events live in `events` like any other. This index serves reads by the
-- time events happened: the `diplog.occurred_from` metadata, fixed-width RFC 3339 UTC text.
-- (Reads by stream use the unique (stream_id, stream_version) index.)
create index events_occurred_from_idx on events ((metadata->>'diplog.occurred_from'))
    where metadata ? 'diplog.occurred_from';
