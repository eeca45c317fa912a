-- Inbound mail, stored byte for byte before anything else happens, and the
-- proposals made from it.

CREATE TABLE inbound_messages (
    id             INTEGER PRIMARY KEY,
    -- The message without its trace headers, hashed: the same message from
    -- two sources (or delivered twice) is one row.
    dedupe_key     TEXT    NOT NULL UNIQUE,
    source         TEXT    NOT NULL,
    raw            BLOB    NOT NULL,
    received_at    TEXT    NOT NULL,
    message_id     TEXT,
    from_address   TEXT,
    subject        TEXT,
    state          TEXT    NOT NULL CHECK (state IN ('received', 'processed', 'held', 'discarded')),
    classification TEXT,
    reason         TEXT,
    processed_at   TEXT
);
CREATE INDEX inbound_messages_state ON inbound_messages (state);

CREATE TABLE proposals (
    id                 INTEGER PRIMARY KEY,
    receipt_no         TEXT    NOT NULL UNIQUE,
    consultation_id    INTEGER NOT NULL REFERENCES consultations (id),
    cso_id             INTEGER REFERENCES csos (id),
    -- One proposal per message, however often it is processed.
    inbound_message_id INTEGER NOT NULL UNIQUE REFERENCES inbound_messages (id),
    from_address       TEXT    NOT NULL,
    other_sender       BOOLEAN NOT NULL,
    late               BOOLEAN NOT NULL,
    subject            TEXT    NOT NULL,
    reply_text         TEXT    NOT NULL,
    quoted_text        TEXT    NOT NULL,
    signature          TEXT    NOT NULL,
    -- JSON: [{name, type, size, sha256}] and the authentication results.
    attachments        TEXT    NOT NULL,
    authentication     TEXT    NOT NULL,
    created_at         TEXT    NOT NULL
);
CREATE INDEX proposals_consultation ON proposals (consultation_id);
CREATE INDEX outbox_recipient_kind ON outbox (recipient, kind, created_at);
