-- A CSO's addresses are kept in the order of their key (the CSO, then the
-- position) without a rowid of their own: each address is one entry in
-- one b-tree instead of a row and an entry in its key's index, which is
-- a fifth of what a registry import writes. (On PostgreSQL this version
-- lets the import load new organisations with COPY.)
CREATE TABLE cso_emails_by_key (
    cso_id   INTEGER NOT NULL REFERENCES csos (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    address  TEXT    NOT NULL,
    PRIMARY KEY (cso_id, position)
) WITHOUT ROWID;
INSERT INTO cso_emails_by_key (cso_id, position, address)
    SELECT cso_id, position, address FROM cso_emails;
DROP TABLE cso_emails;
ALTER TABLE cso_emails_by_key RENAME TO cso_emails;
CREATE INDEX cso_emails_address ON cso_emails (address);
