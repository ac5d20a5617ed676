-- finding_history v1: one row per (subscription, finding fingerprint), folded from
-- Completed events and their findings by src/projection/finding_history.rs.
-- Answers "since when has this existed, and when was it fixed?".
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
    -- The first completed scan of the subscription that no longer reported it.
    resolved_scan   uuid,
    resolved_at     timestamptz,
    reopened_count  integer     NOT NULL,
    last_seq        bigint      NOT NULL,
    PRIMARY KEY (subscription_id, fingerprint)
);
CREATE INDEX finding_history_open ON finding_history (subscription_id) WHERE state = 'open';

GRANT SELECT, INSERT, UPDATE ON finding_history TO scanledger_app;
