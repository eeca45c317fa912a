-- Why a proposal or follow-up needs a second look: routed by the sender's
-- address alone, or added by someone who is neither the CSO nor the
-- proposal's sender, with the authentication results the mail server
-- recorded. NULL when there is nothing to say.
ALTER TABLE proposals ADD COLUMN sender_flag TEXT;
ALTER TABLE follow_ups ADD COLUMN sender_flag TEXT;
