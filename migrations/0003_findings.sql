-- findings: what a completed attempt found. Append-only like the ledger, and written
-- only in the transaction that appends that attempt's Completed event.
CREATE TABLE findings (
    finding_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scan_id       uuid        NOT NULL,
    attempt       integer     NOT NULL CHECK (attempt >= 1),
    -- Stable across scans: sha256(rule_id | lower(resource_id) | sub-item), hex.
    fingerprint   text        NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    rule_id       text        NOT NULL,
    rule_name     text        NOT NULL,
    severity      text        NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low', 'info')),
    category      text        NOT NULL,
    resource_id   text        NOT NULL,
    resource_name text        NOT NULL,
    resource_type text        NOT NULL,
    description   text        NOT NULL,
    remediation   text        NOT NULL,
    frameworks    jsonb       NOT NULL DEFAULT '{}',
    details       jsonb       NOT NULL DEFAULT '{}',
    detected_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (scan_id, fingerprint)
);
CREATE INDEX findings_scan ON findings (scan_id, severity, finding_id);
CREATE INDEX findings_rule ON findings (rule_id);

CREATE TRIGGER findings_no_update BEFORE UPDATE OR DELETE ON findings
    FOR EACH ROW EXECUTE FUNCTION scan_events_immutable();
CREATE TRIGGER findings_no_truncate BEFORE TRUNCATE ON findings
    FOR EACH STATEMENT EXECUTE FUNCTION scan_events_immutable();

-- Each inserted finding must belong to an attempt whose Completed event this same
-- transaction appended (the ledger inserts the event first, then its findings).
-- One statement-level check, so 100,000 findings cost one join, not 100,000 lookups.
CREATE FUNCTION findings_belong_to_completion() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    orphan record;
BEGIN
    SELECT n.scan_id, n.attempt INTO orphan
      FROM new_findings n
     WHERE NOT EXISTS (
            SELECT 1 FROM scan_events e
             WHERE e.scan_id = n.scan_id AND e.attempt = n.attempt AND e.kind = 'Completed'
               AND e.tx_id = pg_current_xact_id())
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'findings of scan % attempt % must be written with its Completed event',
            orphan.scan_id, orphan.attempt
            USING ERRCODE = 'check_violation', CONSTRAINT = 'findings_with_completion';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER findings_with_completion AFTER INSERT ON findings
    REFERENCING NEW TABLE AS new_findings
    FOR EACH STATEMENT EXECUTE FUNCTION findings_belong_to_completion();

REVOKE ALL ON findings FROM PUBLIC;
GRANT SELECT, INSERT ON findings TO scanledger_app;
