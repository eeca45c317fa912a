-- The relay refusing cocreate itself (a wrong password, TLS it will not
-- speak): one row at most, so every process can say why nothing leaves.
CREATE TABLE relay_refusal (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    reason      TEXT NOT NULL,
    since       TIMESTAMPTZ NOT NULL,
    next_try_at TIMESTAMPTZ NOT NULL
);
