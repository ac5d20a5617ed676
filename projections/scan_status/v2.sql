-- scan_status v2: v1 plus total_findings (the summary's finding count, as a column for
-- SQL readers and the OpenShield listing). One row per scan, folded from scan_events by
-- src/projection/scan_status.rs. Disposable: it can be dropped and rebuilt from the ledger.
CREATE TABLE scan_status (
    scan_id          uuid PRIMARY KEY,
    subscription_id  text        NOT NULL,
    status           text        NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    priority         smallint    NOT NULL,
    attempt          integer     NOT NULL,
    max_attempts     integer     NOT NULL,
    rules            jsonb       NOT NULL,
    worker_id        text,
    requested_by     text,
    requested_at     timestamptz NOT NULL,
    claimed_at       timestamptz,
    heartbeat_at     timestamptz,
    finished_at      timestamptz,
    lease_expires_at timestamptz,
    next_eligible_at timestamptz,
    progress         jsonb,
    error            jsonb,
    summary          jsonb,
    total_findings   bigint,
    version          integer     NOT NULL,
    last_seq         bigint      NOT NULL
) WITH (fillfactor = 80);

-- The claim query: eligible pending scans, highest priority first, oldest first.
CREATE INDEX scan_status_queue ON scan_status (priority DESC, next_eligible_at)
    WHERE status = 'pending';
-- The reaper: running attempts by lease expiry.
CREATE INDEX scan_status_leases ON scan_status (lease_expires_at) WHERE status = 'running';

GRANT SELECT, INSERT, UPDATE ON scan_status TO scanledger_app;
-- Listing: newest first, keyset-paginated on (requested_at, scan_id).
CREATE INDEX scan_status_listing ON scan_status (requested_at DESC, scan_id DESC);
-- One running scan per subscription: the claim's check reads only running rows.
CREATE INDEX scan_status_running_subscription ON scan_status (subscription_id) WHERE status = 'running';
