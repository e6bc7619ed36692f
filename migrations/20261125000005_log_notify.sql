-- Wakes subscribers: every transaction that moves the log head notifies channel `diplog_log`
-- with the new head. PostgreSQL delivers notifications only at commit, in commit order, so a
-- listener that hears position N can read every event up to N. Each diplog server keeps one
-- LISTEN connection and shares it among all its subscribers, and so hears appends made
-- through other servers on the same database.
create function log_head_notify() returns trigger
language plpgsql as $$
begin
    perform pg_notify('diplog_log', new.position::text);
    return null;
end;
$$;

create trigger log_head_moved
    after update of position on log_head
    for each row when (new.position > old.position)
    execute function log_head_notify();
