-- A table of its own for each generation of each projection's rows (issue 20), so that a
-- rebuild writes without the secondary indexes, builds them once at the end and drops the old
-- generation instead of deleting it row by row.
--
-- `projection_rows` becomes a partitioned table: a partition per projection
-- (`projection_rows_<projection>`, by list of `projection`), itself partitioned by
-- generation (`projection_rows_<projection>_<generation>`, by list of `generation`). Why
-- partitions rather than free-standing tables swapped by name: readers keep querying
-- `projection_rows` with the generation they take from the checkpoint in the same statement
-- (one snapshot), exactly as before, and PostgreSQL keeps a partition out of every query
-- until it is attached; a table per generation would have readers build their SQL from a
-- table name read in an earlier statement. Why two levels: attaching and detaching lock the
-- partitioned parent (SHARE UPDATE EXCLUSIVE), and with a parent per projection a swap
-- waits for that projection's readers only; and a generation's partition constraint is then
-- `generation = g`, which a CHECK constraint on the new table implies, so attaching it reads
-- none of its rows.
--
-- The life of a generation (src/projections/engine/runner/rebuild.rs):
-- 1. `diplog_projection_generation_create`: a free-standing table with the parent's columns,
--    its primary key (the runner's upserts and its lookups by key need it while it fills)
--    and the CHECK constraint, and no other index. Readers cannot see it.
-- 2. The runner COPYs and upserts into it by name.
-- 3. `diplog_projection_generation_finish`: builds the secondary indexes, once, and attaches
--    it to its projection's parent, in the transaction that makes it live.
-- 4. The generation it replaced is detached (CONCURRENTLY: readers of the projection are not
--    blocked) and dropped. A runner that finds other generations of its projection (a build
--    killed half-way, an old generation not yet dropped) drops them the same way.
--
-- Only the primary key is declared on `projection_rows` itself (each generation's key index
-- is attached to it), so upserts through the parent keep working; the other indexes exist
-- per generation.

alter table projection_rows rename to projection_rows_unpartitioned;
alter table projection_rows_unpartitioned
    rename constraint projection_rows_pkey to projection_rows_unpartitioned_pkey;

-- The same columns (the search projection's generated `search_vector` included).
create table projection_rows (
    like projection_rows_unpartitioned including generated including defaults,
    primary key (projection, generation, key)
) partition by list (projection);

-- The table name of a projection's parent, or of one of its generations.
create function diplog_projection_table(p text, g bigint default null) returns text
language sql immutable as $$
    select 'projection_rows_' || p || coalesce('_' || g::text, '')
$$;

-- Creates generation `g` of projection `p` as a free-standing table, empty, with its
-- primary key only (a leftover of that name, from a build that was killed, is dropped).
-- Creates the projection's parent first if it has none (the first time its runner starts).
create function diplog_projection_generation_create(p text, g bigint) returns void
language plpgsql as $$
begin
    if not exists (
        select from pg_class
        where relnamespace = (select oid from pg_namespace where nspname = current_schema())
          and relname = diplog_projection_table(p)
    ) then
        execute format(
            'create table %I partition of projection_rows for values in (%L) '
            'partition by list (generation)',
            diplog_projection_table(p), p);
    end if;
    execute format('drop table if exists %I', diplog_projection_table(p, g));
    execute format(
        'create table %I (like projection_rows including generated including defaults, '
        'primary key (projection, generation, key), '
        'constraint %I check (projection = %L and generation = %s))',
        diplog_projection_table(p, g), diplog_projection_table(p, g) || '_bound', p, g);
end;
$$;

-- Builds the secondary indexes of generation `g` of `p` (those it has not got yet: a build
-- that looked rows up by status or states made those indexes then) and attaches it to its projection's
-- parent; in the caller's transaction, which makes it live. Queries filter by an actor or by
-- states a row concerns (`actors @> array[..]`), list by status in sort order, and the search
-- projection's by text.
create function diplog_projection_generation_finish(p text, g bigint) returns void
language plpgsql as $$
declare
    t text := diplog_projection_table(p, g);
begin
    execute format('create index if not exists %I on %I using gin (actors)', t || '_actors', t);
    execute format('create index if not exists %I on %I using gin (states)', t || '_states', t);
    execute format('create index if not exists %I on %I (status, sort_key)', t || '_status', t);
    if p = 'search' then
        execute format('create index if not exists %I on %I using gin (search_vector)', t || '_search', t);
    end if;
    execute format('alter table %I attach partition %I for values in (%s)',
        diplog_projection_table(p), t, g);
end;
$$;

-- The tables of `p`'s generations other than `live`: attached ones (a replaced generation
-- not yet dropped; `detach_pending` if a concurrent detach was interrupted) and free-standing
-- ones (a build that was interrupted).
create function diplog_projection_leftovers(p text, live bigint)
returns table (name text, attached boolean, detach_pending boolean)
language sql stable as $$
    select c.relname::text, i.inhrelid is not null, coalesce(i.inhdetachpending, false)
    from pg_class c
    left join pg_inherits i on i.inhrelid = c.oid
    where c.relnamespace = (select oid from pg_namespace where nspname = current_schema())
      and c.relkind = 'r'
      and left(c.relname, length(diplog_projection_table(p)) + 1) = diplog_projection_table(p) || '_'
      and substr(c.relname, length(diplog_projection_table(p)) + 2) ~ '^[0-9]+$'
      and c.relname <> diplog_projection_table(p, live)
$$;

-- Existing rows move: each projection's live generation into a table of its own, with its
-- indexes; rows of other generations (an unfinished build, which then starts again) do not.
do $$
declare
    c record;
begin
    for c in select projection, generation from projection_checkpoints loop
        perform diplog_projection_generation_create(c.projection, c.generation);
        execute format(
            'insert into %I (projection, generation, key, data, actors, states, status, '
            'sort_key) select projection, generation, key, data, actors, states, status, '
            'sort_key from projection_rows_unpartitioned '
            'where projection = %L and generation = %s',
            diplog_projection_table(c.projection, c.generation), c.projection, c.generation);
        perform diplog_projection_generation_finish(c.projection, c.generation);
    end loop;
end;
$$;

-- A build under way starts again from scratch (its rows were not moved).
update projection_checkpoints
set rebuild_requested = true, building_generation = null, building_position = null
where building_generation is not null;

drop table projection_rows_unpartitioned;
