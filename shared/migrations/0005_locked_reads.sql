-- A stream (or its head) read after taking its case's transaction lock, in one round trip.
-- A plain statement could not do it: its snapshot is taken before the lock is granted, so it
-- would miss what the writer it waited for committed. A volatile PL/pgSQL function takes a fresh
-- snapshot for each statement (READ COMMITTED): the read after the lock sees that writer's events.
CREATE FUNCTION zm_locked_stream(lock_key bigint, stream text) RETURNS SETOF events
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    RETURN QUERY SELECT * FROM events WHERE stream_id = stream ORDER BY stream_version;
END
$$;

CREATE FUNCTION zm_locked_head(lock_key bigint, stream text, OUT version integer, OUT hash text)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    SELECT e.stream_version, e.hash INTO version, hash FROM events e
        WHERE e.stream_id = stream ORDER BY e.stream_version DESC LIMIT 1;
END
$$;
