-- Distinct users count everyone who used an entry (R6c): the query service's
-- usage.user_counted names each signed-in user who viewed, queried or downloaded a
-- resource, once per resource and day. 005's access_users knew only who applied or gave
-- feedback, so a user who only read was not among them. Anonymous use has no user to
-- count (docs/assessment.md).
CREATE TABLE usage_users (
    resource text NOT NULL,
    day      date NOT NULL,
    actor    text NOT NULL,
    PRIMARY KEY (resource, day, actor)
);

CREATE OR REPLACE VIEW access_users AS
    SELECT a.resource, (a.received_at AT TIME ZONE 'UTC')::date AS day, a.actor
    FROM applications a
    UNION
    SELECT f.resource, (f.opened_at AT TIME ZONE 'UTC')::date, f.actor
    FROM feedback f WHERE f.resource IS NOT NULL AND f.actor IS NOT NULL
    UNION
    SELECT u.resource, u.day, u.actor FROM usage_users u;
