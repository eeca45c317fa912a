-- Consultations, the outbox every message leaves through, reply keys, and
-- the state of each address (opted out, bounced).

CREATE TABLE consultations (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reference      TEXT NOT NULL UNIQUE,
    policy_area    TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('draft', 'open', 'closed')),
    opens_on       DATE NOT NULL,
    closes_on      DATE NOT NULL,
    -- The whole validated consultation (titles, meeting, drafts) as JSON.
    spec           TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);

CREATE TABLE deadline_extensions (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    consultation_id BIGINT NOT NULL REFERENCES consultations (id),
    previous        DATE NOT NULL,
    new             DATE NOT NULL,
    reason          TEXT NOT NULL,
    at              TIMESTAMPTZ NOT NULL
);

CREATE TABLE outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- What the message is for; enqueuing the same key twice is a no-op.
    idempotency_key TEXT    NOT NULL UNIQUE,
    kind            TEXT    NOT NULL,
    recipient       TEXT    NOT NULL,
    -- Envelope sender; empty for the null sender (RFC 3834 auto-replies).
    envelope_from   TEXT    NOT NULL,
    consultation_id BIGINT REFERENCES consultations (id),
    cso_id          BIGINT REFERENCES csos (id),
    message         BYTEA   NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'failed')),
    attempts        BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ    NOT NULL,
    claimed_until   TIMESTAMPTZ,
    last_error      TEXT,
    created_at      TIMESTAMPTZ    NOT NULL,
    sent_at         TIMESTAMPTZ
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

CREATE TABLE reply_keys (
    key             TEXT    PRIMARY KEY,
    consultation_id BIGINT NOT NULL REFERENCES consultations (id),
    cso_id          BIGINT NOT NULL REFERENCES csos (id),
    address         TEXT    NOT NULL,
    purpose         TEXT    NOT NULL,
    created_at      TIMESTAMPTZ    NOT NULL
);
CREATE INDEX reply_keys_consultation ON reply_keys (consultation_id, cso_id);

CREATE TABLE address_status (
    address        TEXT    PRIMARY KEY,
    opted_out_at   TIMESTAMPTZ,
    opt_out_source TEXT,
    bounced_at     TIMESTAMPTZ,
    bounce_reason  TEXT,
    soft_bounces   BIGINT  NOT NULL DEFAULT 0,
    restored_at    TIMESTAMPTZ,
    restore_reason TEXT
);
