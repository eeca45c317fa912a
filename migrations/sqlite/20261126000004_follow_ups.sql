-- Replies to a receipt add to that proposal instead of making a new one.

-- The receipt a reply key was issued with, if any.
ALTER TABLE reply_keys ADD COLUMN receipt_no TEXT;

CREATE TABLE follow_ups (
    id                 INTEGER PRIMARY KEY,
    proposal_id        INTEGER NOT NULL REFERENCES proposals (id),
    inbound_message_id INTEGER NOT NULL UNIQUE REFERENCES inbound_messages (id),
    from_address       TEXT    NOT NULL,
    reply_text         TEXT    NOT NULL,
    quoted_text        TEXT    NOT NULL,
    signature          TEXT    NOT NULL,
    attachments        TEXT    NOT NULL,
    created_at         TEXT    NOT NULL
);
CREATE INDEX follow_ups_proposal ON follow_ups (proposal_id);
