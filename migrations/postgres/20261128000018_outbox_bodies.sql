-- Each message's bytes apart from its delivery state, so that claiming
-- and recording an outcome touch a row of a hundred bytes (and the same
-- schema as SQLite, where any change rewrote the whole row, blob and all).
CREATE TABLE outbox_bodies (
    outbox_id BIGINT PRIMARY KEY REFERENCES outbox (id) ON DELETE CASCADE,
    message   BYTEA  NOT NULL
);
INSERT INTO outbox_bodies (outbox_id, message) SELECT id, message FROM outbox;
ALTER TABLE outbox DROP COLUMN message;
