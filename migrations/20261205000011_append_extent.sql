-- Each event records the extent of the append that wrote it, so that a retry can be held to
-- repeating exactly one earlier append (README "Idempotency"): the same ids, in the same
-- order, no more and no fewer. Positions within an append are consecutive, so its extent is
-- its first position and its number of events; `append_events` holds that number on the
-- append's first event and 0 on the others. A retry of events at positions p .. p+k-1 (in
-- its order) repeats one append exactly when the event at p has append_events = k.
--
-- Null where it is unknown: events written before this migration, and events restored from an
-- export (which does not carry it). For those the writer keeps the earlier rule (every id
-- written, with the same content, in the same stream). Adding a nullable column without a
-- default rewrites nothing. The column is not part of an event's canonical bytes (the audit
-- leaves): it says how the event was appended, not what was recorded.
alter table events add column append_events integer;

-- diplog_append as in 20261202000010_append_stream_probes.sql, also writing append_events.

create or replace function diplog_append(
    c_stream_ids text[],
    c_kinds smallint[],
    c_expected bigint[],
    c_counts integer[],
    e_command integer[],
    e_ids uuid[],
    e_types text[],
    e_data text[],
    e_correlation_ids uuid[],
    e_causation_ids uuid[],
    e_metadata text[],
    e_appended_by text[],
    out appended boolean,
    out first_position bigint,
    out recorded_at timestamptz,
    out start_versions bigint[]
)
language plpgsql volatile as $$
declare
    v_head bigint;
    v_expectations_hold boolean;
begin
    select h.position, greatest(clock_timestamp(), h.last_recorded_at)
        into v_head, recorded_at
        from log_head h
        for update;
    appended := false;
    -- Each append's stream version before it: the stored version plus the events of earlier
    -- appends to the same stream in this group.
    with commands as (
        select u.stream_id, u.kind, u.expected, u.n, u.i
        from unnest(c_stream_ids, c_kinds, c_expected, c_counts)
            with ordinality as u(stream_id, kind, expected, n, i)
    ), before as (
        select c.i, c.kind, c.expected,
               coalesce((select s.version from streams s where s.stream_id = c.stream_id), 0)
                   + coalesce(sum(c.n) over (
                       partition by c.stream_id order by c.i
                       rows between unbounded preceding and 1 preceding), 0) as version
        from commands c
    )
    select array_agg(b.version order by b.i),
           bool_and(case b.kind
                        when 0 then true
                        when 1 then b.version = 0
                        when 2 then b.version > 0
                        else b.version = b.expected
                    end)
        into start_versions, v_expectations_hold
        from before b;
    if not v_expectations_hold then
        return;
    end if;

    -- An event's version: its append's start version plus its place within the append.
    -- An append's first event also records how many events the append wrote (see above).
    insert into events (position, event_id, stream_id, stream_version, event_type, data,
                        data_text, correlation_id, causation_id, metadata, recorded_at,
                        appended_by, append_events)
    select v_head + u.i, u.id, c_stream_ids[u.command],
           start_versions[u.command] + row_number() over w,
           u.event_type, u.data::jsonb, u.data, u.correlation_id, u.causation_id,
           u.metadata::jsonb, diplog_append.recorded_at, u.appended_by,
           case when row_number() over w = 1 then c_counts[u.command] else 0 end
    from unnest(e_command, e_ids, e_types, e_data, e_correlation_ids, e_causation_ids,
                e_metadata, e_appended_by)
        with ordinality as u(command, id, event_type, data, correlation_id, causation_id,
                             metadata, appended_by, i)
    window w as (partition by u.command order by u.i);

    insert into streams (stream_id, version, created_at, updated_at)
    select u.stream_id, max(u.start_version + u.n), diplog_append.recorded_at,
           diplog_append.recorded_at
    from unnest(c_stream_ids, start_versions, c_counts) as u(stream_id, start_version, n)
    group by u.stream_id
    on conflict (stream_id) do update
        set version = excluded.version, updated_at = excluded.updated_at;

    update log_head
        set position = v_head + cardinality(e_ids),
            last_recorded_at = diplog_append.recorded_at;
    appended := true;
    first_position := v_head + 1;
end;
$$;

alter function diplog_append(text[], smallint[], bigint[], integer[], integer[], uuid[], text[],
                             text[], uuid[], uuid[], text[], text[])
    set plan_cache_mode = force_generic_plan
    set enable_seqscan = off
    set jit = off;
