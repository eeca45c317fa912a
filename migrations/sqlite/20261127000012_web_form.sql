-- Settings cocreate makes for itself, such as the key that signs its forms
-- and links when none is given in the environment.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- A proposal sent through the web form by someone not in the registry waits
-- here, as the message it will become, until its sender clicks the link
-- emailed to the address they gave. Only the link's hash is kept.
CREATE TABLE pending_submissions (
    -- The form's nonce: the same form sent twice waits once.
    nonce           TEXT    NOT NULL UNIQUE,
    token_hash      TEXT    PRIMARY KEY,
    consultation_id INTEGER NOT NULL REFERENCES consultations (id),
    address         TEXT    NOT NULL,
    raw             BLOB    NOT NULL,
    created_at      TEXT    NOT NULL,
    expires_at      TEXT    NOT NULL,
    inbound_id      INTEGER REFERENCES inbound_messages (id)
);
CREATE INDEX pending_submissions_address ON pending_submissions (address, created_at);

-- A form sent twice is recognised by the Message-ID its nonce gave it.
CREATE INDEX inbound_messages_message_id ON inbound_messages (message_id);
