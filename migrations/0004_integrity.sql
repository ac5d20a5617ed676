-- Integrity (issue #10): facts the database assigns, pinned search paths, tamper-evident
-- hash chains, checkpoints, and one running scan per subscription enforced here.
--
-- The hash of an event is SHA-256 over a canonical encoding of its fields (see
-- docs/audit.md): each field is `S<octet length>:<text>\n`, or `N\n` for NULL, in this
-- order: the tag 'scanledger-event-v1', scan_id, version, kind, attempt, worker_id,
-- payload (PostgreSQL's canonical jsonb text), recorded_at (UTC, microseconds,
-- 'YYYY-MM-DDTHH:MI:SS.USZ'), prev_hash (hex), findings_digest (hex).

-- The helpers are STABLE, not IMMUTABLE: their bodies use STABLE operators (text ||
-- integer, to_char, convert_to), and PostgreSQL inlines a SQL function only when its
-- declared volatility is no stricter than its body's. Inlined, the trigger's hash is one
-- expression; not inlined, it was eleven function calls per event (4x slower appends).
CREATE FUNCTION scanledger_field(t text) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN CASE WHEN t IS NULL THEN E'N\n' ELSE 'S' || octet_length(t) || ':' || t || E'\n' END;

CREATE FUNCTION scanledger_ts(t timestamptz) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');

-- One finding's hash; a Completed commits to the hash of these hashes in fingerprint order.
CREATE FUNCTION scanledger_finding_hash(f findings) RETURNS bytea
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN sha256(convert_to(
        scanledger_field('scanledger-finding-v1') || scanledger_field(f.fingerprint)
        || scanledger_field(f.rule_id) || scanledger_field(f.rule_name) || scanledger_field(f.severity)
        || scanledger_field(f.category) || scanledger_field(f.resource_id) || scanledger_field(f.resource_name)
        || scanledger_field(f.resource_type) || scanledger_field(f.description) || scanledger_field(f.remediation)
        || scanledger_field(f.frameworks::text) || scanledger_field(f.details::text)
        || scanledger_field(scanledger_ts(f.detected_at)), 'UTF8'));

CREATE FUNCTION scanledger_event_hash(
    scan_id uuid, version integer, kind text, attempt integer, worker_id text, payload jsonb,
    recorded_at timestamptz, prev_hash bytea, findings_digest bytea) RETURNS bytea
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN sha256(convert_to(
        scanledger_field('scanledger-event-v1') || scanledger_field(scan_id::text)
        || scanledger_field(version::text) || scanledger_field(kind) || scanledger_field(attempt::text)
        || scanledger_field(worker_id) || scanledger_field(payload::text)
        || scanledger_field(scanledger_ts(recorded_at)) || scanledger_field(encode(prev_hash, 'hex'))
        || scanledger_field(encode(findings_digest, 'hex')), 'UTF8'));

ALTER TABLE scan_events
    ADD COLUMN prev_hash bytea CHECK (prev_hash IS NULL OR length(prev_hash) = 32),
    ADD COLUMN findings_digest bytea CHECK (findings_digest IS NULL OR length(findings_digest) = 32),
    ADD COLUMN hash bytea CHECK (hash IS NULL OR length(hash) = 32),
    ADD CONSTRAINT scan_events_seq_positive CHECK (seq > 0);

-- Existing ledgers: the one place a trigger is bypassed. The chain of every event already
-- stored is computed here, once, by the owner, in version order per scan.
ALTER TABLE scan_events DISABLE TRIGGER scan_events_no_update;
DO $$
DECLARE
    e record;
    prev bytea;
    last_scan uuid;
    digest bytea;
BEGIN
    FOR e IN SELECT * FROM scan_events ORDER BY scan_id, version LOOP
        IF last_scan IS DISTINCT FROM e.scan_id THEN
            prev := NULL;
            last_scan := e.scan_id;
        END IF;
        digest := NULL;
        IF e.kind = 'Completed' THEN
            SELECT sha256(coalesce(string_agg(scanledger_finding_hash(f), ''::bytea ORDER BY f.fingerprint COLLATE "C"), ''::bytea))
              INTO digest FROM findings f WHERE f.scan_id = e.scan_id AND f.attempt = e.attempt;
        END IF;
        UPDATE scan_events SET prev_hash = prev, findings_digest = digest,
               hash = scanledger_event_hash(e.scan_id, e.version, e.kind, e.attempt, e.worker_id,
                                            e.payload, e.recorded_at, prev, digest)
         WHERE seq = e.seq
        RETURNING hash INTO prev;
    END LOOP;
END
$$;
ALTER TABLE scan_events ENABLE TRIGGER scan_events_no_update;
ALTER TABLE scan_events ALTER COLUMN hash SET NOT NULL;

-- One running scan per subscription, enforced by the ledger's trigger (not only by the
-- claim query). The deployment may allow parallel scans; that choice is stored here once.
CREATE TABLE ledger_settings (
    id                        boolean PRIMARY KEY DEFAULT true CHECK (id),
    parallel_per_subscription boolean NOT NULL DEFAULT false
);
INSERT INTO ledger_settings DEFAULT VALUES;
CREATE TABLE running_subscriptions (
    subscription_id text PRIMARY KEY,
    scan_id         uuid NOT NULL UNIQUE,
    attempt         integer NOT NULL
);
INSERT INTO running_subscriptions (subscription_id, scan_id, attempt)
SELECT r.payload ->> 'subscription_id', l.scan_id, l.attempt
  FROM (SELECT DISTINCT ON (scan_id) scan_id, kind, attempt FROM scan_events
         ORDER BY scan_id, version DESC) l
  JOIN scan_events r ON r.scan_id = l.scan_id AND r.version = 1
 WHERE l.kind IN ('Claimed', 'Heartbeat')
ON CONFLICT DO NOTHING;

-- The lifecycle trigger, now also the assigner of facts: recorded_at, tx_id and the hash
-- chain are set here whatever the writer sent. SECURITY DEFINER (owned by the migration
-- owner) so that the runtime role needs no privilege on running_subscriptions, and the
-- search path is pinned so that no temporary table can stand in for the ledger.
CREATE OR REPLACE FUNCTION scan_events_check_append() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    prev    scan_events%ROWTYPE;
    max_att integer;
    sub     text;
BEGIN
    NEW.recorded_at := now();
    NEW.tx_id := pg_current_xact_id();
    NEW.prev_hash := NULL;
    NEW.findings_digest := NULL;

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
        NEW.hash := scanledger_event_hash(NEW.scan_id, NEW.version, NEW.kind, NEW.attempt, NEW.worker_id,
                                          NEW.payload, NEW.recorded_at, NULL, NULL);
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
        SELECT (payload ->> 'max_attempts')::integer, payload ->> 'subscription_id' INTO max_att, sub
          FROM scan_events WHERE scan_id = NEW.scan_id AND version = 1;
        IF NEW.attempt > max_att THEN
            RAISE EXCEPTION 'scan %: attempt % exceeds max_attempts %', NEW.scan_id, NEW.attempt, max_att
                USING ERRCODE = 'check_violation', CONSTRAINT = 'scan_events_lifecycle';
        END IF;
        IF (NEW.payload ->> 'lease_ms')::bigint IS NULL OR (NEW.payload ->> 'lease_ms')::bigint <= 0 THEN
            RAISE EXCEPTION 'scan %: Claimed needs lease_ms > 0', NEW.scan_id
                USING ERRCODE = 'check_violation', CONSTRAINT = 'scan_events_lifecycle';
        END IF;
        IF NOT (SELECT parallel_per_subscription FROM ledger_settings) THEN
            BEGIN
                INSERT INTO running_subscriptions (subscription_id, scan_id, attempt)
                VALUES (sub, NEW.scan_id, NEW.attempt);
            EXCEPTION WHEN unique_violation THEN
                RAISE EXCEPTION 'scan %: another scan of subscription % is running', NEW.scan_id, sub
                    USING ERRCODE = 'unique_violation', CONSTRAINT = 'scan_events_one_running_per_subscription';
            END;
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
        IF NEW.kind = 'Completed' THEN
            -- The findings were written first, in this transaction; the event commits to them.
            SELECT sha256(coalesce(string_agg(scanledger_finding_hash(f), ''::bytea ORDER BY f.fingerprint COLLATE "C"), ''::bytea))
              INTO NEW.findings_digest FROM findings f WHERE f.scan_id = NEW.scan_id AND f.attempt = NEW.attempt;
        END IF;
    END CASE;
    IF NEW.kind IN ('Completed', 'Failed', 'TimedOut', 'Cancelled') THEN
        DELETE FROM running_subscriptions WHERE scan_id = NEW.scan_id;
    END IF;
    NEW.prev_hash := prev.hash;
    NEW.hash := scanledger_event_hash(NEW.scan_id, NEW.version, NEW.kind, NEW.attempt, NEW.worker_id,
                                      NEW.payload, NEW.recorded_at, NEW.prev_hash, NEW.findings_digest);
    RETURN NEW;
END
$$;

-- Findings are now written before their Completed (which commits to their digest); each
-- must be followed by that Completed in the same transaction, checked at commit, row by
-- row (one index probe each). No shortcut through a setting: a writer could forge it.
DROP TRIGGER findings_with_completion ON findings;
DROP FUNCTION findings_belong_to_completion();
CREATE FUNCTION findings_belong_to_completion() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM scan_events e
                    WHERE e.scan_id = NEW.scan_id AND e.attempt = NEW.attempt AND e.kind = 'Completed'
                      AND e.tx_id = pg_current_xact_id()) THEN
        RAISE EXCEPTION 'findings of scan % attempt % must be written with its Completed event',
            NEW.scan_id, NEW.attempt
            USING ERRCODE = 'check_violation', CONSTRAINT = 'findings_with_completion';
    END IF;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER findings_with_completion AFTER INSERT ON findings
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION findings_belong_to_completion();
-- Findings cannot be added to an attempt that already completed (its digest is sealed).
CREATE FUNCTION findings_not_after_completion() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    late record;
BEGIN
    SELECT n.scan_id, n.attempt INTO late FROM new_findings n
     WHERE EXISTS (SELECT 1 FROM scan_events e
                    WHERE e.scan_id = n.scan_id AND e.attempt = n.attempt AND e.kind = 'Completed')
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'scan % attempt % has completed: its findings are sealed', late.scan_id, late.attempt
            USING ERRCODE = 'check_violation', CONSTRAINT = 'findings_with_completion';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER findings_sealed AFTER INSERT ON findings
    REFERENCING NEW TABLE AS new_findings
    FOR EACH STATEMENT EXECUTE FUNCTION findings_not_after_completion();

-- One message for every append-only table.
CREATE OR REPLACE FUNCTION scan_events_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

-- Checkpoints: a Merkle root (RFC 9162) over event hashes in feed order, each covering
-- the events after the previous checkpoint's position, chained by the previous root.
CREATE TABLE ledger_checkpoints (
    checkpoint_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Feed position covered up to (inclusive): (tx_id, seq) of the last event.
    upto_tx_id     bigint NOT NULL,
    upto_seq       bigint NOT NULL,
    events         bigint NOT NULL CHECK (events > 0),
    total_events   bigint NOT NULL,
    root           bytea  NOT NULL CHECK (length(root) = 32),
    prev_root      bytea  CHECK (prev_root IS NULL OR length(prev_root) = 32),
    created_at     timestamptz NOT NULL DEFAULT now(),
    key_id         text,
    signature      bytea,
    UNIQUE (upto_tx_id, upto_seq)
);
CREATE TRIGGER ledger_checkpoints_no_update BEFORE UPDATE OR DELETE ON ledger_checkpoints
    FOR EACH ROW EXECUTE FUNCTION scan_events_immutable();
CREATE TRIGGER ledger_checkpoints_no_truncate BEFORE TRUNCATE ON ledger_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION scan_events_immutable();

-- Every function finds its tables in the ledger's schema only: no temporary table
-- (pg_temp, last) and no object in another schema can stand in. (The scanledger_*
-- helpers above have SQL-standard bodies, bound to their objects when created.)
DO $$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY['scan_events_immutable()', 'scan_events_check_append()',
                             'findings_belong_to_completion()', 'findings_not_after_completion()'] LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = %I, pg_catalog, pg_temp', f, current_schema());
    END LOOP;
END
$$;
-- PUBLIC's TEMP and CREATE are revoked by every `migrate` (src/pg/migrate.rs: harden),
-- since a database cloned from a template does not inherit the template's grants.
REVOKE ALL ON FUNCTION scan_events_check_append(), findings_belong_to_completion(),
                       findings_not_after_completion() FROM PUBLIC;

-- The writer supplies only these columns; seq, recorded_at, tx_id and the hashes are the
-- database's (no OVERRIDING SYSTEM VALUE: the runtime role has no INSERT on seq).
REVOKE INSERT ON scan_events FROM scanledger_app;
GRANT INSERT (scan_id, version, kind, attempt, worker_id, payload) ON scan_events TO scanledger_app;
REVOKE INSERT ON findings FROM scanledger_app;
GRANT INSERT (scan_id, attempt, fingerprint, rule_id, rule_name, severity, category, resource_id,
              resource_name, resource_type, description, remediation, frameworks, details, detected_at)
    ON findings TO scanledger_app;
GRANT SELECT, INSERT ON ledger_checkpoints TO scanledger_app;
GRANT SELECT ON ledger_settings, running_subscriptions TO scanledger_app;
