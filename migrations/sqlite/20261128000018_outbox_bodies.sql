-- Each message's bytes apart from its delivery state. SQLite rewrites a
-- whole row, blob and all, when any column of it changes: kept in the
-- outbox row, a message of some kilobytes was written again by its claim
-- and again by its outcome. Now those touch a row of a hundred bytes.
CREATE TABLE outbox_bodies (
    outbox_id INTEGER PRIMARY KEY REFERENCES outbox (id) ON DELETE CASCADE,
    message   BLOB    NOT NULL
);
INSERT INTO outbox_bodies (outbox_id, message) SELECT id, message FROM outbox;
ALTER TABLE outbox DROP COLUMN message;
