-- scan_status v3: v2 plus the completed scan's score, resources seen and findings by
-- severity as columns (posture over time reads them without the summary document), and
-- the indexes the console's roll-ups read: subscriptions and their latest scans, a
-- subscription's completed scans in time order, and scans that ended, by status and time.
-- One row per scan, folded from scan_events by src/projection/scan_status.rs.
-- Disposable: it can be dropped and rebuilt from the ledger.
CREATE TABLE scan_status (
    scan_id              uuid PRIMARY KEY,
    subscription_id      text        NOT NULL,
    status               text        NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    priority             smallint    NOT NULL,
    attempt              integer     NOT NULL,
    max_attempts         integer     NOT NULL,
    rules                jsonb       NOT NULL,
    worker_id            text,
    requested_by         text,
    requested_at         timestamptz NOT NULL,
    claimed_at           timestamptz,
    heartbeat_at         timestamptz,
    finished_at          timestamptz,
    lease_expires_at     timestamptz,
    next_eligible_at     timestamptz,
    progress             jsonb,
    error                jsonb,
    summary              jsonb,
    total_findings       bigint,
    score                double precision,
    resources_seen       bigint,
    findings_by_severity jsonb,
    version              integer     NOT NULL,
    last_seq             bigint      NOT NULL
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
-- Subscriptions (a skip scan over the distinct ids), each one's latest scan, and the
-- listing of one subscription's scans.
CREATE INDEX scan_status_subscription ON scan_status (subscription_id, requested_at DESC, scan_id DESC);
-- A subscription's completed scans, newest first: its latest and previous completed
-- scan, its posture over time. Rows enter it once, when they complete.
CREATE INDEX scan_status_completed ON scan_status (subscription_id, finished_at DESC, scan_id DESC)
    WHERE status = 'completed';
-- Scans that ended, by status and time: counts by status, failures by code in a window,
-- workers seen lately. Rows enter it once, when they end.
CREATE INDEX scan_status_ended ON scan_status (status, finished_at)
    WHERE status IN ('completed', 'failed', 'cancelled');
