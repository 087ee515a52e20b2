-- Evidence for the reviewer's row-level checks, made while the push stages the rows (issue
-- 8): for each check of the upload's dictionary revision (field NULL: a blank row), how
-- many of a group's rows the registrar could not prove to pass it (push_checks.c). The
-- reviewer leaves a check whose rows sum to 0 out of its scan and runs its own SQL for the
-- rest: the registrar only proves what certainly holds, the standard stays the reviewer's.
-- Each group commits its counts in the transaction that commits its rows, as stage_counts,
-- with a line for every check it evaluated (0 when it proved every value): a check with no
-- line was not evaluated, and the reviewer scans it.
CREATE TABLE stage_checks (
    upload     bigint NOT NULL REFERENCES uploads (id),
    field      text,
    check_name text NOT NULL,
    unproven   bigint NOT NULL CHECK (unproven >= 0)
);
CREATE INDEX stage_checks_upload ON stage_checks (upload);
GRANT SELECT ON stage_checks TO odp_reviewer;

-- The dictionary revision whose row-level checks the push evaluates, fixed at push.begin:
-- NULL for an upload begun before, or one whose evaluation was given up.
ALTER TABLE uploads ADD COLUMN checked_revision integer;
