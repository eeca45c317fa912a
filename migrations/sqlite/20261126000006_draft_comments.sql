-- A comment on one of the government's draft commitments, sent to that
-- draft's own reply address: its number in the consultation (NULL for a
-- proposal of the CSO's own).
ALTER TABLE proposals ADD COLUMN draft_number INTEGER;
