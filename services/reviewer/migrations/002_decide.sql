-- Handling quarantined rows, the decision on a version with its sign-off, and the
-- versioned acceptance standard (R9c, R9d, R5.6a). Nothing here is ever deleted: a
-- handled row keeps its state, who handled it, when and why.

-- isolated -> corrected | dropped | released, once, by a named operations staff member.
-- A correction by operations keeps the old value beside the new one.
ALTER TABLE quarantine
    ADD COLUMN handled_by text,
    ADD COLUMN handled_at timestamptz,
    ADD COLUMN comment    text,
    ADD COLUMN field      text,
    ADD COLUMN old_value  text,
    ADD COLUMN new_value  text,
    ADD CONSTRAINT quarantine_handled CHECK ((state = 'isolated') = (handled_by IS NULL)
                                             AND (state = 'isolated') = (handled_at IS NULL)),
    ADD CONSTRAINT quarantine_corrected CHECK (state <> 'corrected' OR new_value IS NOT NULL);
CREATE INDEX quarantine_state ON quarantine (state, upload);

-- The acceptance standard, one row per version: checks is [{check, mostly}], mostly the
-- share of a version's rows that must pass the check (Great Expectations' mostly).
CREATE TABLE standards (
    version integer PRIMARY KEY CHECK (version >= 1),
    checks  jsonb NOT NULL CHECK (jsonb_typeof(checks) = 'array'),
    comment text,
    set_by  text NOT NULL,
    set_at  timestamptz NOT NULL DEFAULT now()
);

-- The decision on a version: who (an operations staff member, or the reviewer itself when
-- the standard's threshold is exceeded), when, under which standard, on what findings.
CREATE TABLE signoffs (
    upload     bigint PRIMARY KEY REFERENCES reviews (upload),
    decision   text NOT NULL CHECK (decision IN ('approved', 'rejected')),
    reason     text CHECK (decision = 'approved' OR reason IS NOT NULL),
    decided_by text NOT NULL,
    decided_at timestamptz NOT NULL DEFAULT now(),
    standard   integer REFERENCES standards (version),
    findings   jsonb NOT NULL
);

-- The findings summary a sign-off keeps: the counts, and findings per check.
CREATE FUNCTION findings_summary(u bigint) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'received', v.rows_received,
        'isolated', (SELECT count(*) FROM quarantine q WHERE q.upload = u AND q.state = 'isolated'),
        'dropped', (SELECT count(*) FROM quarantine q WHERE q.upload = u AND q.state = 'dropped'),
        'handled', (SELECT count(*) FROM quarantine q WHERE q.upload = u AND q.state <> 'isolated'),
        'by_check', COALESCE((SELECT jsonb_object_agg(check_name, n) FROM
                              (SELECT check_name, count(*) AS n FROM findings f
                               WHERE f.upload = u GROUP BY check_name) c), '{}'::jsonb))
    FROM reviews v WHERE v.upload = u
$$;

-- The first check of the current standard whose failing share of rows exceeds
-- 1 - mostly, with that share; no row when the version is within every threshold.
CREATE FUNCTION threshold_exceeded(u bigint, OUT check_name text, OUT share numeric,
                                   OUT mostly numeric) RETURNS SETOF record
LANGUAGE sql STABLE AS $$
    SELECT c.check_name, c.failing::numeric / v.rows_received, s.mostly
    FROM reviews v
    JOIN LATERAL (SELECT f.check_name, count(DISTINCT f.row_no) AS failing FROM findings f
                  WHERE f.upload = v.upload GROUP BY f.check_name) c ON true
    JOIN LATERAL (SELECT x->>'check' AS name, (x->>'mostly')::numeric AS mostly
                  FROM standards st, jsonb_array_elements(st.checks) x
                  WHERE st.version = (SELECT max(version) FROM standards)) s
      ON s.name = c.check_name
    WHERE v.upload = u AND v.rows_received > 0
      AND c.failing::numeric / v.rows_received > 1 - s.mostly
    ORDER BY c.failing::numeric / v.rows_received - (1 - s.mostly) DESC, c.check_name
    LIMIT 1
$$;
