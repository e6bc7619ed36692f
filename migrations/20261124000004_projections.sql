-- Projections: read models derived from the log, kept current by one runner per projection
-- (src/projections/runner.rs). Unlike `events`, these tables are mutable: they hold derived
-- state that can always be rebuilt from the log.

-- One row per projection: which generation of its rows is live and the log position those
-- rows reflect. The runner writes a batch's rows and the new position in one transaction, so
-- after a crash the rows and the checkpoint still agree and no event is applied twice or
-- skipped. Readers take `generation` from here, so a rebuild swaps in atomically.
create table projection_checkpoints (
    projection text primary key,
    -- The model version that wrote the live generation; another version is rebuilt.
    version int not null,
    generation bigint not null check (generation > 0),
    position bigint not null check (position >= 0),
    -- A rebuild in progress: its generation (live + 1) and how far it has read the log.
    building_generation bigint,
    building_position bigint check (building_position >= 0),
    -- Set by `diplog projections rebuild` (or an operator); cleared when the rebuild swaps in.
    rebuild_requested boolean not null default false,
    updated_at timestamptz not null,
    check ((building_generation is null) = (building_position is null))
);

-- The rows of every generation of every projection. A rebuild writes generation g + 1 beside
-- the live generation g, which keeps answering until the swap; g's rows are deleted then.
create table projection_rows (
    projection text not null,
    generation bigint not null,
    key text not null,
    data jsonb not null,
    actors text[] not null,
    states text[] not null,
    status text not null,
    sort_key text not null,
    primary key (projection, generation, key)
);

-- Queries filter by an actor or by states a row concerns (`actors @> array[..]`), and list by
-- status in sort order.
create index projection_rows_actors_idx on projection_rows using gin (actors);
create index projection_rows_states_idx on projection_rows using gin (states);
create index projection_rows_status_idx
    on projection_rows (projection, generation, status, sort_key);

-- The last position recorded at or before `t` (0 if none), for "as of a time" queries.
-- recorded_at never decreases along the log and positions are gapless (1..head), so a binary
-- search over the primary key answers in about log2(head) index probes, with no index on
-- recorded_at (which every append would pay for). STABLE: every probe sees the caller's
-- snapshot, so the head and the events agree.
create function diplog_position_at(t timestamptz) returns bigint
language plpgsql stable as $$
declare
    -- Invariant: position `lo` was recorded at or before t (0: nothing was), and every
    -- position above `hi` was recorded after t.
    lo bigint := 0;
    hi bigint;
    mid bigint;
begin
    select h.position into hi from log_head h;
    while lo < hi loop
        mid := lo + (hi - lo + 1) / 2;
        if (select e.recorded_at from events e where e.position = mid) <= t then
            lo := mid;
        else
            hi := mid - 1;
        end if;
    end loop;
    return lo;
end;
$$;
