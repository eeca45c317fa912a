-- Who holds each message being sent: a claim's token is written with it,
-- renewed while the sender still has the message in hand, and checked when
-- the outcome is recorded, so a sender whose claim passed to another never
-- sends or records that message.
ALTER TABLE outbox ADD COLUMN claim_token TEXT;
CREATE INDEX outbox_claim_token ON outbox (claim_token) WHERE claim_token IS NOT NULL;
