-- The checks of a version in fewer, cheaper passes over its staging table (issue 8: a
-- review within half the time of a psql copy of the same file). The findings are the
-- same as 003_checks_compare_score.sql's, row for row; what changes is how they are found.
--
-- 1. Every row-level check is first counted, not written: one aggregate over the staging
--    table with a count per check (FILTER). An aggregate may run as a parallel query
--    (PostgreSQL's workers scan parts of the table, the leader adds the counts up), an
--    INSERT ... SELECT may not. Only the checks that failed somewhere are then evaluated
--    again, row by row, into findings; a clean version writes nothing.
-- 2. Unique fields, the primary key and (without a unique field) duplicate rows are first
--    counted by a hash of the value: count(x) - count(DISTINCT hash(x)) is 0 exactly when
--    no value repeats (equal values hash alike; distinct hashes are distinct values). A
--    sort of 8-byte hashes is much cheaper than one of the values with their row numbers.
--    Only when it is not 0 do the exact window functions of 003 run; the unique check
--    then only over the rows whose hash repeats (a collision is sorted out by the exact
--    comparison there). This count reads the staging table only, so the reviewer runs it
--    (repeat_tally) on a second connection while the first counts the row-level checks
--    (check_rows), and hands it to check_version.
-- 3. Cheaper expressions with the same result: a required non-text value is only NULL
--    (its text is never empty); an integer against an integral bound of its own type
--    (x < 0.5 is x < 1 for an integer x); a character count only for a text whose byte
--    count could exceed the maximum (a character takes at least one byte).

-- Parallel workers may call the check digit functions (they read nothing but their
-- argument).
ALTER FUNCTION uscc_valid(text) PARALLEL SAFE;
ALTER FUNCTION idcard_valid(text) PARALLEL SAFE;

-- An integer field's bound as the comparison it makes: against a bigint when the
-- rounded bound is one, else against the numeric as given.
CREATE FUNCTION integer_bound(col text, op text, bound numeric) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT CASE WHEN b BETWEEN -9223372036854775808 AND 9223372036854775807
                THEN format('(%s %s %s::bigint)', col, op, b)
                ELSE format('(%s %s %L::numeric)', col, op, bound) END
    FROM (SELECT CASE op WHEN '<' THEN ceil(bound) ELSE floor(bound) END AS b) r
$$;

-- What may repeat in version u under dictionary revision rev, and the query that counts
-- it by hash in one pass (tally; NULL when there is nothing to count): each unique field
-- (its values that are not NULL), the primary key (when the staging table has every key
-- field), and, without a unique field, whole rows that are not blank; with one, the rows
-- where it is NULL (the candidates for a duplicate row besides those whose value
-- repeats). pk_i, dup_i and u_null_i are those counts' places in the tally (the unique
-- fields' come first, in u_cols' order). blank is the expression of a blank row. Names
-- are quoted with %I, never pasted in.
CREATE FUNCTION repeat_plan(u bigint, rev integer, OUT u_cols text[], OUT u_names text[],
                            OUT u_parts text[], OUT u_hashes text[], OUT pk_cols text,
                            OUT pk_part text, OUT pk_names text, OUT all_cols text,
                            OUT all_part text, OUT blank text, OUT tally text,
                            OUT pk_i integer, OUT dup_i integer, OUT u_null_i integer)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    stage text := 'stage_u' || u;
    parts text[] := '{}';
    pk_n integer;
    pk_want integer;
BEGIN
    SELECT coalesce(array_agg('s.' || quote_ident(d.name) ORDER BY d.position), '{}'),
           coalesce(array_agg(d.name ORDER BY d.position), '{}'),
           coalesce(array_agg('s.' || quote_ident(d.name)
                              || CASE WHEN d.type = 'text' THEN ' COLLATE "C"' ELSE '' END
                              ORDER BY d.position), '{}'),
           coalesce(array_agg(CASE WHEN d.type = 'text'
                                   THEN format('hashtextextended(s.%I COLLATE "C", 0)', d.name)
                                   ELSE format('hash_record_extended(ROW(s.%I), 0)', d.name) END
                              ORDER BY d.position), '{}')
      INTO u_cols, u_names, u_parts, u_hashes
      FROM registrar.uploads up
      JOIN registrar.dictionary_revision_fields d
        ON d.resource = up.resource AND d.table_name = up.table_name AND d.revision = rev
      JOIN registrar.dictionary_revision_fields o
        ON o.resource = up.resource AND o.table_name = up.table_name
       AND o.revision = up.dictionary_revision AND o.name = d.name AND o.type = d.type
      JOIN information_schema.columns c
        ON c.table_schema = 'registrar' AND c.table_name = stage AND c.column_name = d.name
     WHERE up.id = u AND d.is_unique;

    SELECT string_agg('s.' || quote_ident(c.column_name), ', ' ORDER BY c.ordinal_position),
           string_agg('s.' || quote_ident(c.column_name)
                      || CASE WHEN c.data_type = 'text' THEN ' COLLATE "C"' ELSE '' END,
                      ', ' ORDER BY c.ordinal_position),
           string_agg(format('coalesce(s.%I::text, '''') = ''''', c.column_name), ' AND ')
      INTO all_cols, all_part, blank
      FROM information_schema.columns c
     WHERE c.table_schema = 'registrar' AND c.table_name = stage AND c.column_name <> 'row_no';

    SELECT string_agg('s.' || quote_ident(d.name), ', ' ORDER BY d.position),
           string_agg('s.' || quote_ident(d.name)
                      || CASE WHEN d.type = 'text' THEN ' COLLATE "C"' ELSE '' END,
                      ', ' ORDER BY d.position),
           string_agg(d.name, ',' ORDER BY d.position), count(c.column_name), count(*)
      INTO pk_cols, pk_part, pk_names, pk_n, pk_want
      FROM registrar.uploads up
      JOIN registrar.dictionary_revision_fields d
        ON d.resource = up.resource AND d.table_name = up.table_name AND d.revision = rev
      LEFT JOIN information_schema.columns c
        ON c.table_schema = 'registrar' AND c.table_name = stage AND c.column_name = d.name
     WHERE up.id = u AND d.primary_key;
    IF NOT (pk_want > 0 AND pk_n = pk_want) THEN
        pk_cols := NULL;
    END IF;

    FOR i IN 1 .. cardinality(u_cols) LOOP
        parts := parts || format('count(%s) - count(DISTINCT %s)', u_cols[i], u_hashes[i]);
    END LOOP;
    IF pk_cols IS NOT NULL THEN
        parts := parts || format('count(*) - count(DISTINCT hash_record_extended(ROW(%s), 0))',
                                 pk_cols);
        pk_i := cardinality(parts);
    END IF;
    IF all_cols IS NOT NULL AND cardinality(u_cols) = 0 THEN
        parts := parts || format('count(*) FILTER (WHERE NOT (%s)) - count(DISTINCT '
                                 'hash_record_extended(ROW(%s), 0)) FILTER (WHERE NOT (%s))',
                                 blank, all_cols, blank);
        dup_i := cardinality(parts);
    ELSIF all_cols IS NOT NULL THEN
        parts := parts || format('count(*) FILTER (WHERE %s IS NULL)', u_cols[1]);
        u_null_i := cardinality(parts);
    END IF;
    IF cardinality(parts) > 0 THEN
        tally := format('SELECT ARRAY[%s] FROM registrar.%I s', array_to_string(parts, ', '),
                        stage);
    END IF;
END
$$;

-- The counts of repeat_plan for version u under the dictionary revision it was pushed
-- with; NULL when there is nothing to count or no staging table. It only reads, so it
-- may run on a connection of its own beside the transaction that checks the version.
CREATE FUNCTION repeat_tally(u bigint) RETURNS bigint[] LANGUAGE plpgsql STABLE
SET work_mem = '256MB' SET jit = off AS $$
DECLARE
    p record;
    counts bigint[];
BEGIN
    IF to_regclass('registrar.' || quote_ident('stage_u' || u)) IS NULL THEN
        RETURN NULL;
    END IF;
    p := repeat_plan(u, (SELECT dictionary_revision FROM registrar.uploads WHERE id = u));
    IF p.tally IS NOT NULL THEN
        EXECUTE p.tally INTO counts;
    END IF;
    RETURN counts;
END
$$;

-- The row-level checks of dictionary revision rev over version u, and the registrar's
-- rejects, into findings (once per row, field and check: ON CONFLICT keeps what is
-- there). A field is checked when the version's staging table has it with the type it has
-- in rev. The dictionary's constants are quoted with %L (quote_literal), names with %I,
-- never pasted in. The statement's own column is named "#bad", which a dictionary field
-- is not expected to be. jit is off: compiling the expressions cost more than it saved.
CREATE FUNCTION collect_row_findings(u bigint, rev integer, is_recheck boolean)
RETURNS void LANGUAGE plpgsql SET work_mem = '256MB' SET jit = off AS $$
DECLARE
    stage text := 'stage_u' || u;
    f record;
    col text;
    -- One element per check: what breaks it, and the rest of its VALUES row (field, value,
    -- type, check, message).
    bad text[] := '{}';
    rest text[] := '{}';
    counts bigint[];
    failing_bad text[] := '{}';
    failing_rows text[] := '{}';
    blank text;
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
        SELECT d.name, d.type, d.length, d.min_length, d.required, d.allowed,
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
        IF f.required THEN
            bad := bad || CASE WHEN f.type = 'text' THEN format('(%s IS NULL OR %s = '''')', col, col)
                               ELSE format('(%s IS NULL)', col) END;
            rest := rest || format('%L, NULL::text, ''constraint-error'', ''required'', '
                                   '''a required value is empty''', f.name);
        END IF;
        IF f.allowed IS NOT NULL THEN
            bad := bad || format('(%s::text <> ALL (%L::text[]))', col, f.allowed);
            rest := rest || format('%L, %s::text, ''constraint-error'', ''enum'', '
                                   '''the value is not one of the allowed values''', f.name, col);
        END IF;
        IF f.min_value IS NOT NULL AND f.type IN ('integer', 'numeric') THEN
            bad := bad || CASE WHEN f.type = 'integer' THEN integer_bound(col, '<', f.min_value)
                               ELSE format('(%s < %L::numeric)', col, f.min_value) END;
            rest := rest || format('%L, %s::text, ''constraint-error'', ''minimum'', %L', f.name,
                                   col, 'the value is below the minimum ' || f.min_value);
        END IF;
        IF f.max_value IS NOT NULL AND f.type IN ('integer', 'numeric') THEN
            bad := bad || CASE WHEN f.type = 'integer' THEN integer_bound(col, '>', f.max_value)
                               ELSE format('(%s > %L::numeric)', col, f.max_value) END;
            rest := rest || format('%L, %s::text, ''constraint-error'', ''maximum'', %L', f.name,
                                   col, 'the value is above the maximum ' || f.max_value);
        END IF;
        IF f.length IS NOT NULL AND f.type = 'text' THEN
            bad := bad || format('(octet_length(%s) > %s AND char_length(%s) > %s)', col,
                                 f.length, col, f.length);
            rest := rest || format('%L, left(%s, 200), ''constraint-error'', ''maxLength'', %L',
                                   f.name, col,
                                   'the value is longer than ' || f.length || ' characters');
        END IF;
        IF f.min_length IS NOT NULL AND f.type = 'text' THEN
            bad := bad || format('(%s <> '''' AND char_length(%s) < %s)', col, col, f.min_length);
            rest := rest || format('%L, left(%s, 200), ''constraint-error'', ''minLength'', %L',
                                   f.name, col,
                                   'the value is shorter than ' || f.min_length || ' characters');
        END IF;
        IF f.pattern IS NOT NULL THEN
            bad := bad || format('(%s::text <> '''' AND NOT %s::text ~ %L)', col, col,
                                 '^(?:' || f.pattern || ')$');
            rest := rest || format('%L, left(%s::text, 200), ''constraint-error'', ''pattern'', %L',
                                   f.name, col, 'the value does not match ' || f.pattern);
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
        END IF;
    END LOOP;

    -- A blank row: every column of the version empty.
    blank := (repeat_plan(u, rev)).blank;
    IF blank IS NOT NULL THEN
        bad := bad || ('(' || blank || ')');
        rest := rest || 'NULL::text, NULL::text, ''blank-row'', ''blank-row'', '
                        '''every cell of the row is empty'''::text;
    END IF;
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

-- The table-wide checks of revision rev over version u into findings: unique fields,
-- duplicate rows and the primary key, each only when repeats (repeat_plan's tally; NULL:
-- counted here) says something may repeat. The statements' own columns are named "#k",
-- "#first" and "#h", which a dictionary field is not expected to be.
CREATE FUNCTION collect_repeat_findings(u bigint, rev integer, is_recheck boolean,
                                        repeats bigint[]) RETURNS void
LANGUAGE plpgsql SET work_mem = '256MB' SET jit = off AS $$
DECLARE
    stage text := 'stage_u' || u;
    p record;
    u_col text;
    candidates text := 'true';
    u_repeats text[];
BEGIN
    IF to_regclass('registrar.' || quote_ident(stage)) IS NULL THEN
        RETURN;
    END IF;
    p := repeat_plan(u, rev);
    IF p.tally IS NULL THEN
        RETURN;
    END IF;
    IF repeats IS NULL THEN
        EXECUTE p.tally INTO repeats;
    END IF;

    -- A unique field: a value that appears in an earlier row, over the rows whose value's
    -- hash repeats.
    FOR i IN 1 .. cardinality(p.u_cols) LOOP
        CONTINUE WHEN repeats[i] = 0;
        EXECUTE format('INSERT INTO findings (upload, row_no, field, value, type, check_name, '
                       'message, recheck) SELECT $1, row_no, $2, left(v, 200), '
                       '''unique-error'', ''unique'', ''the value appears in an earlier row'', '
                       '$3 FROM (SELECT row_no, %s::text AS v, row_number() OVER (PARTITION BY '
                       '%s ORDER BY row_no) AS k FROM registrar.%I s WHERE %s IS NOT NULL AND '
                       '%s IN (SELECT %s AS "#h" FROM registrar.%I s WHERE %s IS NOT NULL '
                       'GROUP BY 1 HAVING count(*) > 1)) x WHERE k > 1 ON CONFLICT DO NOTHING',
                       p.u_cols[i], p.u_parts[i], stage, p.u_cols[i], p.u_hashes[i],
                       p.u_hashes[i], stage, p.u_cols[i])
            USING u, p.u_names[i], is_recheck;
    END LOOP;

    -- A duplicate row: the same values in every column as an earlier row (blank rows are
    -- reported as such, not again as duplicates). A duplicate row repeats every value, so
    -- with a unique field only the rows whose value of it repeats (its findings, passed as
    -- an array: a hashed = ANY, whatever the statistics) or is NULL can be one.
    IF p.u_null_i IS NOT NULL AND (repeats[1] > 0 OR repeats[p.u_null_i] > 1) THEN
        u_col := p.u_cols[1];
        candidates := format('(%s IS NULL OR left(%s::text, 200) = ANY ($3))', u_col, u_col);
        u_repeats := ARRAY(SELECT DISTINCT value FROM findings
                            WHERE upload = u AND check_name = 'unique' AND field = p.u_names[1]);
    END IF;
    IF u_col IS NOT NULL OR repeats[p.dup_i] > 0 THEN
        EXECUTE format('INSERT INTO findings (upload, row_no, field, value, type, check_name, '
                       'message, recheck) SELECT $1, row_no, NULL, left(ROW(%s)::text, 200), '
                       '''duplicate-row'', ''duplicate-row'', ''the row repeats row '' || '
                       's."#first", $2 FROM (SELECT s.*, row_number() OVER w AS "#k", '
                       'first_value(s.row_no) OVER w AS "#first" FROM registrar.%I s WHERE %s '
                       'AND NOT (%s) WINDOW w AS (PARTITION BY %s ORDER BY s.row_no)) s '
                       'WHERE s."#k" > 1 '
                       'ON CONFLICT DO NOTHING', p.all_cols, stage, candidates, p.blank,
                       p.all_part)
            USING u, is_recheck, u_repeats;
    END IF;

    -- The primary key: the fields marked primary_key in rev, together; a key that repeats
    -- an earlier row's.
    IF repeats[p.pk_i] > 0 THEN
        EXECUTE format('INSERT INTO findings (upload, row_no, field, value, type, check_name, '
                       'message, recheck) SELECT $1, row_no, $2, left(v, 200), ''primary-key'', '
                       '''primary-key'', ''the primary key ('' || $2 || '') repeats row '' || '
                       'first, $3 FROM (SELECT s.row_no, ROW(%s)::text AS v, row_number() OVER w '
                       'AS k, first_value(s.row_no) OVER w AS first FROM registrar.%I s '
                       'WINDOW w AS (PARTITION BY %s ORDER BY s.row_no)) x WHERE k > 1 '
                       'ON CONFLICT DO NOTHING', p.pk_cols, stage, p.pk_part)
            USING u, p.pk_names, is_recheck;
    END IF;
END
$$;

-- Every check of revision rev over version u (recheck_version calls it).
CREATE OR REPLACE FUNCTION collect_findings(u bigint, rev integer, is_recheck boolean)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM collect_row_findings(u, rev, is_recheck);
    PERFORM collect_repeat_findings(u, rev, is_recheck, NULL);
END
$$;

-- The checks of a begun review, from the start, in two statements of one transaction:
-- check_rows (whatever an interrupted run left is removed first, as nothing of a review
-- is handled before its checks are committed; then the rejects and the row-level
-- checks), and check_version with repeat_tally's counts (NULL: counted there), which adds
-- the table-wide checks, the quarantine, the comparison and the score. check_version(u)
-- is both.
CREATE FUNCTION check_rows(u bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM quarantine WHERE upload = u;
    DELETE FROM quality_scores WHERE upload = u;
    DELETE FROM findings WHERE upload = u;
    PERFORM collect_row_findings(u, (SELECT dictionary_revision FROM registrar.uploads
                                      WHERE id = u), false);
END
$$;

CREATE FUNCTION check_version(u bigint, repeats bigint[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    rev integer := (SELECT dictionary_revision FROM registrar.uploads WHERE id = u);
BEGIN
    PERFORM collect_repeat_findings(u, rev, false, repeats);
    INSERT INTO quarantine (upload, row_no)
    SELECT DISTINCT upload, row_no FROM findings WHERE upload = u
    ON CONFLICT DO NOTHING;
    UPDATE reviews SET compare = compare_version(u), checked_at = now() WHERE upload = u;
    PERFORM score_version(u, rev);
END
$$;

CREATE OR REPLACE FUNCTION check_version(u bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM check_rows(u);
    PERFORM check_version(u, NULL);
END
$$;
