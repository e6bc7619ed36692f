-- What the recorder reads of a stream it writes to (src/store/read/recording.rs): the steps of
-- the stream's own lifecycle, not the source reports and corrections about them. An
-- occurrence reported by many sources (a GDELT event with hundreds of mentions) would
-- otherwise make every later record into its stream read every report; with this index a
-- record reads the stream's steps alone, however many reports it holds. Partial, so generic
-- appends, and the reports themselves, pay nothing for it.
create index events_stream_steps_idx on events (stream_id, stream_version)
    where metadata->>'diplog.schema' = 'diplog.v1.DiplomaticEvent'
      and event_type not in ('SourceReportAttached', 'EventCorrected');
