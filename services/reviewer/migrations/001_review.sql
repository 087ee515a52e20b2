-- Reviews, findings and quarantine (R9a, R9d). The checks run set-based over the
-- registrar's staging table of a version (one statement per field and check kind, never
-- one per row); their outcome lives here, in the reviewer's own schema.

-- GB 32100: an 18-character unified social credit code whose last character is the
-- check digit over the first 17 (alphabet without I, O, Z, S, V; modulus 31).
CREATE FUNCTION uscc_valid(code text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    alphabet constant text := '0123456789ABCDEFGHJKLMNPQRTUWXY';
    weights constant int[] := ARRAY[1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10,
                                    30, 28];
    sum int := 0;
    pos int;
BEGIN
    IF code !~ '^[0-9A-HJ-NP-RTUWXY]{18}$' THEN
        RETURN false;
    END IF;
    FOR i IN 1..17 LOOP
        pos := strpos(alphabet, substr(code, i, 1)) - 1;
        sum := sum + pos * weights[i];
    END LOOP;
    RETURN substr(alphabet, (31 - sum % 31) % 31 + 1, 1) = substr(code, 18, 1);
END
$$;

-- GB 11643: an 18-character citizen identity number whose last character (0-9 or X) is
-- the check digit over the first 17 (ISO 7064 MOD 11-2).
CREATE FUNCTION idcard_valid(code text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    weights constant int[] := ARRAY[7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    sum int := 0;
BEGIN
    IF code !~ '^[0-9]{17}[0-9X]$' THEN
        RETURN false;
    END IF;
    FOR i IN 1..17 LOOP
        sum := sum + substr(code, i, 1)::int * weights[i];
    END LOOP;
    RETURN substr('10X98765432', sum % 11 + 1, 1) = substr(code, 18, 1);
END
$$;

-- One review per version (upload), received -> in_review -> approved | rejected.
CREATE TABLE reviews (
    upload       bigint PRIMARY KEY,
    resource     text NOT NULL,
    table_name   text NOT NULL,
    version      integer NOT NULL,
    department   text NOT NULL,
    state        text NOT NULL DEFAULT 'received'
                 CHECK (state IN ('received', 'in_review', 'approved', 'rejected')),
    rows_received bigint NOT NULL CHECK (rows_received >= 0),
    started_at   timestamptz NOT NULL DEFAULT now(),
    checked_at   timestamptz
);

-- What the checks found, in Frictionless' error types. row_no counts data rows from 1.
CREATE TABLE findings (
    upload     bigint NOT NULL REFERENCES reviews (upload),
    row_no     bigint NOT NULL,
    field      text,
    value      text,
    type       text NOT NULL CHECK (type IN ('type-error', 'constraint-error', 'unique-error',
                                             'missing-cell', 'extra-cell', 'blank-row',
                                             'duplicate-row', 'primary-key')),
    check_name text NOT NULL,
    message    text NOT NULL
);
CREATE INDEX findings_upload ON findings (upload, row_no);

-- Rows isolated from the version that goes on (the publisher excludes them); the row
-- itself stays in the staging table or the registrar's rejects.
CREATE TABLE quarantine (
    upload  bigint NOT NULL REFERENCES reviews (upload),
    row_no  bigint NOT NULL,
    state   text NOT NULL DEFAULT 'isolated' CHECK (state IN ('isolated', 'corrected',
                                                              'dropped', 'released')),
    PRIMARY KEY (upload, row_no)
);

-- Every check of one version into findings, and every row with a finding into
-- quarantine. The staging table's name is built from the upload number; field names
-- and constraint values come from the dictionary and are quoted (%I) or passed as
-- parameters (USING), never pasted in.
CREATE FUNCTION run_checks(u bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    stage text := 'stage_u' || u;
    f record;
    col text;
BEGIN
    INSERT INTO findings (upload, row_no, field, value, type, check_name, message)
    SELECT j.upload, j.row_no, NULL, left(j.raw, 200),
           CASE WHEN j.reason = 'ragged' AND n.got IS NOT NULL AND n.got < n.want
                    THEN 'missing-cell'
                WHEN j.reason = 'ragged' THEN 'extra-cell'
                ELSE 'type-error' END,
           j.reason, j.detail
    FROM registrar.rejects j
    LEFT JOIN LATERAL (SELECT m[1]::bigint AS got, m[2]::bigint AS want
                       FROM regexp_match(j.detail, '^([0-9]+) fields, expected ([0-9]+)') m) n ON true
    WHERE j.upload = u;

    FOR f IN
        SELECT d.name, d.type, d.length, d.required, d.is_unique, d.allowed, d.min_value,
               d.max_value, d.pattern, d.check_name
        FROM registrar.uploads up
        JOIN registrar.dictionary_fields d
          ON d.resource = up.resource AND d.table_name = up.table_name
        JOIN information_schema.columns c
          ON c.table_schema = 'registrar' AND c.table_name = stage AND c.column_name = d.name
        WHERE up.id = u
        ORDER BY d.position
    LOOP
        col := quote_ident(f.name);
        IF f.required THEN
            EXECUTE format('INSERT INTO findings (upload, row_no, field, value, type, check_name, '
                           'message) SELECT $1, row_no, $2, NULL, ''constraint-error'', '
                           '''required'', ''a required value is empty'' FROM registrar.%I '
                           'WHERE %s IS NULL OR %s::text = ''''', stage, col, col)
                USING u, f.name;
        END IF;
        IF f.is_unique THEN
            EXECUTE format('INSERT INTO findings (upload, row_no, field, value, type, check_name, '
                           'message) SELECT $1, row_no, $2, v, ''unique-error'', ''unique'', '
                           '''the value appears in an earlier row'' FROM (SELECT row_no, '
                           '%s::text AS v, row_number() OVER (PARTITION BY %s ORDER BY row_no) '
                           'AS k FROM registrar.%I WHERE %s IS NOT NULL) s WHERE k > 1',
                           col, col, stage, col)
                USING u, f.name;
        END IF;
        IF f.allowed IS NOT NULL THEN
            EXECUTE format('INSERT INTO findings (upload, row_no, field, value, type, check_name, '
                           'message) SELECT $1, row_no, $2, %s::text, ''constraint-error'', '
                           '''enum'', ''the value is not one of the allowed values'' '
                           'FROM registrar.%I WHERE %s::text <> ALL ($3)', col, stage, col)
                USING u, f.name, f.allowed;
        END IF;
        IF f.min_value IS NOT NULL AND f.type IN ('integer', 'numeric') THEN
            EXECUTE format('INSERT INTO findings (upload, row_no, field, value, type, check_name, '
                           'message) SELECT $1, row_no, $2, %s::text, ''constraint-error'', '
                           '''minimum'', ''the value is below the minimum '' || $3 '
                           'FROM registrar.%I WHERE %s < $3', col, stage, col)
                USING u, f.name, f.min_value;
        END IF;
        IF f.max_value IS NOT NULL AND f.type IN ('integer', 'numeric') THEN
            EXECUTE format('INSERT INTO findings (upload, row_no, field, value, type, check_name, '
                           'message) SELECT $1, row_no, $2, %s::text, ''constraint-error'', '
                           '''maximum'', ''the value is above the maximum '' || $3 '
                           'FROM registrar.%I WHERE %s > $3', col, stage, col)
                USING u, f.name, f.max_value;
        END IF;
        IF f.length IS NOT NULL AND f.type = 'text' THEN
            EXECUTE format('INSERT INTO findings (upload, row_no, field, value, type, check_name, '
                           'message) SELECT $1, row_no, $2, left(%s, 200), '
                           '''constraint-error'', ''maxLength'', ''the value is longer than '' '
                           '|| $3 || '' characters'' FROM registrar.%I '
                           'WHERE char_length(%s) > $3', col, stage, col)
                USING u, f.name, f.length;
        END IF;
        IF f.pattern IS NOT NULL THEN
            EXECUTE format('INSERT INTO findings (upload, row_no, field, value, type, check_name, '
                           'message) SELECT $1, row_no, $2, left(%s::text, 200), '
                           '''constraint-error'', ''pattern'', ''the value does not match '' '
                           '|| $3 FROM registrar.%I WHERE %s::text <> '''' AND NOT %s::text ~ '
                           '(''^(?:'' || $3 || '')$'')', col, stage, col, col)
                USING u, f.name, f.pattern;
        END IF;
        IF f.check_name IS NOT NULL THEN
            EXECUTE format('INSERT INTO findings (upload, row_no, field, value, type, check_name, '
                           'message) SELECT $1, row_no, $2, left(%s::text, 200), '
                           '''constraint-error'', $3, ''the check digit is wrong ('' || '
                           'CASE $3 WHEN ''uscc'' THEN ''GB 32100'' ELSE ''GB 11643'' END '
                           '|| '')'' FROM registrar.%I WHERE %s::text <> '''' AND NOT '
                           'CASE $3 WHEN ''uscc'' THEN uscc_valid(%s::text) '
                           'ELSE idcard_valid(%s::text) END', col, stage, col, col, col)
                USING u, f.name, f.check_name;
        END IF;
    END LOOP;

    INSERT INTO quarantine (upload, row_no)
    SELECT DISTINCT upload, row_no FROM findings WHERE upload = u
    ON CONFLICT DO NOTHING;
END
$$;
