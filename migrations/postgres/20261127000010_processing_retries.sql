-- A stored message whose processing failed (the store full, a fault) is
-- tried again while the daemon runs, with backoff, and held with the error
-- after too many failures.
ALTER TABLE inbound_messages ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE inbound_messages ADD COLUMN last_error TEXT;
ALTER TABLE inbound_messages ADD COLUMN next_attempt_at TIMESTAMPTZ;

-- One row written by /healthz: a store that cannot take a write is not
-- healthy, however well it answers reads.
CREATE TABLE health_probe (
    id         INTEGER PRIMARY KEY,
    checked_at TIMESTAMPTZ NOT NULL
);
