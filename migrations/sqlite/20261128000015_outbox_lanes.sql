-- The outbox's two lanes (domain::Lane): 0 for answers to what someone
-- just did (receipts, follow-up receipts, confirmation and sign-in links),
-- claimed first and not paced; 1 for bulk mail, paced at the relay's rate.
ALTER TABLE outbox ADD COLUMN lane INTEGER NOT NULL DEFAULT 1;
UPDATE outbox SET lane = 0 WHERE kind IN ('receipt', 'follow_up', 'confirmation', 'sign_in');
CREATE INDEX outbox_lane_due ON outbox (lane, state, next_attempt_at);

-- A failure that was the recipient's address refused for good (a hard
-- bounce): `outbox retry` leaves it unless asked (--refused).
ALTER TABLE outbox ADD COLUMN refused BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE outbox SET refused = TRUE WHERE state = 'failed' AND last_error LIKE 'the recipient was refused:%';
