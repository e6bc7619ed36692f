-- The dashboard's stream browser lists streams by a prefix of their ids (`/streams?prefix=`).
-- The primary key of `streams` orders ids by the database's collation, in which the ids that
-- start with a prefix need not be one range; in bytewise order ("C") they are, so this index
-- answers a prefix as a range scan in id order (src/store/read/browse.rs).
create index streams_stream_id_c_idx on streams (stream_id collate "C");
