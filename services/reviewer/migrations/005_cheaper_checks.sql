-- The reviewer's own work on a version, cheaper again (issue 8, round 4): the same findings
-- as 004_fast_checks.sql's, row for row, from cheaper expressions and catalogue look-ups.
--
-- 1. A pattern check costs a regular expression per value (about 0.5 us: the value converted
--    to wide characters, a matcher set up and its states built for each call). For a
--    pattern of a common shape - a literal prefix of ASCII letters, digits and '-', then
--    one run of a bracket expression of ASCII letters and digits (or the escape d, a
--    digit) with a count, as B[0-9]{10}, [0-9]{6} or X[0-9A-F]+ - the check first tries an
--    expression that can only hold for a value the pattern matches: its byte length within
--    the prefix's plus the run's bounds, and rtrim of the run's characters leaving exactly
--    the prefix. Every character of prefix and run is a one-byte ASCII character, so then
--    the value is the prefix followed by characters each in the run's set, as many as the
--    pattern allows: a match (PostgreSQL takes a bracket's range by code point). Only when
--    that expression is false does the regular expression decide, so the check's truth is
--    the regular expression's for every value, the short cut only saves its cost.
-- 2. minLength counts characters only of a value short enough in bytes to have fewer than
--    the minimum (a character takes at most pg_encoding_max_length bytes).
-- 3. The staging table's columns are read from pg_attribute, not information_schema.columns
--    (a view over the whole catalogue; repeat_plan ran three such queries for each call,
--    and it is called three times per review), with the same visibility rule.

-- The columns of a staging table as information_schema.columns names them (column_name,
-- data_type, ordinal_position), for the columns the current user may use; none when there
-- is no such table.
CREATE FUNCTION stage_columns(stage text)
RETURNS TABLE (column_name text, data_type text, ordinal_position integer)
LANGUAGE sql STABLE AS $$
    SELECT a.attname::text, format_type(a.atttypid, NULL), a.attnum::integer
      FROM pg_attribute a
      JOIN pg_class c ON c.oid = a.attrelid
     WHERE a.attrelid = to_regclass('registrar.' || quote_ident(stage))
       AND a.attnum > 0 AND NOT a.attisdropped
       AND (pg_has_role(c.relowner, 'USAGE')
            OR has_column_privilege(c.oid, a.attnum, 'SELECT, INSERT, UPDATE, REFERENCES'))
$$;

-- An expression over the text v that is true only for a value matching pattern whole (as
-- v ~ '^(?:pattern)$'), for a pattern of the shape above; NULL for any other pattern, and
-- for one PostgreSQL does not compile (its error stays the regular expression's). A
-- prefix ending in a character of the run is left to the regular expression (rtrim would
-- take it off, so the short cut would never hold).
CREATE FUNCTION pattern_shortcut(v text, pattern text) RETURNS text
LANGUAGE plpgsql STRICT AS $$
DECLARE
    m text[];
    prefix text;
    chars text := '';
    piece text;
    lo integer;
    hi integer;
BEGIN
    -- The prefix, then [run] or the escape d (chr(92) is the backslash), then a count.
    m := regexp_match(pattern, '^([A-Za-z0-9-]*)(?:[[]((?:[A-Za-z0-9](?:-[A-Za-z0-9])?)+)[]]|('
                               || chr(92) || chr(92) || 'd))(?:[{]([0-9]{1,4})(,([0-9]{0,4}))?[}]'
                               '|([*+?]))?$');
    IF m IS NULL THEN
        RETURN NULL;
    END IF;
    prefix := m[1];
    IF m[3] IS NOT NULL THEN
        chars := '0123456789';
    ELSE
        FOR piece IN SELECT r[1] FROM regexp_matches(m[2], '[A-Za-z0-9](?:-[A-Za-z0-9])?', 'g') r
        LOOP
            IF length(piece) = 1 THEN
                chars := chars || piece;
            ELSIF ascii(piece) > ascii(right(piece, 1)) THEN
                RETURN NULL;
            ELSE
                chars := chars || (SELECT string_agg(chr(c), '' ORDER BY c)
                                     FROM generate_series(ascii(piece), ascii(right(piece, 1))) c);
            END IF;
        END LOOP;
    END IF;
    lo := CASE WHEN m[4] IS NOT NULL THEN m[4]::integer WHEN m[7] IN ('*', '?') THEN 0 ELSE 1 END;
    hi := CASE WHEN m[5] IS NULL AND m[4] IS NOT NULL THEN m[4]::integer
               WHEN m[5] IS NOT NULL AND m[6] <> '' THEN m[6]::integer
               WHEN m[5] IS NOT NULL OR m[7] IN ('*', '+') THEN NULL
               ELSE 1 END;
    IF hi < lo OR (prefix <> '' AND strpos(chars, right(prefix, 1)) > 0) THEN
        RETURN NULL;
    END IF;
    BEGIN
        PERFORM '' ~ ('^(?:' || pattern || ')$');
    EXCEPTION WHEN others THEN
        RETURN NULL;
    END;
    RETURN format('(octet_length(%s) >= %s%s AND rtrim(%s, %L) = %L)', v, length(prefix) + lo,
                  CASE WHEN hi IS NULL THEN ''
                       ELSE format(' AND octet_length(%s) <= %s', v, length(prefix) + hi) END,
                  v, chars, prefix);
END
$$;

-- As in 004_fast_checks.sql, with the staging table's columns from stage_columns.
CREATE OR REPLACE FUNCTION repeat_plan(u bigint, rev integer, OUT u_cols text[],
                            OUT u_names text[], OUT u_parts text[], OUT u_hashes text[],
                            OUT pk_cols text, OUT pk_part text, OUT pk_names text,
                            OUT all_cols text, OUT all_part text, OUT blank text, OUT tally text,
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
      JOIN stage_columns(stage) c ON c.column_name = d.name
     WHERE up.id = u AND d.is_unique;

    SELECT string_agg('s.' || quote_ident(c.column_name), ', ' ORDER BY c.ordinal_position),
           string_agg('s.' || quote_ident(c.column_name)
                      || CASE WHEN c.data_type = 'text' THEN ' COLLATE "C"' ELSE '' END,
                      ', ' ORDER BY c.ordinal_position),
           string_agg(format('coalesce(s.%I::text, '''') = ''''', c.column_name), ' AND ')
      INTO all_cols, all_part, blank
      FROM stage_columns(stage) c
     WHERE c.column_name <> 'row_no';

    SELECT string_agg('s.' || quote_ident(d.name), ', ' ORDER BY d.position),
           string_agg('s.' || quote_ident(d.name)
                      || CASE WHEN d.type = 'text' THEN ' COLLATE "C"' ELSE '' END,
                      ', ' ORDER BY d.position),
           string_agg(d.name, ',' ORDER BY d.position), count(c.column_name), count(*)
      INTO pk_cols, pk_part, pk_names, pk_n, pk_want
      FROM registrar.uploads up
      JOIN registrar.dictionary_revision_fields d
        ON d.resource = up.resource AND d.table_name = up.table_name AND d.revision = rev
      LEFT JOIN stage_columns(stage) c ON c.column_name = d.name
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

-- As in 004_fast_checks.sql, with the pattern's short cut and the cheaper minLength, and the
-- staging table's columns from stage_columns.
CREATE OR REPLACE FUNCTION collect_row_findings(u bigint, rev integer, is_recheck boolean)
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
    shortcut text;
    -- The most bytes a character of the database's encoding takes.
    char_bytes integer := pg_encoding_max_length(pg_char_to_encoding(getdatabaseencoding()));
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
            bad := bad || format('(%s <> '''' AND octet_length(%s) < %s AND char_length(%s) < %s)',
                                 col, col, f.min_length::bigint * char_bytes, col,
                                 f.min_length);
            rest := rest || format('%L, left(%s, 200), ''constraint-error'', ''minLength'', %L',
                                   f.name, col,
                                   'the value is shorter than ' || f.min_length || ' characters');
        END IF;
        IF f.pattern IS NOT NULL THEN
            shortcut := pattern_shortcut(col || '::text', f.pattern);
            bad := bad || format('(%s::text <> '''' AND NOT (%s%s::text ~ %L))', col,
                                 coalesce(shortcut || ' OR ', ''), col,
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
