-- Why a message is held, in Albanian too: the POC's Albanian summary and
-- pages read it in one language throughout. NULL: the same as `reason`.
ALTER TABLE inbound_messages ADD COLUMN reason_sq TEXT;
