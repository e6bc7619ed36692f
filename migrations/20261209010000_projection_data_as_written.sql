-- Projection rows hold their data as `json`, the text a model wrote, not as `jsonb` (issue 20).
--
-- Nothing queries a row's data as `jsonb` does: readers take the text back whole, and the few
-- filters that look inside it (a list's `at_path`, the search projection's kind, dates and
-- text) are `->`, `->>` and `#>>`, which `json` has too. Storing `jsonb` made PostgreSQL parse
-- every row a runner wrote into its binary form, and print it back as text for every row a
-- reader read. COPYing 300,000 of the relations' rows (826 bytes of data each) took 3.8-3.9 s
-- into `json` against 4.8-5.0 s into `jsonb`. Rows now come back exactly as written.
--
-- `search_vector` is generated from `data`, and PostgreSQL cannot change the type of a
-- column a generated column uses: it goes, and comes back with the same expression (as
-- `…_search.sql` has it), after the change; so do the search generations' indexes on it.
-- Both statements rewrite every generation's table, once each. A build under way (a table
-- not yet attached, which they do not reach) starts again, as after
-- `…_projection_generations.sql`.

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
          and c.relname like 'projection\_rows\_%'
          and i.inhrelid is null
    loop
        execute format('drop table %I', t.relname);
    end loop;
end;
$$;

update projection_checkpoints
set rebuild_requested = true, building_generation = null, building_position = null
where building_generation is not null;

alter table projection_rows drop column search_vector;
alter table projection_rows alter column data type json using data::json;

alter table projection_rows add column search_vector tsvector generated always as (
    case when projection = 'search' then
        case status
            when 'arabic' then to_tsvector('arabic', data->>'text')
            when 'armenian' then to_tsvector('armenian', data->>'text')
            when 'basque' then to_tsvector('basque', data->>'text')
            when 'catalan' then to_tsvector('catalan', data->>'text')
            when 'danish' then to_tsvector('danish', data->>'text')
            when 'dutch' then to_tsvector('dutch', data->>'text')
            when 'english' then to_tsvector('english', data->>'text')
            when 'finnish' then to_tsvector('finnish', data->>'text')
            when 'french' then to_tsvector('french', data->>'text')
            when 'german' then to_tsvector('german', data->>'text')
            when 'greek' then to_tsvector('greek', data->>'text')
            when 'hindi' then to_tsvector('hindi', data->>'text')
            when 'hungarian' then to_tsvector('hungarian', data->>'text')
            when 'indonesian' then to_tsvector('indonesian', data->>'text')
            when 'irish' then to_tsvector('irish', data->>'text')
            when 'italian' then to_tsvector('italian', data->>'text')
            when 'lithuanian' then to_tsvector('lithuanian', data->>'text')
            when 'nepali' then to_tsvector('nepali', data->>'text')
            when 'norwegian' then to_tsvector('norwegian', data->>'text')
            when 'portuguese' then to_tsvector('portuguese', data->>'text')
            when 'romanian' then to_tsvector('romanian', data->>'text')
            when 'russian' then to_tsvector('russian', data->>'text')
            when 'serbian' then to_tsvector('serbian', data->>'text')
            when 'simple' then to_tsvector('simple', data->>'text')
            when 'spanish' then to_tsvector('spanish', data->>'text')
            when 'swedish' then to_tsvector('swedish', data->>'text')
            when 'tamil' then to_tsvector('tamil', data->>'text')
            when 'turkish' then to_tsvector('turkish', data->>'text')
            when 'yiddish' then to_tsvector('yiddish', data->>'text')
        end
    end
) stored;

-- The search generations' indexes on it, as `diplog_projection_generation_finish` makes them.
do $$
declare
    t record;
begin
    for t in
        select c.relname
        from pg_class c
        join pg_inherits i on i.inhrelid = c.oid
        where c.relnamespace = (select oid from pg_namespace where nspname = current_schema())
          and c.relkind = 'r'
          and c.relname like 'projection\_rows\_search\_%'
    loop
        execute format('create index %I on %I using gin (search_vector)', t.relname || '_search', t.relname);
    end loop;
end;
$$;

-- Each generation's history (`…_projection_versions.sql`) holds its rows' replaced versions.
do $$
declare
    t record;
begin
    for t in
        select c.relname
        from pg_class c
        where c.relnamespace = (select oid from pg_namespace where nspname = current_schema())
          and c.relkind = 'r'
          and c.relname like 'projection\_history\_%'
    loop
        execute format('alter table %I alter column data type json using data::json', t.relname);
    end loop;
end;
$$;

-- As before (`…_projection_row_keys.sql`), with `json` data.
create or replace function diplog_projection_history_create(p text, g bigint) returns void
language plpgsql as $$
declare
    t text := 'projection_history_' || p || '_' || g::text;
begin
    execute format('drop table if exists %I', t);
    execute format(
        'create table %I ('
        'key text collate "C" not null, since bigint not null, until bigint not null, '
        'data json not null, actors text[] not null, states text[] not null, '
        'status text not null, sort_key text not null, '
        'primary key (key, until), check (since < until))', t);
end;
$$;
