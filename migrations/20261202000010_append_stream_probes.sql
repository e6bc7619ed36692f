-- The fast append's expectation check probes `streams` by its primary key, one stream at a
-- time, whatever the statistics say.
--
-- Measured: the check read every stream's version through `left join streams s on
-- s.stream_id = c.stream_id`. PL/pgSQL caches a generic plan for it, which cannot see how many
-- appends a group holds (it guesses 10) and was planned while `streams` was small: a hash join
-- over a sequential scan of `streams` (auto_explain: `Hash Right Join`, `Seq Scan on streams s`,
-- 20,096 rows read for a group of 8 appends, 2.3 ms). It stays until the next ANALYZE
-- replans it, and even with fresh statistics a hash join wins on paper until `streams` has tens
-- of thousands of rows. pg_stat_statements gave the check a third of the function's time at 16
-- clients (0.175 of 0.528 ms per call), and perf showed hash_bytes, ExecScanHashBucket and
-- HeapTupleSatisfiesVisibility in the writer's backend.
--
-- Now each append's stored version is a scalar subquery on the primary key (a SubPlan, run once
-- per append in the group), and the function's own settings keep that plan:
--   plan_cache_mode = force_generic_plan: one plan, made once per connection. Left to itself,
--     PL/pgSQL would sometimes re-plan every call (when the generic plan's guess of 10 appends
--     looks dearer than the custom plans for the group sizes seen), which costs more than the
--     statements themselves.
--   enable_seqscan = off: that plan probes the index even if it was made while `streams` had a
--     single page, when a scan of the page would look cheaper. The other statements here read
--     only `log_head` (one row; a scan is their only way) and the arrays passed in.
--   jit = off: disabling scans adds a large constant to those `log_head` plans' cost, which
--     would otherwise cross jit_above_cost and compile them on every call (measured: 70 ms per
--     call instead of under 1 ms).
-- Same arguments and result as before; the writer is unchanged.

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

alter function diplog_append(text[], smallint[], bigint[], integer[], integer[], uuid[], text[],
                             text[], uuid[], uuid[], text[], text[])
    set plan_cache_mode = force_generic_plan
    set enable_seqscan = off
    set jit = off;
