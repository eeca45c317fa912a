-- On PostgreSQL this lets a registry import load new organisations with
-- COPY and ids of its own; SQLite's INTEGER PRIMARY KEY already takes them.
SELECT 1;
