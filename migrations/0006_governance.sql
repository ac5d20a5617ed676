-- 0006: governance facts (issue #15) — mutes and schedules — kept like scan events:
-- append-only, checked and hashed by the database, readable by auditors with plain SQL.
--
-- Each mute and each schedule is a stream (`stream_id`, versions 1, 2, … with no gaps).
-- All governance events form ONE hash chain in `seq` order: writers are serialized by a
-- transaction-scoped advisory lock (governance changes are rare), so removing or
-- reordering any event but the newest breaks the chain; `scanledger audit verify`
-- recomputes it and prints the head. The hash is SHA-256 over the fields in the
-- encoding of docs/audit.md: 'scanledger-governance-v1', stream_id, version, kind,
-- actor, payload (canonical jsonb text), recorded_at (UTC, microseconds), prev_hash (hex).

CREATE TABLE governance_events (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY CHECK (seq > 0),
    stream_id   uuid        NOT NULL,
    version     integer     NOT NULL CHECK (version >= 1),
    kind        text        NOT NULL CHECK (kind IN ('MuteAdded', 'MuteRemoved', 'ScheduleSet', 'ScheduleRemoved')),
    -- Who did it: a token name or `cli:<user>`, never a secret.
    actor       text        NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
    payload     jsonb       NOT NULL CHECK (coalesce(jsonb_typeof(payload -> 'v') = 'number', false)),
    recorded_at timestamptz NOT NULL DEFAULT now(),
    tx_id       xid8        NOT NULL DEFAULT pg_current_xact_id(),
    prev_hash   bytea       CHECK (prev_hash IS NULL OR length(prev_hash) = 32),
    hash        bytea       NOT NULL CHECK (length(hash) = 32),
    CONSTRAINT governance_events_stream_version UNIQUE (stream_id, version)
);
COMMENT ON TABLE governance_events IS
    'Append-only mutes and schedules; UPDATE, DELETE and TRUNCATE are rejected by trigger.';

CREATE TRIGGER governance_events_no_update BEFORE UPDATE OR DELETE ON governance_events
    FOR EACH ROW EXECUTE FUNCTION scan_events_immutable();
CREATE TRIGGER governance_events_no_truncate BEFORE TRUNCATE ON governance_events
    FOR EACH STATEMENT EXECUTE FUNCTION scan_events_immutable();

CREATE FUNCTION scanledger_governance_hash(
    stream_id uuid, version integer, kind text, actor text, payload jsonb,
    recorded_at timestamptz, prev_hash bytea) RETURNS bytea
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN sha256(convert_to(
        scanledger_field('scanledger-governance-v1') || scanledger_field(stream_id::text)
        || scanledger_field(version::text) || scanledger_field(kind) || scanledger_field(actor)
        || scanledger_field(payload::text) || scanledger_field(scanledger_ts(recorded_at))
        || scanledger_field(encode(prev_hash, 'hex')), 'UTF8'));

-- Every insert: the database assigns the facts, checks the stream's lifecycle and the
-- payload's essentials, and chains the hash.
CREATE FUNCTION governance_events_check_append() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    prev governance_events%ROWTYPE;
    head bytea;
    p    jsonb := NEW.payload;
BEGIN
    -- One writer at a time: the chain is global.
    PERFORM pg_advisory_xact_lock(6026146830207451974);
    NEW.recorded_at := now();
    NEW.tx_id := pg_current_xact_id();

    SELECT * INTO prev FROM governance_events
     WHERE stream_id = NEW.stream_id ORDER BY version DESC LIMIT 1;
    IF NOT FOUND THEN
        IF NEW.kind NOT IN ('MuteAdded', 'ScheduleSet') OR NEW.version <> 1 THEN
            RAISE EXCEPTION 'governance stream %: the first event must be MuteAdded or ScheduleSet at version 1',
                NEW.stream_id USING ERRCODE = 'check_violation', CONSTRAINT = 'governance_events_lifecycle';
        END IF;
    ELSE
        IF NEW.version <> prev.version + 1 THEN
            RAISE EXCEPTION 'governance stream %: version % does not follow %', NEW.stream_id, NEW.version, prev.version
                USING ERRCODE = 'unique_violation', CONSTRAINT = 'governance_events_stream_version';
        END IF;
        IF prev.kind IN ('MuteRemoved', 'ScheduleRemoved') THEN
            RAISE EXCEPTION 'governance stream %: no event may follow %', NEW.stream_id, prev.kind
                USING ERRCODE = 'check_violation', CONSTRAINT = 'governance_events_terminal';
        END IF;
        IF NOT ((prev.kind = 'MuteAdded' AND NEW.kind = 'MuteRemoved')
                OR (prev.kind = 'ScheduleSet' AND NEW.kind IN ('ScheduleSet', 'ScheduleRemoved'))) THEN
            RAISE EXCEPTION 'governance stream %: % cannot follow %', NEW.stream_id, NEW.kind, prev.kind
                USING ERRCODE = 'check_violation', CONSTRAINT = 'governance_events_lifecycle';
        END IF;
    END IF;

    -- What an auditor needs from each fact is there, whoever wrote it.
    -- coalesce: a missing key makes these tests NULL, which must refuse, not pass.
    IF NEW.kind = 'MuteAdded' AND NOT coalesce(
           jsonb_typeof(p -> 'reason') = 'string' AND length(btrim(p ->> 'reason')) >= 1
           AND ((jsonb_typeof(p -> 'fingerprint') = 'string' AND length(p ->> 'fingerprint') >= 1)
                OR (jsonb_typeof(p -> 'rule_id') = 'string' AND length(p ->> 'rule_id') >= 1
                    AND jsonb_typeof(p -> 'resource_pattern') = 'string'
                    AND length(p ->> 'resource_pattern') >= 1)), false) THEN
        RAISE EXCEPTION 'governance stream %: a mute needs a reason and a fingerprint or a rule id with a resource pattern',
            NEW.stream_id USING ERRCODE = 'check_violation', CONSTRAINT = 'governance_events_mute';
    END IF;
    IF NEW.kind = 'ScheduleSet' AND NOT coalesce(
           jsonb_typeof(p -> 'subscription_id') = 'string' AND length(p ->> 'subscription_id') >= 1
           AND ((jsonb_typeof(p -> 'every_s') = 'number' AND (p ->> 'every_s')::numeric >= 60)
                OR (jsonb_typeof(p -> 'cron') = 'string' AND length(p ->> 'cron') >= 9)), false) THEN
        RAISE EXCEPTION 'governance stream %: a schedule needs a subscription and an interval of at least 60 s or a cron expression',
            NEW.stream_id USING ERRCODE = 'check_violation', CONSTRAINT = 'governance_events_schedule';
    END IF;

    SELECT hash INTO head FROM governance_events ORDER BY seq DESC LIMIT 1;
    NEW.prev_hash := head;
    NEW.hash := scanledger_governance_hash(NEW.stream_id, NEW.version, NEW.kind, NEW.actor,
                                           NEW.payload, NEW.recorded_at, NEW.prev_hash);
    RETURN NEW;
END
$$;
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION governance_events_check_append() SET search_path = %I, pg_catalog, pg_temp',
                   current_schema());
END
$$;
REVOKE ALL ON FUNCTION governance_events_check_append() FROM PUBLIC;

CREATE TRIGGER governance_events_append BEFORE INSERT ON governance_events
    FOR EACH ROW EXECUTE FUNCTION governance_events_check_append();

REVOKE ALL ON governance_events FROM PUBLIC;
GRANT SELECT ON governance_events TO scanledger_app;
GRANT INSERT (stream_id, version, kind, actor, payload) ON governance_events TO scanledger_app;
