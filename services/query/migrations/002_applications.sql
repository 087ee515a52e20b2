-- Applications for conditional data (R4.4, R7d): a user asks for a resource with a
-- purpose, a scope and a period; the resource's department or operations grants it until
-- a time, or refuses it with a reason.
CREATE TABLE applications (
    id            bigserial PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users (id),
    resource      text NOT NULL,
    department    text NOT NULL,
    purpose       text NOT NULL,
    scope         text NOT NULL,
    period_from   date NOT NULL,
    period_to     date NOT NULL CHECK (period_to >= period_from),
    state         text NOT NULL DEFAULT 'submitted'
                  CHECK (state IN ('submitted', 'granted', 'refused')),
    submitted_at  timestamptz NOT NULL DEFAULT now(),
    decided_by    text,
    decided_at    timestamptz,
    expires_at    timestamptz,
    granted_scope text,
    reason        text,
    CHECK (state <> 'granted' OR expires_at IS NOT NULL),
    CHECK (state <> 'refused' OR reason IS NOT NULL)
);
CREATE INDEX applications_user ON applications (user_id, resource);
CREATE INDEX applications_department ON applications (department, state);

-- The one rule every read of rows goes through (the rows part of the query service):
-- unconditional data anyone may read, conditional data only a user holding an unexpired
-- grant, not_open data nobody; an entry the public cannot see (not registered) nobody.
-- plpgsql: the body is resolved at the first call, not when the function is created.
CREATE FUNCTION may_read(p_user bigint, p_resource text) RETURNS boolean
    LANGUAGE plpgsql STABLE AS $$
DECLARE
    kind text;
BEGIN
    SELECT r.open_type INTO kind FROM registrar.resources r
     WHERE r.resource = p_resource AND r.status = 'registered';
    IF kind = 'unconditional' THEN
        RETURN true;
    ELSIF kind = 'conditional' AND p_user IS NOT NULL THEN
        RETURN EXISTS (SELECT 1 FROM applications a
                        WHERE a.user_id = p_user AND a.resource = p_resource
                          AND a.state = 'granted' AND a.expires_at > now());
    END IF;
    RETURN false;
END
$$;
