-- Each scheduled job's watermark: every scheduled time up to done_through
-- has been dealt with, so a restart neither skips nor repeats a run.
CREATE TABLE schedule_watermarks (
    job          TEXT PRIMARY KEY,
    done_through TEXT NOT NULL
);
