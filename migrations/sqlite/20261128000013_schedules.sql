-- The consultation's life on a schedule: consultations that open on their
-- date, mail cancelled when a consultation closes, each LFP's digest
-- watermark, and the dispositions a digest counts as still waiting.

-- A consultation the POC has opened ahead of its opening date: it opens,
-- and its invitations go out, on that date.
ALTER TABLE consultations ADD COLUMN opens_by_schedule BOOLEAN NOT NULL DEFAULT FALSE;

-- A message can be cancelled (its consultation closed before it left);
-- last_error says why. SQLite cannot change a CHECK constraint, so the
-- table is rebuilt with the same columns and indexes.
CREATE TABLE outbox_new (
    id              INTEGER PRIMARY KEY,
    idempotency_key TEXT    NOT NULL UNIQUE,
    kind            TEXT    NOT NULL,
    recipient       TEXT    NOT NULL,
    envelope_from   TEXT    NOT NULL,
    consultation_id INTEGER REFERENCES consultations (id),
    cso_id          INTEGER REFERENCES csos (id),
    message         BLOB    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'failed', 'cancelled')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT    NOT NULL,
    claimed_until   TEXT,
    last_error      TEXT,
    created_at      TEXT    NOT NULL,
    sent_at         TEXT,
    claim_token     TEXT
);
INSERT INTO outbox_new (id, idempotency_key, kind, recipient, envelope_from, consultation_id,
    cso_id, message, state, attempts, next_attempt_at, claimed_until, last_error, created_at,
    sent_at, claim_token)
SELECT id, idempotency_key, kind, recipient, envelope_from, consultation_id, cso_id, message,
    state, attempts, next_attempt_at, claimed_until, last_error, created_at, sent_at, claim_token
FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_recipient_kind ON outbox (recipient, kind, created_at);
CREATE INDEX outbox_claim_token ON outbox (claim_token) WHERE claim_token IS NOT NULL;
CREATE INDEX outbox_consultation ON outbox (consultation_id, state);

-- Each LFP's digest covers what arrived after its watermark, up to the
-- time it was made; the watermark then moves there, in the same
-- transaction as the digest is queued.
CREATE TABLE digest_watermarks (
    lfp          TEXT PRIMARY KEY,
    done_through TEXT NOT NULL
);

-- How each proposal was considered. Until one is recorded a proposal waits
-- for its LFP's answer (the digest and the response reminders list it).
CREATE TABLE dispositions (
    proposal_id INTEGER PRIMARY KEY REFERENCES proposals (id),
    disposition TEXT    NOT NULL,
    decided_at  TEXT    NOT NULL
);

-- What a digest counts and lists, from the index: a week's proposals of a
-- consultation, and how many organisations replied to it.
CREATE INDEX proposals_created ON proposals (consultation_id, created_at, id);
-- (consultation_id) alone is a prefix of it.
DROP INDEX proposals_consultation;
CREATE INDEX proposals_replied ON proposals (consultation_id, cso_id);
CREATE INDEX follow_ups_created ON follow_ups (created_at, proposal_id);
