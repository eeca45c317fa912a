-- Accountability: how each proposal was considered and by whom, every
-- change to that (the audit log), the publication of a consultation's
-- results, and passwordless sign-in for LFP contacts and POC staff.

-- The disposition of migration 13 grows into the whole decision: what was
-- decided (accepted, partly_accepted, merged, not_accepted, out_of_scope),
-- the commitment it fed, the reasoned response in Albanian and (for
-- English-speaking CSOs) English, who decided, and a key shared by the
-- proposals answered together as one group.
ALTER TABLE dispositions ADD COLUMN commitment TEXT;
ALTER TABLE dispositions ADD COLUMN response_sq TEXT NOT NULL DEFAULT '';
ALTER TABLE dispositions ADD COLUMN response_en TEXT;
ALTER TABLE dispositions ADD COLUMN decided_by TEXT NOT NULL DEFAULT '';
ALTER TABLE dispositions ADD COLUMN group_key TEXT;

-- Every change to a disposition: who, when, what it was and what it became
-- (JSON), and whether it changed a published result (a correction, owed
-- one notice: told_at is when that notice was queued).
CREATE TABLE disposition_log (
    id          INTEGER PRIMARY KEY,
    proposal_id INTEGER NOT NULL REFERENCES proposals (id),
    actor       TEXT    NOT NULL,
    at          TEXT    NOT NULL,
    before_json TEXT,
    after_json  TEXT    NOT NULL,
    correction  BOOLEAN NOT NULL DEFAULT FALSE,
    told_at     TEXT
);
CREATE INDEX disposition_log_proposal ON disposition_log (proposal_id, id);

-- A consultation's results, once the POC published them.
CREATE TABLE publications (
    consultation_id INTEGER PRIMARY KEY REFERENCES consultations (id),
    published_at    TEXT    NOT NULL,
    published_by    TEXT    NOT NULL
);

-- What the report may show of a proposal: its sender asked that the text
-- not be published; a sender outside the registry, by the name given to
-- the POC (NULL: an individual); and when the CSO said it never sent it.
ALTER TABLE proposals ADD COLUMN no_publish BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE proposals ADD COLUMN sender_name TEXT;
ALTER TABLE proposals ADD COLUMN disowned_at TEXT;

-- Sign-in links: only the hash of the token is kept, so the table cannot
-- be used to sign in; a link is used once.
CREATE TABLE sign_in_links (
    token_hash TEXT PRIMARY KEY,
    address    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
);
CREATE INDEX sign_in_links_address ON sign_in_links (address, created_at);

-- Sessions: the cookie holds the id, the table its hash, so signing out
-- (or the POC ending a session) ends it on the server too.
CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,
    address    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    ended_at   TEXT
);
