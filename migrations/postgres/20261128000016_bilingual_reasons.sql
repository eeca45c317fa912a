-- The reason for a deadline change or an early close, in English too: each
-- invited CSO is told in its own language. NULL: the same text as `reason`.
ALTER TABLE deadline_extensions ADD COLUMN reason_en TEXT;
