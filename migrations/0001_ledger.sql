-- scan_events: the append-only ledger. Every other scan table is a projection of it.
-- Column names are a public contract: auditors query this table with plain SQL.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'scanledger_app') THEN
        CREATE ROLE scanledger_app NOLOGIN;
    END IF;
END
$$;

CREATE TABLE scan_events (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scan_id     uuid        NOT NULL,
    version     integer     NOT NULL CHECK (version >= 1),
    kind        text        NOT NULL CHECK (kind IN
                    ('Requested', 'Claimed', 'Heartbeat', 'Completed', 'Failed', 'TimedOut', 'Cancelled')),
    attempt     integer     NOT NULL CHECK (attempt >= 0),
    worker_id   text,
    -- Every payload names its schema version (readers upcast old shapes).
    payload     jsonb       NOT NULL CHECK (coalesce(jsonb_typeof(payload -> 'v') = 'number', false)),
    recorded_at timestamptz NOT NULL DEFAULT now(),
    tx_id       xid8        NOT NULL DEFAULT pg_current_xact_id(),
    CONSTRAINT scan_events_stream_version UNIQUE (scan_id, version),
    -- Scan-level events carry attempt 0; attempt-level events name their attempt (the fencing token).
    CONSTRAINT scan_events_attempt_scope CHECK ((kind IN ('Requested', 'Cancelled')) = (attempt = 0)),
    CONSTRAINT scan_events_worker_named CHECK (kind NOT IN ('Claimed', 'Heartbeat', 'Completed', 'Failed')
                                               OR worker_id IS NOT NULL)
);

COMMENT ON TABLE scan_events IS 'Append-only scan ledger; UPDATE, DELETE and TRUNCATE are rejected by trigger.';

CREATE UNIQUE INDEX scan_events_one_requested ON scan_events (scan_id) WHERE kind = 'Requested';
CREATE UNIQUE INDEX scan_events_one_claim ON scan_events (scan_id, attempt) WHERE kind = 'Claimed';
CREATE UNIQUE INDEX scan_events_one_outcome ON scan_events (scan_id, attempt)
    WHERE kind IN ('Completed', 'Failed', 'TimedOut');
-- The global feed reads in (tx_id, seq) order.
CREATE INDEX scan_events_feed ON scan_events (tx_id, seq);

-- Immutability: nothing edits or removes a fact, not even the table owner.
CREATE FUNCTION scan_events_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'scan_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER scan_events_no_update BEFORE UPDATE OR DELETE ON scan_events
    FOR EACH ROW EXECUTE FUNCTION scan_events_immutable();
CREATE TRIGGER scan_events_no_truncate BEFORE TRUNCATE ON scan_events
    FOR EACH STATEMENT EXECUTE FUNCTION scan_events_immutable();

-- The lifecycle state machine, enforced on every insert. The stream is gap-free and
-- ordered, so the last event of a scan determines what may follow it.
CREATE FUNCTION scan_events_check_append() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    prev    scan_events%ROWTYPE;
    max_att integer;
BEGIN
    SELECT * INTO prev FROM scan_events
     WHERE scan_id = NEW.scan_id ORDER BY version DESC LIMIT 1;

    IF NOT FOUND THEN
        IF NEW.kind <> 'Requested' OR NEW.version <> 1 THEN
            RAISE EXCEPTION 'scan %: the first event must be Requested at version 1', NEW.scan_id
                USING ERRCODE = 'check_violation', CONSTRAINT = 'scan_events_lifecycle';
        END IF;
        IF (NEW.payload ->> 'max_attempts')::integer IS NULL
           OR (NEW.payload ->> 'max_attempts')::integer < 1 THEN
            RAISE EXCEPTION 'scan %: Requested needs max_attempts >= 1', NEW.scan_id
                USING ERRCODE = 'check_violation', CONSTRAINT = 'scan_events_lifecycle';
        END IF;
        RETURN NEW;
    END IF;

    IF NEW.version <> prev.version + 1 THEN
        RAISE EXCEPTION 'scan %: version % does not follow %', NEW.scan_id, NEW.version, prev.version
            USING ERRCODE = 'unique_violation', CONSTRAINT = 'scan_events_stream_version';
    END IF;

    -- Terminal states accept nothing more.
    -- A Failed or TimedOut with no retry_in_ms is final (no retry left, or not retryable).
    IF prev.kind IN ('Completed', 'Cancelled')
       OR (prev.kind IN ('Failed', 'TimedOut')
           AND coalesce(jsonb_typeof(prev.payload -> 'retry_in_ms'), 'null') = 'null') THEN
        RAISE EXCEPTION 'scan %: no event may follow terminal %', NEW.scan_id, prev.kind
            USING ERRCODE = 'check_violation', CONSTRAINT = 'scan_events_terminal';
    END IF;

    CASE NEW.kind
    WHEN 'Requested' THEN
        RAISE EXCEPTION 'scan %: already requested', NEW.scan_id
            USING ERRCODE = 'unique_violation', CONSTRAINT = 'scan_events_one_requested';
    WHEN 'Cancelled' THEN
        NULL; -- any live scan may be cancelled
    WHEN 'Claimed' THEN
        -- A claim opens the next attempt only when no attempt is live.
        IF NOT (prev.kind = 'Requested' AND NEW.attempt = 1)
           AND NOT (prev.kind IN ('Failed', 'TimedOut') AND NEW.attempt = prev.attempt + 1) THEN
            RAISE EXCEPTION 'scan %: attempt % cannot be claimed after % of attempt %',
                NEW.scan_id, NEW.attempt, prev.kind, prev.attempt
                USING ERRCODE = 'check_violation', CONSTRAINT = 'scan_events_lifecycle';
        END IF;
        SELECT (payload ->> 'max_attempts')::integer INTO max_att
          FROM scan_events WHERE scan_id = NEW.scan_id AND version = 1;
        IF NEW.attempt > max_att THEN
            RAISE EXCEPTION 'scan %: attempt % exceeds max_attempts %', NEW.scan_id, NEW.attempt, max_att
                USING ERRCODE = 'check_violation', CONSTRAINT = 'scan_events_lifecycle';
        END IF;
        IF (NEW.payload ->> 'lease_ms')::bigint IS NULL OR (NEW.payload ->> 'lease_ms')::bigint <= 0 THEN
            RAISE EXCEPTION 'scan %: Claimed needs lease_ms > 0', NEW.scan_id
                USING ERRCODE = 'check_violation', CONSTRAINT = 'scan_events_lifecycle';
        END IF;
    ELSE
        -- Heartbeat and outcomes act on the live attempt, and only its owner may speak for it
        -- (the reaper excepted: it times out an attempt whose lease ran out).
        IF prev.kind NOT IN ('Claimed', 'Heartbeat') OR NEW.attempt <> prev.attempt THEN
            RAISE EXCEPTION 'scan %: attempt % is not live', NEW.scan_id, NEW.attempt
                USING ERRCODE = 'check_violation', CONSTRAINT = 'scan_events_fencing';
        END IF;
        IF NEW.kind = 'TimedOut' THEN
            -- Leases are judged by the database clock.
            IF now() < prev.recorded_at + make_interval(secs => (prev.payload ->> 'lease_ms')::bigint / 1000.0) THEN
                RAISE EXCEPTION 'scan %: lease of attempt % has not expired', NEW.scan_id, NEW.attempt
                    USING ERRCODE = 'check_violation', CONSTRAINT = 'scan_events_lease';
            END IF;
        ELSIF NEW.worker_id IS DISTINCT FROM prev.worker_id THEN
            RAISE EXCEPTION 'scan %: worker % does not own attempt %', NEW.scan_id, NEW.worker_id, NEW.attempt
                USING ERRCODE = 'check_violation', CONSTRAINT = 'scan_events_fencing';
        END IF;
        IF NEW.kind = 'Heartbeat'
           AND ((NEW.payload ->> 'lease_ms')::bigint IS NULL OR (NEW.payload ->> 'lease_ms')::bigint <= 0) THEN
            RAISE EXCEPTION 'scan %: Heartbeat needs lease_ms > 0', NEW.scan_id
                USING ERRCODE = 'check_violation', CONSTRAINT = 'scan_events_lifecycle';
        END IF;
        IF NEW.kind IN ('Failed', 'TimedOut') THEN
            IF coalesce(jsonb_typeof(NEW.payload -> 'retry_in_ms'), 'null') <> 'null' THEN
                SELECT (payload ->> 'max_attempts')::integer INTO max_att
                  FROM scan_events WHERE scan_id = NEW.scan_id AND version = 1;
                IF NEW.attempt >= max_att THEN
                    RAISE EXCEPTION 'scan %: attempt % is the last, it cannot be retried', NEW.scan_id, NEW.attempt
                        USING ERRCODE = 'check_violation', CONSTRAINT = 'scan_events_lifecycle';
                END IF;
                IF NEW.kind = 'Failed' AND (NEW.payload ->> 'retryable')::boolean IS NOT TRUE THEN
                    RAISE EXCEPTION 'scan %: a non-retryable failure cannot be retried', NEW.scan_id
                        USING ERRCODE = 'check_violation', CONSTRAINT = 'scan_events_lifecycle';
                END IF;
            END IF;
        END IF;
    END CASE;
    RETURN NEW;
END
$$;

CREATE TRIGGER scan_events_lifecycle BEFORE INSERT ON scan_events
    FOR EACH ROW EXECUTE FUNCTION scan_events_check_append();

REVOKE ALL ON scan_events FROM PUBLIC;
GRANT SELECT, INSERT ON scan_events TO scanledger_app;

-- Registry of projections: which DDL version each one was built with.
CREATE TABLE projections (
    name       text PRIMARY KEY,
    version    integer NOT NULL,
    built_at   timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT ON projections TO scanledger_app;
