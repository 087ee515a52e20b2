-- The row-level checks during the push (issue 8, round 4): the registrar evaluates, while it
-- stages a version's rows, which values certainly pass each row-level check of the revision
-- it was pushed under (registrar.stage_checks, its push_checks.c), and counts the rest. In
-- the first review under that revision a check with no such value is left out of
-- collect_row_findings' scan; the others go through the same SQL as before (count, then
-- findings), and when every check is left out nothing is scanned. A re-check, a revision
-- other than the push's, or an upload whose evidence is missing runs every check. The
-- registrar's proofs are conservative (anything it is not certain of counts against the
-- check), so the findings are the same as without the evidence; the reviewer still owns
-- the checks and decides.

-- How many checks the last check_rows scanned and how many the push's evidence left out
-- (NULL: checked before this).
ALTER TABLE reviews ADD COLUMN row_checks_scanned integer, ADD COLUMN row_checks_left_out integer;

-- As in 005_cheaper_checks.sql, leaving out the checks in proven ({field: [check name]}) and
-- the blank row when blank_proven.
CREATE FUNCTION collect_row_findings(u bigint, rev integer, is_recheck boolean, proven jsonb,
                                     blank_proven boolean, OUT scanned integer,
                                     OUT left_out integer)
LANGUAGE plpgsql SET work_mem = '256MB' SET jit = off AS $$
DECLARE
    stage text := 'stage_u' || u;
    f record;
    col text;
    -- One element per check: what breaks it, and the rest of its VALUES row (field, value,
    -- type, check, message).
    bad text[] := '{}';
    rest text[] := '{}';
    -- Each check's key in proven ({field: [check]}; null for the blank row).
    keys jsonb[] := '{}';
    kept_bad text[] := '{}';
    kept_rest text[] := '{}';
    counts bigint[];
    failing_bad text[] := '{}';
    failing_rows text[] := '{}';
    blank text;
    shortcut text;
    -- The most bytes a character of the database's encoding takes.
    char_bytes integer := pg_encoding_max_length(pg_char_to_encoding(getdatabaseencoding()));
BEGIN
    scanned := 0;
    left_out := 0;
    IF to_regclass('registrar.' || quote_ident(stage)) IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO findings (upload, row_no, field, value, type, check_name, message, recheck)
    SELECT j.upload, j.row_no, NULL, left(j.raw, 200),
           CASE WHEN j.reason = 'ragged' AND n.got IS NOT NULL AND n.got < n.want
                    THEN 'missing-cell'
                WHEN j.reason = 'ragged' THEN 'extra-cell'
                ELSE 'type-error' END,
           j.reason, j.detail, is_recheck
    FROM registrar.rejects j
    LEFT JOIN LATERAL (SELECT m[1]::bigint AS got, m[2]::bigint AS want
                       FROM regexp_match(j.detail, '^([0-9]+) fields, expected ([0-9]+)') m) n ON true
    WHERE j.upload = u
    ON CONFLICT DO NOTHING;

    FOR f IN
        SELECT d.name, d.type, d.length, d.min_length, d.required, d.allowed,
               d.min_value, d.max_value, d.pattern, d.check_name
        FROM registrar.uploads up
        JOIN registrar.dictionary_revision_fields d
          ON d.resource = up.resource AND d.table_name = up.table_name AND d.revision = rev
        JOIN registrar.dictionary_revision_fields o
          ON o.resource = up.resource AND o.table_name = up.table_name
         AND o.revision = up.dictionary_revision AND o.name = d.name AND o.type = d.type
        JOIN stage_columns(stage) c ON c.column_name = d.name
        WHERE up.id = u
        ORDER BY d.position
    LOOP
        col := 's.' || quote_ident(f.name);
        IF f.required THEN
            bad := bad || CASE WHEN f.type = 'text' THEN format('(%s IS NULL OR %s = '''')', col, col)
                               ELSE format('(%s IS NULL)', col) END;
            rest := rest || format('%L, NULL::text, ''constraint-error'', ''required'', '
                                   '''a required value is empty''', f.name);
            keys := keys || jsonb_build_object(f.name, jsonb_build_array('required'));
        END IF;
        IF f.allowed IS NOT NULL THEN
            bad := bad || format('(%s::text <> ALL (%L::text[]))', col, f.allowed);
            rest := rest || format('%L, %s::text, ''constraint-error'', ''enum'', '
                                   '''the value is not one of the allowed values''', f.name, col);
            keys := keys || jsonb_build_object(f.name, jsonb_build_array('enum'));
        END IF;
        IF f.min_value IS NOT NULL AND f.type IN ('integer', 'numeric') THEN
            bad := bad || CASE WHEN f.type = 'integer' THEN integer_bound(col, '<', f.min_value)
                               ELSE format('(%s < %L::numeric)', col, f.min_value) END;
            rest := rest || format('%L, %s::text, ''constraint-error'', ''minimum'', %L', f.name,
                                   col, 'the value is below the minimum ' || f.min_value);
            keys := keys || jsonb_build_object(f.name, jsonb_build_array('minimum'));
        END IF;
        IF f.max_value IS NOT NULL AND f.type IN ('integer', 'numeric') THEN
            bad := bad || CASE WHEN f.type = 'integer' THEN integer_bound(col, '>', f.max_value)
                               ELSE format('(%s > %L::numeric)', col, f.max_value) END;
            rest := rest || format('%L, %s::text, ''constraint-error'', ''maximum'', %L', f.name,
                                   col, 'the value is above the maximum ' || f.max_value);
            keys := keys || jsonb_build_object(f.name, jsonb_build_array('maximum'));
        END IF;
        IF f.length IS NOT NULL AND f.type = 'text' THEN
            bad := bad || format('(octet_length(%s) > %s AND char_length(%s) > %s)', col,
                                 f.length, col, f.length);
            rest := rest || format('%L, left(%s, 200), ''constraint-error'', ''maxLength'', %L',
                                   f.name, col,
                                   'the value is longer than ' || f.length || ' characters');
            keys := keys || jsonb_build_object(f.name, jsonb_build_array('maxLength'));
        END IF;
        IF f.min_length IS NOT NULL AND f.type = 'text' THEN
            bad := bad || format('(%s <> '''' AND octet_length(%s) < %s AND char_length(%s) < %s)',
                                 col, col, f.min_length::bigint * char_bytes, col,
                                 f.min_length);
            rest := rest || format('%L, left(%s, 200), ''constraint-error'', ''minLength'', %L',
                                   f.name, col,
                                   'the value is shorter than ' || f.min_length || ' characters');
            keys := keys || jsonb_build_object(f.name, jsonb_build_array('minLength'));
        END IF;
        IF f.pattern IS NOT NULL THEN
            shortcut := pattern_shortcut(col || '::text', f.pattern);
            bad := bad || format('(%s::text <> '''' AND NOT (%s%s::text ~ %L))', col,
                                 coalesce(shortcut || ' OR ', ''), col,
                                 '^(?:' || f.pattern || ')$');
            rest := rest || format('%L, left(%s::text, 200), ''constraint-error'', ''pattern'', %L',
                                   f.name, col, 'the value does not match ' || f.pattern);
            keys := keys || jsonb_build_object(f.name, jsonb_build_array('pattern'));
        END IF;
        IF f.check_name IS NOT NULL THEN
            bad := bad || format('(%s::text <> '''' AND NOT %s(%s::text))', col,
                                 CASE f.check_name WHEN 'uscc' THEN 'uscc_valid'
                                                   ELSE 'idcard_valid' END, col);
            rest := rest || format('%L, left(%s::text, 200), ''constraint-error'', %L, %L',
                                   f.name, col, f.check_name,
                                   'the check digit is wrong ('
                                   || CASE f.check_name WHEN 'uscc' THEN 'GB 32100'
                                                        ELSE 'GB 11643' END || ')');
            keys := keys || jsonb_build_object(f.name, jsonb_build_array(f.check_name));
        END IF;
    END LOOP;

    -- A blank row: every column of the version empty.
    blank := (repeat_plan(u, rev)).blank;
    IF blank IS NOT NULL THEN
        bad := bad || ('(' || blank || ')');
        rest := rest || 'NULL::text, NULL::text, ''blank-row'', ''blank-row'', '
                        '''every cell of the row is empty'''::text;
        keys := keys || 'null'::jsonb;
    END IF;
    -- The checks the push proved for every row are left out; when that is all of them,
    -- nothing is scanned.
    FOR i IN 1 .. cardinality(bad) LOOP
        IF (keys[i] = 'null' AND blank_proven) OR (keys[i] <> 'null' AND proven @> keys[i]) THEN
            left_out := left_out + 1;
        ELSE
            kept_bad := kept_bad || bad[i];
            kept_rest := kept_rest || rest[i];
        END IF;
    END LOOP;
    bad := kept_bad;
    rest := kept_rest;
    scanned := cardinality(bad);
    IF cardinality(bad) = 0 THEN
        RETURN;
    END IF;

    -- Each check counted in one aggregate (a parallel query where the planner finds it
    -- worth it), then only those that failed evaluated again into findings.
    EXECUTE format('SELECT ARRAY[%s] FROM registrar.%I s',
                   (SELECT string_agg(format('count(*) FILTER (WHERE %s)', b), ', ')
                      FROM unnest(bad) b), stage)
        INTO counts;
    FOR i IN 1 .. cardinality(bad) LOOP
        IF counts[i] > 0 THEN
            failing_bad := failing_bad || bad[i];
            failing_rows := failing_rows || format('(s."#bad"[%s], %s)',
                                                   cardinality(failing_bad), rest[i]);
        END IF;
    END LOOP;
    IF cardinality(failing_bad) > 0 THEN
        EXECUTE format('INSERT INTO findings (upload, row_no, field, value, type, check_name, '
                       'message, recheck) SELECT $1, s.row_no, c.field, c.value, c.type, '
                       'c.check_name, c.message, $2 FROM (SELECT s.*, ARRAY[%s] AS "#bad" FROM '
                       'registrar.%I s OFFSET 0) s CROSS JOIN LATERAL (VALUES %s) c(bad, field, '
                       'value, type, check_name, message) WHERE true = ANY (s."#bad") AND c.bad '
                       'ON CONFLICT DO NOTHING', array_to_string(failing_bad, ', '), stage,
                       array_to_string(failing_rows, ', '))
            USING u, is_recheck;
    END IF;
END
$$;

-- As before, with no evidence: every check.
CREATE OR REPLACE FUNCTION collect_row_findings(u bigint, rev integer, is_recheck boolean)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM collect_row_findings(u, rev, is_recheck, '{}'::jsonb, false);
END
$$;

-- The checks the push proved for version u under revision rev: the (field, check) pairs of
-- stage_checks with no unproven value, when the push evaluated rev.
CREATE FUNCTION push_proven(u bigint, rev integer, OUT proven jsonb, OUT blank_proven boolean)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    SELECT coalesce(jsonb_object_agg(p.field, p.checks) FILTER (WHERE p.field IS NOT NULL),
                    '{}'),
           coalesce(bool_or(p.field IS NULL AND p.checks ? 'blank-row'), false)
      INTO proven, blank_proven
      FROM (SELECT c.field, jsonb_agg(c.check_name) AS checks
              FROM (SELECT s.field, s.check_name
                      FROM registrar.stage_checks s
                      JOIN registrar.uploads up ON up.id = s.upload AND up.checked_revision = rev
                     WHERE s.upload = u
                     GROUP BY s.field, s.check_name
                    HAVING sum(s.unproven) = 0) c
             GROUP BY c.field) p;
END
$$;

-- As in 004_fast_checks.sql, with the push's evidence for the upload's own revision, and
-- what it saved recorded in reviews.
CREATE OR REPLACE FUNCTION check_rows(u bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    rev integer := (SELECT dictionary_revision FROM registrar.uploads WHERE id = u);
    p record;
    r record;
BEGIN
    DELETE FROM quarantine WHERE upload = u;
    DELETE FROM quality_scores WHERE upload = u;
    DELETE FROM findings WHERE upload = u;
    p := push_proven(u, rev);
    r := collect_row_findings(u, rev, false, p.proven, p.blank_proven);
    UPDATE reviews SET row_checks_scanned = r.scanned, row_checks_left_out = r.left_out
     WHERE upload = u;
END
$$;
