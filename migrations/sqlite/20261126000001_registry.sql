-- The CSO registry: organisations, their addresses, the POC's relevance
-- overrides and the history of imports.

CREATE TABLE csos (
    id                 INTEGER PRIMARY KEY,
    registration_no    TEXT    NOT NULL UNIQUE,
    name               TEXT    NOT NULL,
    phone              TEXT,
    city               TEXT,
    -- One field of activity per line.
    fields_of_activity TEXT    NOT NULL DEFAULT '',
    language           TEXT    NOT NULL CHECK (language IN ('sq', 'en')),
    active             BOOLEAN NOT NULL DEFAULT TRUE,
    created_at         TEXT    NOT NULL,
    updated_at         TEXT    NOT NULL,
    inactivated_at     TEXT
);

CREATE TABLE cso_emails (
    cso_id   INTEGER NOT NULL REFERENCES csos (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    address  TEXT    NOT NULL,
    PRIMARY KEY (cso_id, position)
);
CREATE INDEX cso_emails_address ON cso_emails (address);

-- Keyed by registration number, not cso id, so an override is independent
-- of imports.
CREATE TABLE relevance_overrides (
    registration_no TEXT NOT NULL,
    policy_area     TEXT NOT NULL,
    relevance       TEXT NOT NULL CHECK (relevance IN ('direct', 'indirect', 'none')),
    reason          TEXT NOT NULL,
    set_at          TEXT NOT NULL,
    PRIMARY KEY (registration_no, policy_area)
);

CREATE TABLE registry_imports (
    id          INTEGER PRIMARY KEY,
    file_name   TEXT    NOT NULL,
    full_import BOOLEAN NOT NULL,
    added       INTEGER NOT NULL,
    updated     INTEGER NOT NULL,
    unchanged   INTEGER NOT NULL,
    inactivated INTEGER NOT NULL,
    skipped     INTEGER NOT NULL,
    imported_at TEXT    NOT NULL
);
