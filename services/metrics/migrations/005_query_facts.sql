-- The query service's events as facts (PROTOCOL.md §13, "Events"), written by the event
-- handlers of services/metrics/events.c like every other fact: usage.counted, the
-- applications for conditional data and the feedback. stats.get's access figures and
-- response times, and the index's access and effect, are computed from them.

-- usage.counted: one row per event, keyed by its number, so that counting a source again
-- from its first event (events.c, s_reconcile) cannot add a flush twice.
CREATE TABLE usage_counted (
    seq       bigint PRIMARY KEY,
    resource  text NOT NULL,
    day       date NOT NULL,
    views     bigint NOT NULL CHECK (views >= 0),
    queries   bigint NOT NULL CHECK (queries >= 0),
    downloads bigint NOT NULL CHECK (downloads >= 0)
);
CREATE INDEX usage_counted_resource ON usage_counted (resource, day);

-- application.received / decided.
CREATE TABLE applications (
    id          bigint PRIMARY KEY,
    resource    text NOT NULL,
    department  text NOT NULL,
    actor       text NOT NULL,
    received_at timestamptz NOT NULL,
    decided_at  timestamptz,
    granted     boolean,
    response_s  bigint
);
CREATE INDEX applications_resource ON applications (resource);

-- feedback.received / answered / resolved go to 002's feedback table; who gave it and
-- when it was resolved are kept too.
ALTER TABLE feedback ADD COLUMN actor text, ADD COLUMN department text,
    ADD COLUMN resolved_at timestamptz;

-- 002's access and access_users tables waited for these events; they become what the
-- functions of 003 read, computed from the facts. Distinct users: the query service's
-- events name the user of an application or a piece of feedback, not of each view
-- (usage.counted carries counts), so they are the users who applied for or gave feedback
-- on a resource (docs/assessment.md).
DROP TABLE access;
CREATE VIEW access AS
    SELECT u.resource, u.day, k.kind, sum(k.n)::bigint AS count
    FROM usage_counted u,
         LATERAL (VALUES ('view', u.views), ('query', u.queries), ('download', u.downloads))
             AS k(kind, n)
    WHERE k.n > 0
    GROUP BY u.resource, u.day, k.kind;
DROP TABLE access_users;
CREATE VIEW access_users AS
    SELECT a.resource, (a.received_at AT TIME ZONE 'UTC')::date AS day, a.actor
    FROM applications a
    UNION
    SELECT f.resource, (f.opened_at AT TIME ZONE 'UTC')::date, f.actor
    FROM feedback f WHERE f.resource IS NOT NULL AND f.actor IS NOT NULL;

-- stats.get gains the applications' response time: 003's function, renamed, with
-- efficiency.application_response_s added (mean of decided - received of the
-- applications received in the period, nil until one is decided).
ALTER FUNCTION stats_json(timestamptz, timestamptz, text) RENAME TO stats_json_003;
CREATE FUNCTION stats_json(p_from timestamptz, p_to timestamptz, p_dept text)
RETURNS json LANGUAGE sql STABLE
    SET jit = off SET work_mem = '64MB' AS $$
    SELECT jsonb_set(stats_json_003(p_from, p_to, p_dept)::jsonb,
                     '{efficiency,application_response_s}',
                     coalesce(to_jsonb((SELECT avg(extract(epoch FROM a.decided_at
                                                                - a.received_at))::float8
                                        FROM applications a
                                        WHERE a.received_at >= p_from AND a.received_at < p_to
                                          AND (p_dept IS NULL OR a.department = p_dept))),
                              'null'::jsonb))::json
$$;
