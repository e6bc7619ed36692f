-- Each generation's primary key is its rows' `key` alone (issue 20).
--
-- A generation's table holds one projection's one generation (its CHECK constraint says so),
-- so `(projection, generation, key)` indexed two constant columns in front of the key: every
-- comparison of a rebuild's inserts went through both before it reached the key, and every
-- index entry carried them. COPYing 300,000 of the relations' rows (random keys, as event
-- ids make them) into a table with the key alone as its primary key took 3.7-3.9 s against
-- 4.4-4.5 s.
--
-- `projection_rows` itself then declares no primary key: PostgreSQL requires a partitioned
-- table's unique index to hold its partition key. Nothing writes through it (the runner
-- writes each generation's table by name, `on conflict (key)`), and readers find a row by
-- key in the generation they name, through that generation's primary key, as before.
--
-- Keys also compare byte by byte (`collate "C"`, as lists already order them), whatever the
-- database's collation: a model asks for the rows whose keys start with a prefix (an event's
-- documents, `Want::Prefix`), which is a range of the primary key only in that order.

alter table projection_rows drop constraint projection_rows_pkey;
alter table projection_rows alter column key type text collate "C";

-- Every generation's table, live or being built (a table not yet attached, which the
-- statement above does not reach, and a history table).
do $$
declare
    t record;
begin
    for t in
        select c.relname
        from pg_class c
        left join pg_inherits i on i.inhrelid = c.oid
        where c.relnamespace = (select oid from pg_namespace where nspname = current_schema())
          and c.relkind = 'r'
          and (c.relname like 'projection\_history\_%'
               or (c.relname like 'projection\_rows\_%' and i.inhrelid is null))
    loop
        execute format('alter table %I alter column key type text collate "C"', t.relname);
    end loop;
    for t in
        select c.relname
        from pg_class c
        where c.relnamespace = (select oid from pg_namespace where nspname = current_schema())
          and c.relkind = 'r'
          and c.relname like 'projection\_rows\_%'
    loop
        execute format('alter table %I drop constraint if exists %I', t.relname, t.relname || '_pkey');
        execute format('alter table %I add constraint %I primary key (key)', t.relname, t.relname || '_pkey');
    end loop;
end;
$$;

-- As before (`…_projection_versions.sql`), with the key alone as the primary key.
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
        'primary key (key), '
        'constraint %I check (projection = %L and generation = %s))',
        diplog_projection_table(p, g), diplog_projection_table(p, g) || '_bound', p, g);
    perform diplog_projection_history_create(p, g);
end;
$$;

-- As before (`…_projection_versions.sql`), with keys in byte order.
create or replace function diplog_projection_history_create(p text, g bigint) returns void
language plpgsql as $$
declare
    t text := 'projection_history_' || p || '_' || g::text;
begin
    execute format('drop table if exists %I', t);
    execute format(
        'create table %I ('
        'key text collate "C" not null, since bigint not null, until bigint not null, '
        'data jsonb not null, actors text[] not null, states text[] not null, '
        'status text not null, sort_key text not null, '
        'primary key (key, until), check (since < until))', t);
end;
$$;
