-- Keeping the catalogue up to date (R4.2c, R5.3, R5.4) and services and apps as entries
-- (R7a, R8.2b, R8.3d).

-- A plan may be changed while it is planned, or cancelled with a reason; a cancelled plan
-- is never overdue and can no longer be catalogued.
ALTER TABLE plans
    ADD COLUMN updated_by       text,
    ADD COLUMN updated_at       timestamptz,
    ADD COLUMN cancelled_reason text,
    ADD COLUMN cancelled_by     text,
    ADD COLUMN cancelled_at     timestamptz,
    ADD CONSTRAINT plans_cancelled CHECK ((cancelled_at IS NULL) = (cancelled_reason IS NULL));

-- access_conditions: the conditions of access in words (R5.3 "访问的相关条件"; a conditional
-- opening needs them). endpoint: where a query or exchange interface answers, or where an
-- app is found; those entries have no pushed content, a dataset file has no endpoint. The
-- registrar checks both at cataloguing, at every change and at registration.request, not
-- here: entries catalogued before this migration have neither and must stay changeable.
ALTER TABLE resources
    ADD COLUMN access_conditions text,
    ADD COLUMN endpoint          text;

-- A refusal reason belongs to the refused state only (a new request clears it), so no
-- other state can show one.
ALTER TABLE resources
    ADD CONSTRAINT resources_refused_reason CHECK (refused_reason IS NULL OR status = 'refused');
