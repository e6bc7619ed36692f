-- Full-text search (the `search` projection, src/projections/models/search.rs): each of its
-- document rows holds a text (`data->>'text'`) and the text-search configuration of its
-- language (`status`). PostgreSQL keeps the `tsvector` of every such row in a generated
-- column, so the runner writes rows as for any projection (upserts, COPY, rebuilds) and the
-- vector can never disagree with the text. A generated column takes only immutable
-- expressions, so each configuration is named literally (`models/search.rs` lists the same
-- ones; a unit test checks they agree). Other projections' rows, and the search projection's
-- marker and actor rows, have none.
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

-- Only the search projection's rows are indexed (the others have no vector).
create index projection_rows_search_idx on projection_rows using gin (search_vector)
    where projection = 'search';
