-- The fast append without its check for event ids already written: the unique index on
-- event_id makes that check anyway while inserting. A reused id now fails the call with
-- unique_violation (23505) and writes nothing, and the writer takes the careful path, as it did
-- for `appended = false`.
--
-- Measured: the check was `exists (select 1 from events where event_id = any(e_ids))`, and
-- PL/pgSQL caches a generic plan for it after a few calls. Planned while `events` was small, that
-- plan is a sequential scan, kept until the next ANALYZE of `events`: on a fresh log, every group
-- then read the whole table (half the function's time after 10,000 events; perf showed
-- HeapTupleSatisfiesVisibility and uuid_eq at the top of PostgreSQL's profile).
--
-- The careful path's lookups (`diplog_lock_head`) are planned afresh on every call for the same
-- reason; it runs only for conflicts and retries, so the planning costs little.

alter function diplog_lock_head(text[], uuid[]) set plan_cache_mode = force_custom_plan;

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
               coalesce(s.version, 0) + coalesce(sum(c.n) over (
                   partition by c.stream_id order by c.i
                   rows between unbounded preceding and 1 preceding), 0) as version
        from commands c
        left join streams s on s.stream_id = c.stream_id
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
    insert into events (position, event_id, stream_id, stream_version, event_type, data,
                        data_text, correlation_id, causation_id, metadata, recorded_at,
                        appended_by)
    select v_head + u.i, u.id, c_stream_ids[u.command],
           start_versions[u.command]
               + row_number() over (partition by u.command order by u.i),
           u.event_type, u.data::jsonb, u.data, u.correlation_id, u.causation_id,
           u.metadata::jsonb, diplog_append.recorded_at, u.appended_by
    from unnest(e_command, e_ids, e_types, e_data, e_correlation_ids, e_causation_ids,
                e_metadata, e_appended_by)
        with ordinality as u(command, id, event_type, data, correlation_id, causation_id,
                             metadata, appended_by, i);

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
