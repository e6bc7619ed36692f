-- What the recorder reads before recording (src/store/read/recording.rs), as a function that
-- never plans a sequential scan of `events`.
--
-- Measured (bench import, 60,000 GDELT rows on a fresh log): as a plain statement, prepared
-- once per connection, its arm `event_id = any($3)` kept the plan made while `events` was
-- small, a sequential scan, until the next ANALYZE: 0.3 s per chunk at 30,000 events and
-- 0.8 s at 58,000, a quarter of all CPU (uuid_eq and ExecEvalScalarArrayOp at the top of
-- PostgreSQL's profile). Every arm has an index that answers it (streams_pkey,
-- events_stream_steps_idx, events_event_id_key), whatever the table's size; as for
-- diplog_append (20261126000008), the planner is held to them.
create function diplog_recording_inputs(streams text[], actor_streams text[], event_ids uuid[])
returns table (part integer, "position" bigint, stream_id text, event_id uuid, event_type text,
               diplomatic boolean, data_text text)
language sql stable as $$
    -- Each branch's `where` repeats the partial index's predicate word for word where it
    -- should use it; the planner proves the match textually.
    select * from (
        select 0 as part, s.version as position, s.stream_id,
               '00000000-0000-0000-0000-000000000000'::uuid as event_id, '' as event_type,
               false as diplomatic, '' as data_text
        from streams s where s.stream_id = any(streams)
        union all
        select 1, e.position, e.stream_id, e.event_id, e.event_type, true,
               case when e.event_type in ('ActorRegistered', 'EventRetracted')
                   then e.data_text else '' end
        from events e
        where e.stream_id = any(streams)
          and e.metadata->>'diplog.schema' = 'diplog.v1.DiplomaticEvent'
          and e.event_type not in ('SourceReportAttached', 'EventCorrected')
        union all
        select 2, e.position, e.stream_id, e.event_id, e.event_type, true, e.data_text
        from events e
        where e.stream_id = any(actor_streams)
          and e.metadata->>'diplog.schema' = 'diplog.v1.DiplomaticEvent'
          and e.event_type not in ('SourceReportAttached', 'EventCorrected')
          and e.event_type in ('ActorRegistered', 'EventRetracted')
        union all
        select 3, e.position, e.stream_id, e.event_id, e.event_type,
               coalesce(e.metadata->>'diplog.schema' = 'diplog.v1.DiplomaticEvent', false),
               case when e.event_type in ('ActorRegistered', 'EventRetracted')
                   then e.data_text else '' end
        from events e where e.event_id = any(event_ids)
    ) as known
    order by part <> 0, position
$$
set enable_seqscan = off
set jit = off;
