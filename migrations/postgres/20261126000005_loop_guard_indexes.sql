-- The loop guard asks, for every incoming message, whether its sender sent
-- the same words in the last week. Without these it reads every proposal.
CREATE INDEX proposals_from_address ON proposals (from_address, created_at);
CREATE INDEX follow_ups_from_address ON follow_ups (from_address, created_at);
