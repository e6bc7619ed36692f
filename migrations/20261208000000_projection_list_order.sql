-- A list's order as an index of each generation (issue 20: a page of a list of 1,000,000
-- rows, live or as of a position, in well under 2 s).
--
-- Lists are in byte order of `sort_key` and then `key` (`listing::list_order!`). Without an
-- index in that order, each page sorted every row passing its filter, and its count read
-- every row's heap tuple. With `(sort_key collate "C", key collate "C") include (since)`, a
-- page walks the index and stops after it, and the count of an unfiltered list, live or as
-- of a position (`since <= b`), is an index-only scan where the visibility map allows.

-- As before (`…_projection_generations.sql`), and the list-order index with the others.
create or replace function diplog_projection_generation_finish(p text, g bigint) returns void
language plpgsql as $$
declare
    t text := diplog_projection_table(p, g);
begin
    execute format('create index if not exists %I on %I using gin (actors)', t || '_actors', t);
    execute format('create index if not exists %I on %I using gin (states)', t || '_states', t);
    execute format('create index if not exists %I on %I (status, sort_key)', t || '_status', t);
    execute format(
        'create index if not exists %I on %I (sort_key collate "C", key collate "C") '
        'include (since)', t || '_order', t);
    if p = 'search' then
        execute format('create index if not exists %I on %I using gin (search_vector)', t || '_search', t);
    end if;
    execute format('alter table %I attach partition %I for values in (%s)',
        diplog_projection_table(p), t, g);
end;
$$;

-- The live generations get theirs now (a build under way gets it when it is finished).
do $$
declare
    c record;
    t text;
begin
    for c in select projection, generation from projection_checkpoints loop
        t := diplog_projection_table(c.projection, c.generation);
        if to_regclass(quote_ident(t)) is not null then
            execute format(
                'create index if not exists %I on %I (sort_key collate "C", key collate "C") '
                'include (since)', t || '_order', t);
        end if;
    end loop;
end;
$$;
