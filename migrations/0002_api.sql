-- API tokens: only a SHA-256 of each token is stored; the token itself is shown once.
CREATE TABLE api_tokens (
    name        text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9._-]{1,64}$'),
    role        text NOT NULL CHECK (role IN ('reader', 'operator', 'admin')),
    token_hash  bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
GRANT SELECT, INSERT, UPDATE (revoked_at) ON api_tokens TO scanledger_app;

-- Idempotency keys for POST /api/scans, per token. Written in the same transaction as
-- the Requested event they name, so a key never points at a scan that does not exist.
CREATE TABLE idempotency_keys (
    principal    text NOT NULL,
    key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash bytea NOT NULL,
    scan_id      uuid NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (principal, key)
);
GRANT SELECT, INSERT ON idempotency_keys TO scanledger_app;


-- Requests waiting for scan changes (long-polls, event streams). Writers NOTIFY only
-- while someone waits: a NOTIFY serializes commits, so it should cost nothing when
-- nobody listens. `scan_id` NULL waits for any change. Unlogged: ephemeral by design.
CREATE UNLOGGED TABLE change_waiters (
    waiter_id  uuid PRIMARY KEY,
    scan_id    uuid,
    expires_at timestamptz NOT NULL
);
CREATE INDEX change_waiters_scan ON change_waiters (scan_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON change_waiters TO scanledger_app;
