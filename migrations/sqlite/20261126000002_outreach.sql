-- Consultations, the outbox every message leaves through, reply keys, and
-- the state of each address (opted out, bounced).

CREATE TABLE consultations (
    id             INTEGER PRIMARY KEY,
    reference      TEXT NOT NULL UNIQUE,
    policy_area    TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('draft', 'open', 'closed')),
    opens_on       TEXT NOT NULL,
    closes_on      TEXT NOT NULL,
    -- The whole validated consultation (titles, meeting, drafts) as JSON.
    spec           TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);

CREATE TABLE deadline_extensions (
    id              INTEGER PRIMARY KEY,
    consultation_id INTEGER NOT NULL REFERENCES consultations (id),
    previous        TEXT NOT NULL,
    new             TEXT NOT NULL,
    reason          TEXT NOT NULL,
    at              TEXT NOT NULL
);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    -- What the message is for; enqueuing the same key twice is a no-op.
    idempotency_key TEXT    NOT NULL UNIQUE,
    kind            TEXT    NOT NULL,
    recipient       TEXT    NOT NULL,
    -- Envelope sender; empty for the null sender (RFC 3834 auto-replies).
    envelope_from   TEXT    NOT NULL,
    consultation_id INTEGER REFERENCES consultations (id),
    cso_id          INTEGER REFERENCES csos (id),
    message         BLOB    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT    NOT NULL,
    claimed_until   TEXT,
    last_error      TEXT,
    created_at      TEXT    NOT NULL,
    sent_at         TEXT
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

CREATE TABLE reply_keys (
    key             TEXT    PRIMARY KEY,
    consultation_id INTEGER NOT NULL REFERENCES consultations (id),
    cso_id          INTEGER NOT NULL REFERENCES csos (id),
    address         TEXT    NOT NULL,
    purpose         TEXT    NOT NULL,
    created_at      TEXT    NOT NULL
);
CREATE INDEX reply_keys_consultation ON reply_keys (consultation_id, cso_id);

CREATE TABLE address_status (
    address        TEXT    PRIMARY KEY,
    opted_out_at   TEXT,
    opt_out_source TEXT,
    bounced_at     TEXT,
    bounce_reason  TEXT,
    soft_bounces   INTEGER NOT NULL DEFAULT 0,
    restored_at    TEXT,
    restore_reason TEXT
);
