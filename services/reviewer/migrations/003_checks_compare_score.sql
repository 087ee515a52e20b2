-- The whole acceptance review (R9c, R9d, R5.6b, R9e): every check of the dictionary the
-- version was pushed with, including the table-wide ones (primary key, duplicate and blank
-- rows, minLength), the comparison with what was declared and with the previous version,
-- a quality score per version for the metrics service, and re-checks of approved versions.

-- A review is begun (its row and review.started committed) and then checked in a second
-- transaction: a reviewer that dies in between finds the review with checked_at NULL at
-- start and checks it again from the beginning. A finding is kept once per row, field and
-- check, so a re-check raises only what is new. recheck marks the findings a re-check
-- raised against an approved version (they do not reopen its quarantine).
ALTER TABLE findings
    ADD COLUMN recheck   boolean NOT NULL DEFAULT false,
    ADD COLUMN raised_at timestamptz NOT NULL DEFAULT now();
CREATE UNIQUE INDEX findings_once ON findings (upload, row_no, (coalesce(field, '')), check_name);
CREATE INDEX reviews_unchecked ON reviews (upload) WHERE checked_at IS NULL;

-- compare: the version against what was declared, against the previous version, and its
-- timeliness (compare_version). rechecked_at: the last re-check under a new standard or
-- the schedule.
ALTER TABLE reviews
    ADD COLUMN compare      jsonb,
    ADD COLUMN rechecked_at timestamptz;

DROP FUNCTION run_checks(bigint);

-- The check digits of 001_review.sql in one expression each: the same result as the loops
-- there, without a plpgsql statement per character (they run once per row of a version).
CREATE OR REPLACE FUNCTION uscc_valid(code text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE
STRICT AS $$
BEGIN
    RETURN code ~ '^[0-9A-HJ-NP-RTUWXY]{18}$' AND substr('0123456789ABCDEFGHJKLMNPQRTUWXY',
        (31 - ((strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(code, 1, 1)) - 1) * 1
             + (strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(code, 2, 1)) - 1) * 3
             + (strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(code, 3, 1)) - 1) * 9
             + (strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(code, 4, 1)) - 1) * 27
             + (strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(code, 5, 1)) - 1) * 19
             + (strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(code, 6, 1)) - 1) * 26
             + (strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(code, 7, 1)) - 1) * 16
             + (strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(code, 8, 1)) - 1) * 17
             + (strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(code, 9, 1)) - 1) * 20
             + (strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(code, 10, 1)) - 1) * 29
             + (strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(code, 11, 1)) - 1) * 25
             + (strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(code, 12, 1)) - 1) * 13
             + (strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(code, 13, 1)) - 1) * 8
             + (strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(code, 14, 1)) - 1) * 24
             + (strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(code, 15, 1)) - 1) * 10
             + (strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(code, 16, 1)) - 1) * 30
             + (strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(code, 17, 1)) - 1) * 28) % 31)
        % 31 + 1, 1) = substr(code, 18, 1);
END
$$;

CREATE OR REPLACE FUNCTION idcard_valid(code text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE
STRICT AS $$
BEGIN
    RETURN code ~ '^[0-9]{17}[0-9X]$' AND substr('10X98765432',
        (substr(code, 1, 1)::int * 7 + substr(code, 2, 1)::int * 9 + substr(code, 3, 1)::int * 10
         + substr(code, 4, 1)::int * 5 + substr(code, 5, 1)::int * 8 + substr(code, 6, 1)::int * 4
         + substr(code, 7, 1)::int * 2 + substr(code, 8, 1)::int * 1 + substr(code, 9, 1)::int * 6
         + substr(code, 10, 1)::int * 3 + substr(code, 11, 1)::int * 7
         + substr(code, 12, 1)::int * 9 + substr(code, 13, 1)::int * 10
         + substr(code, 14, 1)::int * 5 + substr(code, 15, 1)::int * 8
         + substr(code, 16, 1)::int * 4 + substr(code, 17, 1)::int * 2) % 11 + 1, 1)
        = substr(code, 18, 1);
END
$$;

-- Every check of dictionary revision rev over version u, into findings (once per row,
-- field and check: ON CONFLICT keeps what is there). A field is checked when the version's
-- staging table has it with the type it has in rev. The row-level checks run in one scan
-- of the staging table, each evaluated once per row into an array (OFFSET 0 keeps the
-- planner from copying the expressions into the filter); a row goes on to the VALUES list
-- of checks (one VALUES row per check, joined laterally) only when it breaks at least one
-- of them. Unique, primary key
-- and duplicate rows are window functions over the whole version; a duplicate row repeats
-- every value, so with a unique field only the rows whose value of it repeats (its
-- findings, passed as an array: a hashed = ANY, whatever the statistics) or is empty can
-- be one. Text is partitioned byte-wise (COLLATE "C": the same
-- equality, a faster sort). Names are quoted with %I, the dictionary's constants with %L
-- (quote_literal), never pasted in. The statements own columns are named "#bad", "#k" and "#first",
-- which a dictionary field is not expected to be.
CREATE FUNCTION collect_findings(u bigint, rev integer, is_recheck boolean) RETURNS void
LANGUAGE plpgsql SET work_mem = '256MB' AS $$
DECLARE
    stage text := 'stage_u' || u;
    f record;
    col text;
    part text;
    row_checks text[] := '{}';
    bad text[] := '{}';
    all_cols text;
    all_part text;
    blank text;
    pk_cols text;
    pk_names text;
    pk_n integer;
    pk_want integer;
    u_col text;
    u_name text;
    candidates text := 'true';
    repeats text[];
BEGIN
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
        SELECT d.name, d.type, d.length, d.min_length, d.required, d.is_unique, d.allowed,
               d.min_value, d.max_value, d.pattern, d.check_name
        FROM registrar.uploads up
        JOIN registrar.dictionary_revision_fields d
          ON d.resource = up.resource AND d.table_name = up.table_name AND d.revision = rev
        JOIN registrar.dictionary_revision_fields o
          ON o.resource = up.resource AND o.table_name = up.table_name
         AND o.revision = up.dictionary_revision AND o.name = d.name AND o.type = d.type
        JOIN information_schema.columns c
          ON c.table_schema = 'registrar' AND c.table_name = stage AND c.column_name = d.name
        WHERE up.id = u
        ORDER BY d.position
    LOOP
        col := 's.' || quote_ident(f.name);
        part := col || CASE WHEN f.type = 'text' THEN ' COLLATE "C"' ELSE '' END;
        IF f.required THEN
            bad := bad || format('(%s IS NULL OR %s::text = '''')', col, col);
            row_checks := row_checks || format(
                '(%s, %L, NULL::text, ''constraint-error'', ''required'', '
                '''a required value is empty'')', 's."#bad"[' || cardinality(bad) || ']', f.name);
        END IF;
        IF f.allowed IS NOT NULL THEN
            bad := bad || format('(%s::text <> ALL (%L::text[]))', col, f.allowed);
            row_checks := row_checks || format(
                '(%s, %L, %s::text, ''constraint-error'', ''enum'', '
                '''the value is not one of the allowed values'')', 's."#bad"[' || cardinality(bad) || ']',
                f.name, col);
        END IF;
        IF f.min_value IS NOT NULL AND f.type IN ('integer', 'numeric') THEN
            bad := bad || format('(%s < %L::numeric)', col, f.min_value);
            row_checks := row_checks || format(
                '(%s, %L, %s::text, ''constraint-error'', ''minimum'', %L)',
                's."#bad"[' || cardinality(bad) || ']', f.name, col,
                'the value is below the minimum ' || f.min_value);
        END IF;
        IF f.max_value IS NOT NULL AND f.type IN ('integer', 'numeric') THEN
            bad := bad || format('(%s > %L::numeric)', col, f.max_value);
            row_checks := row_checks || format(
                '(%s, %L, %s::text, ''constraint-error'', ''maximum'', %L)',
                's."#bad"[' || cardinality(bad) || ']', f.name, col,
                'the value is above the maximum ' || f.max_value);
        END IF;
        IF f.length IS NOT NULL AND f.type = 'text' THEN
            bad := bad || format('(char_length(%s) > %s)', col, f.length);
            row_checks := row_checks || format(
                '(%s, %L, left(%s, 200), ''constraint-error'', ''maxLength'', %L)',
                's."#bad"[' || cardinality(bad) || ']', f.name, col,
                'the value is longer than ' || f.length || ' characters');
        END IF;
        IF f.min_length IS NOT NULL AND f.type = 'text' THEN
            bad := bad || format('(%s <> '''' AND char_length(%s) < %s)', col, col, f.min_length);
            row_checks := row_checks || format(
                '(%s, %L, left(%s, 200), ''constraint-error'', ''minLength'', %L)',
                's."#bad"[' || cardinality(bad) || ']', f.name, col,
                'the value is shorter than ' || f.min_length || ' characters');
        END IF;
        IF f.pattern IS NOT NULL THEN
            bad := bad || format('(%s::text <> '''' AND NOT %s::text ~ %L)', col, col,
                                 '^(?:' || f.pattern || ')$');
            row_checks := row_checks || format(
                '(%s, %L, left(%s::text, 200), ''constraint-error'', ''pattern'', %L)',
                's."#bad"[' || cardinality(bad) || ']', f.name, col, 'the value does not match ' || f.pattern);
        END IF;
        IF f.check_name IS NOT NULL THEN
            bad := bad || format('(%s::text <> '''' AND NOT %s(%s::text))', col,
                                 CASE f.check_name WHEN 'uscc' THEN 'uscc_valid'
                                                   ELSE 'idcard_valid' END, col);
            row_checks := row_checks || format(
                '(%s, %L, left(%s::text, 200), ''constraint-error'', %L, %L)',
                's."#bad"[' || cardinality(bad) || ']', f.name, col, f.check_name,
                'the check digit is wrong ('
                || CASE f.check_name WHEN 'uscc' THEN 'GB 32100' ELSE 'GB 11643' END || ')');
        END IF;
        IF f.is_unique THEN
            EXECUTE format('INSERT INTO findings (upload, row_no, field, value, type, check_name, '
                           'message, recheck) SELECT $1, row_no, $2, left(v, 200), '
                           '''unique-error'', ''unique'', ''the value appears in an earlier row'', '
                           '$3 FROM (SELECT row_no, %s::text AS v, row_number() OVER (PARTITION BY '
                           '%s ORDER BY row_no) AS k FROM registrar.%I s WHERE %s IS NOT NULL) x '
                           'WHERE k > 1 ON CONFLICT DO NOTHING', col, part, stage, col)
                USING u, f.name, is_recheck;
            IF u_col IS NULL THEN
                u_col := col;
                u_name := f.name;
            END IF;
        END IF;
    END LOOP;

    -- A blank row: every column of the version empty.
    SELECT string_agg('s.' || quote_ident(c.column_name), ', ' ORDER BY c.ordinal_position),
           string_agg('s.' || quote_ident(c.column_name)
                      || CASE WHEN c.data_type = 'text' THEN ' COLLATE "C"' ELSE '' END,
                      ', ' ORDER BY c.ordinal_position),
           string_agg(format('coalesce(s.%I::text, '''') = ''''', c.column_name), ' AND ')
      INTO all_cols, all_part, blank
      FROM information_schema.columns c
     WHERE c.table_schema = 'registrar' AND c.table_name = stage AND c.column_name <> 'row_no';
    IF blank IS NOT NULL THEN
        bad := bad || ('(' || blank || ')');
        row_checks := row_checks || format(
            '(%s, NULL::text, NULL::text, ''blank-row'', ''blank-row'', '
            '''every cell of the row is empty'')', 's."#bad"[' || cardinality(bad) || ']');
    END IF;
    IF cardinality(row_checks) > 0 THEN
        EXECUTE format('INSERT INTO findings (upload, row_no, field, value, type, check_name, '
                       'message, recheck) SELECT $1, s.row_no, c.field, c.value, c.type, '
                       'c.check_name, c.message, $2 FROM (SELECT s.*, ARRAY[%s] AS "#bad" FROM '
                       'registrar.%I s OFFSET 0) s CROSS JOIN LATERAL (VALUES %s) c(bad, field, '
                       'value, type, check_name, message) WHERE true = ANY (s."#bad") AND c.bad '
                       'ON CONFLICT DO NOTHING', array_to_string(bad, ', '), stage,
                       array_to_string(row_checks, ', '))
            USING u, is_recheck;
    END IF;

    -- A duplicate row: the same values in every column as an earlier row (blank rows are
    -- reported as such, not again as duplicates).
    IF u_col IS NOT NULL THEN
        candidates := format('(%s IS NULL OR left(%s::text, 200) = ANY ($3))', u_col, u_col);
        repeats := ARRAY(SELECT DISTINCT value FROM findings
                          WHERE upload = u AND check_name = 'unique' AND field = u_name);
    END IF;
    IF all_cols IS NOT NULL THEN
        EXECUTE format('INSERT INTO findings (upload, row_no, field, value, type, check_name, '
                       'message, recheck) SELECT $1, row_no, NULL, left(ROW(%s)::text, 200), '
                       '''duplicate-row'', ''duplicate-row'', ''the row repeats row '' || '
                       's."#first", $2 FROM (SELECT s.*, row_number() OVER w AS "#k", '
                       'first_value(s.row_no) OVER w AS "#first" FROM registrar.%I s WHERE %s '
                       'AND NOT (%s) WINDOW w AS (PARTITION BY %s ORDER BY s.row_no)) s '
                       'WHERE s."#k" > 1 '
                       'ON CONFLICT DO NOTHING', all_cols, stage, candidates, blank, all_part)
            USING u, is_recheck, repeats;
    END IF;

    -- The primary key: the fields marked primary_key in rev, together; a key that repeats
    -- an earlier row's. Checked only when the staging table has every key field.
    SELECT string_agg('s.' || quote_ident(d.name), ', ' ORDER BY d.position),
           string_agg('s.' || quote_ident(d.name)
                      || CASE WHEN d.type = 'text' THEN ' COLLATE "C"' ELSE '' END,
                      ', ' ORDER BY d.position),
           string_agg(d.name, ',' ORDER BY d.position), count(c.column_name), count(*)
      INTO pk_cols, part, pk_names, pk_n, pk_want
      FROM registrar.uploads up
      JOIN registrar.dictionary_revision_fields d
        ON d.resource = up.resource AND d.table_name = up.table_name AND d.revision = rev
      LEFT JOIN information_schema.columns c
        ON c.table_schema = 'registrar' AND c.table_name = stage AND c.column_name = d.name
     WHERE up.id = u AND d.primary_key;
    IF pk_want > 0 AND pk_n = pk_want THEN
        EXECUTE format('INSERT INTO findings (upload, row_no, field, value, type, check_name, '
                       'message, recheck) SELECT $1, row_no, $2, left(v, 200), ''primary-key'', '
                       '''primary-key'', ''the primary key ('' || $2 || '') repeats row '' || '
                       'first, $3 FROM (SELECT s.row_no, ROW(%s)::text AS v, row_number() OVER w '
                       'AS k, first_value(s.row_no) OVER w AS first FROM registrar.%I s '
                       'WINDOW w AS (PARTITION BY %s ORDER BY s.row_no)) x WHERE k > 1 '
                       'ON CONFLICT DO NOTHING', pk_cols, stage, part)
            USING u, pk_names, is_recheck;
    END IF;
END
$$;

-- The version against what was declared (the dictionary's fields and the staging table's,
-- size, hash, format), against the previous received version of the same table (rows by
-- count and, with a primary key or a unique field in both, by key; the dictionary's
-- fields), and its timeliness against the entry's update cycle.
CREATE FUNCTION compare_version(u bigint) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    up record;
    prev record;
    res record;
    declared jsonb;
    previous jsonb := NULL;
    timely jsonb;
    key_cols text;
    key_names text;
    added bigint;
    removed bigint;
    period interval;
    due date;
BEGIN
    SELECT id, resource, table_name, version, format, encoding, size, committed, sha256,
           status, rows_received, rows_staged, rows_rejected, dictionary_revision,
           finished_at, 'stage_u' || id AS staging_table
      INTO up FROM registrar.uploads WHERE id = u;
    SELECT jsonb_build_object(
               'fields', coalesce(jsonb_agg(d.name ORDER BY d.position), '[]'::jsonb),
               'fields_missing', coalesce(jsonb_agg(d.name ORDER BY d.position)
                                          FILTER (WHERE c.column_name IS NULL), '[]'::jsonb),
               'format', up.format, 'encoding', up.encoding,
               'size_declared', up.size, 'size_received', up.committed,
               'size_matches', up.size = up.committed,
               'sha256_declared', up.sha256, 'sha256_verified', up.status = 'received',
               'dictionary_revision', up.dictionary_revision,
               'rows', up.rows_received, 'rows_staged', up.rows_staged,
               'rows_rejected', up.rows_rejected)
      INTO declared
      FROM registrar.dictionary_revision_fields d
      LEFT JOIN information_schema.columns c
        ON c.table_schema = 'registrar' AND c.table_name = up.staging_table
       AND c.column_name = d.name
     WHERE d.resource = up.resource AND d.table_name = up.table_name
       AND d.revision = up.dictionary_revision;

    SELECT id, version, rows_received, dictionary_revision, format, finished_at,
           'stage_u' || id AS staging_table
      INTO prev FROM registrar.uploads
     WHERE resource = up.resource AND table_name = up.table_name AND status = 'received'
       AND kind = 'dataset' AND version < up.version
     ORDER BY version DESC LIMIT 1;
    IF prev.id IS NOT NULL THEN
        -- The key: the primary key, else the first unique field, present with the same
        -- type in both versions' revisions.
        SELECT string_agg(quote_ident(a.name), ', ' ORDER BY a.position),
               string_agg(a.name, ',' ORDER BY a.position)
          INTO key_cols, key_names
          FROM registrar.dictionary_revision_fields a
          JOIN registrar.dictionary_revision_fields b
            ON b.resource = a.resource AND b.table_name = a.table_name
           AND b.revision = prev.dictionary_revision AND b.name = a.name AND b.type = a.type
           AND b.primary_key
         WHERE a.resource = up.resource AND a.table_name = up.table_name
           AND a.revision = up.dictionary_revision AND a.primary_key;
        IF key_cols IS NULL THEN
            SELECT quote_ident(a.name), a.name INTO key_cols, key_names
              FROM registrar.dictionary_revision_fields a
              JOIN registrar.dictionary_revision_fields b
                ON b.resource = a.resource AND b.table_name = a.table_name
               AND b.revision = prev.dictionary_revision AND b.name = a.name
               AND b.type = a.type AND b.is_unique
             WHERE a.resource = up.resource AND a.table_name = up.table_name
               AND a.revision = up.dictionary_revision AND a.is_unique
             ORDER BY a.position LIMIT 1;
        END IF;
        IF key_cols IS NOT NULL AND to_regclass('registrar.' || quote_ident(up.staging_table)) IS NOT NULL
           AND to_regclass('registrar.' || quote_ident(prev.staging_table)) IS NOT NULL THEN
            EXECUTE format('SELECT (SELECT count(*) FROM (SELECT %s FROM registrar.%I EXCEPT '
                           'SELECT %s FROM registrar.%I) a), (SELECT count(*) FROM (SELECT %s '
                           'FROM registrar.%I EXCEPT SELECT %s FROM registrar.%I) r)',
                           key_cols, up.staging_table, key_cols, prev.staging_table,
                           key_cols, prev.staging_table, key_cols, up.staging_table)
                INTO added, removed;
        END IF;
        SELECT jsonb_build_object(
                   'upload', prev.id, 'version', prev.version, 'rows', prev.rows_received,
                   'rows_delta', up.rows_received - prev.rows_received,
                   'key', key_names, 'keys_added', added, 'keys_removed', removed,
                   'format_changed', prev.format <> up.format,
                   'fields_added', coalesce(jsonb_agg(a.name ORDER BY a.position)
                                            FILTER (WHERE b.name IS NULL AND a.name IS NOT NULL),
                                            '[]'::jsonb),
                   'fields_removed', coalesce(jsonb_agg(b.name ORDER BY b.position)
                                              FILTER (WHERE a.name IS NULL AND b.name IS NOT NULL),
                                              '[]'::jsonb),
                   'fields_retyped', coalesce(jsonb_agg(a.name ORDER BY a.position)
                                              FILTER (WHERE a.type <> b.type), '[]'::jsonb))
          INTO previous
          FROM (SELECT name, type, position FROM registrar.dictionary_revision_fields
                 WHERE resource = up.resource AND table_name = up.table_name
                   AND revision = up.dictionary_revision) a
          FULL JOIN (SELECT name, type, position FROM registrar.dictionary_revision_fields
                      WHERE resource = up.resource AND table_name = up.table_name
                        AND revision = prev.dictionary_revision) b ON b.name = a.name;
        previous := previous || jsonb_build_object(
            'schema_changed', previous->'fields_added' <> '[]'::jsonb
                              OR previous->'fields_removed' <> '[]'::jsonb
                              OR previous->'fields_retyped' <> '[]'::jsonb);
    END IF;

    SELECT update_cycle, registered_at, catalogued_at INTO res
      FROM registrar.resources WHERE resource = up.resource;
    period := registrar.cycle_period(res.update_cycle);
    IF period IS NULL THEN
        timely := jsonb_build_object('update_cycle', res.update_cycle, 'status', 'not_due');
    ELSE
        due := (coalesce(prev.finished_at, res.registered_at, res.catalogued_at)::date
                + period)::date;
        timely := jsonb_build_object(
            'update_cycle', res.update_cycle, 'due_on', due,
            'received_on', up.finished_at::date,
            'status', CASE WHEN up.finished_at::date <= due THEN 'on_time' ELSE 'late' END,
            'days_late', greatest(up.finished_at::date - due, 0));
    END IF;
    RETURN jsonb_build_object('declared', declared, 'previous', previous, 'timeliness', timely);
END
$$;

-- The quality score of a version (PROTOCOL.md §11): four parts from its findings, each a
-- share from 0 to 1, and the score, 100 times their mean. The counts they come from stay
-- beside them for the metrics service.
CREATE TABLE quality_scores (
    upload              bigint PRIMARY KEY REFERENCES reviews (upload),
    resource            text NOT NULL,
    department          text NOT NULL,
    version             integer NOT NULL,
    rows_received       bigint NOT NULL,
    rows_passing        bigint NOT NULL,
    required_cells      bigint NOT NULL,
    required_filled     bigint NOT NULL,
    constraint_cells    bigint NOT NULL,
    constraint_failures bigint NOT NULL,
    inconsistent_rows   bigint NOT NULL,
    completeness        numeric(5, 4) NOT NULL,
    validity            numeric(5, 4) NOT NULL,
    normativity         numeric(5, 4) NOT NULL,
    consistency         numeric(5, 4) NOT NULL,
    score               numeric(5, 2) NOT NULL,
    computed_at         timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION score_version(u bigint, rev integer) RETURNS void LANGUAGE sql AS $$
    WITH v AS (SELECT r.upload, r.resource, r.department, r.version, r.rows_received,
                      up.rows_staged
                 FROM reviews r JOIN registrar.uploads up ON up.id = r.upload
                WHERE r.upload = u),
    d AS (SELECT count(*) FILTER (WHERE f.required) AS required,
                 sum((f.allowed IS NOT NULL)::int + (f.min_value IS NOT NULL)::int
                     + (f.max_value IS NOT NULL)::int + (f.length IS NOT NULL)::int
                     + (f.min_length IS NOT NULL)::int + (f.pattern IS NOT NULL)::int
                     + (f.check_name IS NOT NULL)::int) AS constraints
            FROM registrar.uploads up
            JOIN registrar.dictionary_revision_fields f
              ON f.resource = up.resource AND f.table_name = up.table_name AND f.revision = rev
           WHERE up.id = u),
    n AS (SELECT count(DISTINCT row_no) AS failing,
                 count(*) FILTER (WHERE check_name = 'required') AS empty,
                 count(*) FILTER (WHERE check_name IN ('enum', 'minimum', 'maximum', 'maxLength',
                                                       'minLength', 'pattern', 'uscc', 'idcard'))
                     AS nonconforming,
                 count(DISTINCT row_no) FILTER (WHERE type IN ('unique-error', 'duplicate-row',
                                                               'primary-key')) AS inconsistent
            FROM findings WHERE upload = u),
    c AS (SELECT v.*, v.rows_staged * coalesce(d.required, 0) AS required_cells,
                 v.rows_staged * coalesce(d.constraints, 0) AS constraint_cells, n.*
            FROM v, d, n),
    s AS (SELECT c.*,
                 CASE WHEN required_cells = 0 THEN 1
                      ELSE (required_cells - empty)::numeric / required_cells END AS p_complete,
                 CASE WHEN rows_received = 0 THEN 1
                      ELSE greatest(rows_received - failing, 0)::numeric / rows_received
                 END AS p_valid,
                 CASE WHEN constraint_cells = 0 THEN 1
                      ELSE 1 - nonconforming::numeric / constraint_cells END AS p_normal,
                 CASE WHEN rows_received = 0 THEN 1
                      ELSE 1 - inconsistent::numeric / rows_received END AS p_consistent
            FROM c)
    INSERT INTO quality_scores (upload, resource, department, version, rows_received,
                                rows_passing, required_cells, required_filled, constraint_cells,
                                constraint_failures, inconsistent_rows, completeness, validity,
                                normativity, consistency, score)
    SELECT upload, resource, department, version, rows_received,
           greatest(rows_received - failing, 0), required_cells, required_cells - empty,
           constraint_cells, nonconforming, inconsistent, round(p_complete, 4),
           round(p_valid, 4), round(p_normal, 4), round(p_consistent, 4),
           round(25 * (p_complete + p_valid + p_normal + p_consistent), 2)
      FROM s
    ON CONFLICT (upload) DO UPDATE SET
        rows_passing = EXCLUDED.rows_passing, required_filled = EXCLUDED.required_filled,
        required_cells = EXCLUDED.required_cells, constraint_cells = EXCLUDED.constraint_cells,
        constraint_failures = EXCLUDED.constraint_failures,
        inconsistent_rows = EXCLUDED.inconsistent_rows, completeness = EXCLUDED.completeness,
        validity = EXCLUDED.validity, normativity = EXCLUDED.normativity,
        consistency = EXCLUDED.consistency, score = EXCLUDED.score, computed_at = now()
$$;

-- The checks of a begun review, from the start: whatever an interrupted run left is
-- removed first (nothing of a review is handled before its checks are committed).
CREATE FUNCTION check_version(u bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    rev integer := (SELECT dictionary_revision FROM registrar.uploads WHERE id = u);
BEGIN
    DELETE FROM quarantine WHERE upload = u;
    DELETE FROM quality_scores WHERE upload = u;
    DELETE FROM findings WHERE upload = u;
    PERFORM collect_findings(u, rev, false);
    INSERT INTO quarantine (upload, row_no)
    SELECT DISTINCT upload, row_no FROM findings WHERE upload = u
    ON CONFLICT DO NOTHING;
    UPDATE reviews SET compare = compare_version(u), checked_at = now() WHERE upload = u;
    PERFORM score_version(u, rev);
END
$$;

-- An approved version checked again with the latest dictionary revision of its table:
-- the number of findings that are new (the others are there already).
CREATE FUNCTION recheck_version(u bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    before bigint := (SELECT count(*) FROM findings WHERE upload = u);
    rev integer := (SELECT max(d.revision) FROM registrar.uploads up
                    JOIN registrar.dictionary_revisions d
                      ON d.resource = up.resource AND d.table_name = up.table_name
                    WHERE up.id = u);
    raised bigint;
BEGIN
    PERFORM collect_findings(u, rev, true);
    raised := (SELECT count(*) FROM findings WHERE upload = u) - before;
    UPDATE reviews SET rechecked_at = now() WHERE upload = u;
    IF raised > 0 THEN
        PERFORM score_version(u, rev);
    END IF;
    RETURN raised;
END
$$;

-- The metrics service reads scores and outcomes; the publisher reads approvals, sign-offs
-- and the isolated rows it leaves out (docs/design.md, "Who reads what").
GRANT USAGE ON SCHEMA reviewer TO odp_metrics, odp_publisher;
GRANT SELECT ON quality_scores, reviews, findings, quarantine, signoffs, standards
    TO odp_metrics, odp_publisher;
