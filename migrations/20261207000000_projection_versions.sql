-- Versioned projection rows (issue 20: as-of answers deep in a large log, in bounded memory).
--
-- Each row carries `since`: the checkpoint position of the commit that wrote this version.
-- When a commit changes or removes a row, the version it replaces moves to the generation's
-- history table (`projection_history_<projection>_<generation>`, made by the runner beside
-- the generation's table) with `until`, the position of that commit. So the rows of a
-- generation as they stood after any commit `b` are the live rows with `since <= b` and the
-- history rows with `since <= b < until`.
--
-- Runners commit at every multiple of `versions_every` (a batch never spans one), so those
-- positions are all commits: an answer as of position `p` reads the rows as of the multiple
-- at or below `p` and replays only the events between (src/projections/read/versioned.rs).
-- `versions_every` is null while the live generation was not written so from its start (rows
-- written before this migration, whose history is unknown): as-of answers then replay the
-- log, as before, until a rebuild (the models' versions were bumped with this change, so it
-- starts at once) replaces them.

alter table projection_rows add column since bigint not null default 0;

alter table projection_checkpoints
    add column versions_every bigint check (versions_every > 0);

-- The history table of generation `g` of `p`, empty (a leftover of that name, from a build
-- that was killed, is dropped): the versions of the generation's rows that later commits
-- replaced, each with the commit that wrote it (`since`) and the one that replaced it
-- (`until`). Keyed by key and `until` (a row changes at most once a commit), which a look-up
-- of some keys as of a position seeks; a list as of a position reads it whole (it holds a
-- version per row a commit changed, not one per event). Free-standing: readers find it by
-- the generation the checkpoint names, inside a transaction that keeps it from being
-- dropped under them.
create function diplog_projection_history_create(p text, g bigint) returns void
language plpgsql as $$
declare
    t text := 'projection_history_' || p || '_' || g::text;
begin
    execute format('drop table if exists %I', t);
    execute format(
        'create table %I ('
        'key text not null, since bigint not null, until bigint not null, '
        'data jsonb not null, actors text[] not null, states text[] not null, '
        'status text not null, sort_key text not null, '
        'primary key (key, until), check (since < until))', t);
end;
$$;

-- As before (`…_projection_generations.sql`), and the generation's history table with it.
create or replace function diplog_projection_generation_create(p text, g bigint) returns void
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
    perform diplog_projection_history_create(p, g);
end;
$$;

-- The live generations have their history tables (empty: what they replaced before is not
-- known, and their checkpoints' `versions_every` stays null).
do $$
declare
    c record;
begin
    for c in select projection, generation from projection_checkpoints loop
        perform diplog_projection_history_create(c.projection, c.generation);
    end loop;
end;
$$;
