-- The consultation's life on a schedule: consultations that open on their
-- date, mail cancelled when a consultation closes, each LFP's digest
-- watermark, and the dispositions a digest counts as still waiting.

-- A consultation the POC has opened ahead of its opening date: it opens,
-- and its invitations go out, on that date.
ALTER TABLE consultations ADD COLUMN opens_by_schedule BOOLEAN NOT NULL DEFAULT FALSE;

-- A message can be cancelled (its consultation closed before it left);
-- last_error says why.
ALTER TABLE outbox DROP CONSTRAINT outbox_state_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_state_check
    CHECK (state IN ('queued', 'sending', 'sent', 'failed', 'cancelled'));
CREATE INDEX outbox_consultation ON outbox (consultation_id, state);

-- Each LFP's digest covers what arrived after its watermark, up to the
-- time it was made; the watermark then moves there, in the same
-- transaction as the digest is queued.
CREATE TABLE digest_watermarks (
    lfp          TEXT        PRIMARY KEY,
    done_through TIMESTAMPTZ NOT NULL
);

-- How each proposal was considered. Until one is recorded a proposal waits
-- for its LFP's answer (the digest and the response reminders list it).
CREATE TABLE dispositions (
    proposal_id BIGINT      PRIMARY KEY REFERENCES proposals (id),
    disposition TEXT        NOT NULL,
    decided_at  TIMESTAMPTZ NOT NULL
);

-- What a digest counts and lists, from the index: a week's proposals of a
-- consultation, and how many organisations replied to it.
CREATE INDEX proposals_created ON proposals (consultation_id, created_at, id);
-- (consultation_id) alone is a prefix of it.
DROP INDEX proposals_consultation;
CREATE INDEX proposals_replied ON proposals (consultation_id, cso_id);
CREATE INDEX follow_ups_created ON follow_ups (created_at, proposal_id);
