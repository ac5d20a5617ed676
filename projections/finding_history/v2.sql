-- finding_history v2: v1 plus finding_history_scans, the completions folded in and when
-- each happened. Completions fold per subscription in (at, seq) order — `at` is the
-- attempt's time (the origin time for imported history) — so importing older history
-- never resolves or reopens what newer scans say: a completion older than its
-- subscription's newest refolds that subscription from this list. A rebuild catches up by
-- what this list lacks. Folded by src/projection/finding_history.rs; disposable.
CREATE TABLE finding_history (
    subscription_id text        NOT NULL,
    fingerprint     text        NOT NULL,
    rule_id         text        NOT NULL,
    rule_name       text        NOT NULL,
    severity        text        NOT NULL,
    category        text        NOT NULL,
    resource_id     text        NOT NULL,
    resource_name   text        NOT NULL,
    resource_type   text        NOT NULL,
    state           text        NOT NULL CHECK (state IN ('open', 'resolved')),
    first_seen_scan uuid        NOT NULL,
    first_seen_at   timestamptz NOT NULL,
    last_seen_scan  uuid        NOT NULL,
    last_seen_at    timestamptz NOT NULL,
    -- The first completed scan of the subscription (in time order) that no longer reported it.
    resolved_scan   uuid,
    resolved_at     timestamptz,
    reopened_count  integer     NOT NULL,
    last_seq        bigint      NOT NULL,
    PRIMARY KEY (subscription_id, fingerprint)
);
CREATE INDEX finding_history_open ON finding_history (subscription_id) WHERE state = 'open';

CREATE TABLE finding_history_scans (
    subscription_id text        NOT NULL,
    at              timestamptz NOT NULL,
    seq             bigint      NOT NULL,
    scan_id         uuid        NOT NULL,
    PRIMARY KEY (subscription_id, at, seq)
);
CREATE UNIQUE INDEX finding_history_scans_seq ON finding_history_scans (seq);

GRANT SELECT, INSERT, UPDATE ON finding_history TO scanledger_app;
GRANT SELECT, INSERT ON finding_history_scans TO scanledger_app;
