-- Index builds follow a version from the start of its review (review.started) to their end:
-- ready_at says the registrar finished them, so a release asks it nothing more; next_at
-- spaces the tries after a failure (a stopped registrar is not asked on every tick).
ALTER TABLE index_ahead ADD COLUMN started_at timestamptz, ADD COLUMN ready_at timestamptz,
    ADD COLUMN next_at timestamptz NOT NULL DEFAULT now(), ADD COLUMN last_error text;

-- release_checks as in 001, and for every pushed version (dataset or file) a content hash
-- (content_hash); a file that was reviewed needs an approving sign-off, as a dataset does
-- (approved_signoff). Its local variable is no longer called found: that name hid
-- PL/pgSQL's FOUND, so a version never reviewed was not refused as such.
CREATE OR REPLACE FUNCTION release_checks(p_resource text, p_table text, p_version integer)
RETURNS TABLE (condition text, detail text) LANGUAGE plpgsql STABLE AS $$
DECLARE
    r registrar.resources%ROWTYPE;
    u registrar.uploads%ROWTYPE;
    v reviewer.reviews%ROWTYPE;
    missing text[];
    n bigint;
    accepted boolean;
BEGIN
    SELECT * INTO r FROM registrar.resources x WHERE x.resource = p_resource;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'entry_registered', format('no catalogue entry %s', p_resource);
        RETURN;
    END IF;
    IF r.status <> 'registered' THEN
        RETURN QUERY SELECT 'entry_registered', format('the entry is %s, not registered', r.status);
    END IF;
    IF r.open_type = 'not_open' THEN
        RETURN QUERY SELECT 'not_not_open', 'the entry is not to be opened (open type not_open)';
    END IF;
    missing := array_remove(ARRAY[
        CASE WHEN coalesce(r.title, '') = '' THEN 'title' END,
        CASE WHEN coalesce(r.summary, '') = '' THEN 'summary' END,
        CASE WHEN coalesce(cardinality(r.keywords), 0) = 0 THEN 'keywords' END,
        CASE WHEN coalesce(r.contact, '') = '' THEN 'contact' END,
        CASE WHEN coalesce(r.location, '') = '' THEN 'location' END,
        CASE WHEN r.open_type = 'conditional' AND coalesce(r.access_conditions, '') = ''
             THEN 'access_conditions' END,
        CASE WHEN r.delivery_form <> 'dataset_file' AND coalesce(r.endpoint, '') = ''
             THEN 'endpoint' END], NULL);
    IF cardinality(missing) > 0 THEN
        RETURN QUERY SELECT 'metadata_complete', 'missing: ' || array_to_string(missing, ', ');
    END IF;
    IF r.delivery_form <> 'dataset_file' THEN
        RETURN;
    END IF;
    SELECT * INTO u FROM registrar.uploads x
    WHERE x.resource = p_resource AND x.table_name = p_table AND x.version = p_version;
    IF NOT FOUND OR u.status <> 'received' THEN
        RETURN QUERY SELECT 'version_received',
                            format('no received version %s of table %s', p_version, p_table);
        RETURN;
    END IF;
    IF u.withdrawn_at IS NOT NULL THEN
        RETURN QUERY SELECT 'version_not_withdrawn',
                            format('the department withdrew version %s: %s', p_version,
                                   u.withdrawn_reason);
    END IF;
    IF coalesce(u.sha256, '') !~ '^[0-9a-f]{64}$' THEN
        RETURN QUERY SELECT 'content_hash',
                            format('the version has no SHA-256 of its content (%s)',
                                   coalesce(nullif(u.sha256, ''), 'none'));
    END IF;
    IF u.kind = 'file' THEN
        IF u.size = 0 THEN
            RETURN QUERY SELECT 'non_empty', 'the file is empty';
        END IF;
        -- The reviewer reviews datasets; a file that was reviewed all the same needs the
        -- approval a dataset needs.
        SELECT * INTO v FROM reviewer.reviews x WHERE x.upload = u.id;
        IF FOUND AND (v.state <> 'approved' OR NOT EXISTS (
                SELECT 1 FROM reviewer.signoffs s WHERE s.upload = u.id
                                                    AND s.decision = 'approved')) THEN
            RETURN QUERY SELECT 'approved_signoff',
                                format('the file is %s, without an approving sign-off', v.state);
        END IF;
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM registrar.dictionary_revision_fields f
                   WHERE f.resource = u.resource AND f.table_name = u.table_name
                     AND f.revision = u.dictionary_revision) THEN
        RETURN QUERY SELECT 'dictionary_present', 'the version has no data dictionary';
    END IF;
    SELECT * INTO v FROM reviewer.reviews x WHERE x.upload = u.id;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'approved_signoff', 'the version has not been reviewed';
    ELSIF v.state <> 'approved' OR NOT EXISTS (SELECT 1 FROM reviewer.signoffs s
                                               WHERE s.upload = u.id
                                                 AND s.decision = 'approved') THEN
        RETURN QUERY SELECT 'approved_signoff',
                            format('the version is %s, without an approving sign-off', v.state);
    END IF;
    SELECT count(*) INTO n FROM reviewer.quarantine q WHERE q.upload = u.id AND q.state = 'isolated';
    IF n > 0 THEN
        RETURN QUERY SELECT 'quarantine_handled', format('%s quarantined rows are not handled', n);
    END IF;
    SELECT count(*) INTO n FROM reviewer.quarantine q JOIN registrar.dictionary_revision_fields f
        ON f.resource = u.resource AND f.table_name = u.table_name
       AND f.revision = u.dictionary_revision AND f.name = q.field
    WHERE q.upload = u.id AND q.state = 'corrected'
      AND NOT value_fits(q.new_value, CASE f.type WHEN 'integer' THEN 'bigint'
                                                  WHEN 'timestamp' THEN 'timestamptz'
                                                  ELSE f.type END);
    IF n > 0 THEN
        RETURN QUERY SELECT 'corrections_typed',
                            format('%s corrected values do not read as their field''s type', n);
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM registrar.%I s WHERE NOT EXISTS (SELECT 1 '
                   'FROM reviewer.quarantine q WHERE q.upload = $1 AND q.row_no = s.row_no '
                   'AND q.state IN (''isolated'', ''dropped'')))', 'stage_u' || u.id)
        USING u.id INTO accepted;
    IF NOT accepted THEN
        RETURN QUERY SELECT 'non_empty', 'the version has no accepted rows';
    END IF;
END
$$;

-- A version's row total and facet counts over its whole staging table, counted ahead
-- while it is reviewed (count_ahead, on a connection of its own): a release then only
-- corrects them by its row exceptions, so its time does not grow with the version's
-- rows. field NULL is the total. counted: NULL not yet, false failed (the release counts
-- everything itself).
CREATE TABLE counts_ahead (
    upload bigint NOT NULL,
    field  text,
    value  text,
    count  bigint NOT NULL
);
CREATE INDEX counts_ahead_upload ON counts_ahead (upload);
ALTER TABLE index_ahead ADD COLUMN counted boolean;

-- One pass over source (rows with the columns of upload's staging table) counting rows
-- and every facet value (GROUPING SETS: the () set is the total, where no field is
-- grouped), as a query of (field, value, n). Names are quoted (%I), never pasted in.
CREATE FUNCTION facet_query(p_upload bigint, source text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    f record;
    sets text := '()';
    field_case text := '';
    value_case text := '';
BEGIN
    FOR f IN SELECT v.name FROM version_fields(p_upload) v WHERE v.facet ORDER BY v.position LOOP
        sets := sets || format(', (%I)', f.name);
        field_case := field_case || format(' WHEN grouping(%I) = 0 THEN %L', f.name, f.name);
        value_case := value_case || format(' WHEN grouping(%I) = 0 THEN %I::text', f.name, f.name);
    END LOOP;
    IF sets = '()' THEN
        RETURN format('SELECT NULL::text AS field, NULL::text AS value, count(*) AS n FROM %s',
                      source);
    END IF;
    RETURN format('SELECT CASE %s END AS field, CASE %s END AS value, count(*) AS n FROM %s '
                  'GROUP BY GROUPING SETS (%s)', field_case, value_case, source, sets);
END
$$;

CREATE FUNCTION count_ahead(p_upload bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    total bigint;
BEGIN
    DELETE FROM counts_ahead WHERE upload = p_upload;
    EXECUTE format('INSERT INTO counts_ahead (upload, field, value, count) SELECT $1, field, '
                   'value, n FROM (%s) g',
                   facet_query(p_upload, format('registrar.%I', 'stage_u' || p_upload)))
        USING p_upload;
    UPDATE index_ahead SET counted = true WHERE upload = p_upload;
    SELECT count INTO total FROM counts_ahead WHERE upload = p_upload AND field IS NULL;
    RETURN total;
END
$$;

-- make_view as in 001, counting from counts_ahead when the version was counted ahead:
-- those counts, less the staged values of the release's exception rows, plus the values
-- its corrected rows show.
CREATE OR REPLACE FUNCTION make_view(rel bigint, p_upload bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    view text := 'r' || rel;
    stage text := 'stage_u' || p_upload;
    cols text := 's.row_no';
    fixed text := 's.row_no';
    f record;
    has_excl boolean;
    has_corr boolean;
    body text;
    total bigint;
BEGIN
    INSERT INTO row_exceptions (release, row_no, action, field, value)
    SELECT rel, q.row_no, CASE WHEN q.state = 'corrected' THEN 'correct' ELSE 'exclude' END,
           CASE WHEN q.state = 'corrected' THEN q.field END,
           CASE WHEN q.state = 'corrected' THEN q.new_value END
    FROM reviewer.quarantine q
    WHERE q.upload = p_upload AND (q.state IN ('isolated', 'dropped')
                                   OR (q.state = 'corrected' AND q.field IS NOT NULL));
    SELECT bool_or(action = 'exclude'), bool_or(action = 'correct') INTO has_excl, has_corr
    FROM row_exceptions WHERE release = rel;
    FOR f IN
        SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type
        FROM pg_attribute a
        WHERE a.attrelid = format('registrar.%I', stage)::regclass AND a.attnum > 0
          AND NOT a.attisdropped AND a.attname <> 'row_no'
        ORDER BY a.attnum
    LOOP
        cols := cols || format(', s.%I', f.name);
        fixed := fixed || format(', CASE WHEN c.field = %L THEN c.value::%s ELSE s.%I END AS %I',
                                 f.name, f.type, f.name, f.name);
    END LOOP;
    body := format('SELECT %s FROM registrar.%I s', cols, stage);
    IF has_excl OR has_corr THEN
        body := body || format(' WHERE NOT EXISTS (SELECT 1 FROM publisher.row_exceptions e '
                               'WHERE e.release = %s AND e.row_no = s.row_no)', rel);
    END IF;
    IF has_corr THEN
        body := body || format(' UNION ALL SELECT %s FROM publisher.row_exceptions c JOIN '
                               'registrar.%I s ON s.row_no = c.row_no WHERE c.release = %s '
                               'AND c.action = ''correct''', fixed, stage, rel);
    END IF;
    EXECUTE format('CREATE VIEW %I AS %s', view, body);
    UPDATE releases SET relation = 'publisher.' || view WHERE id = rel;

    INSERT INTO release_fields (release, position, name, type, description, indexed, facet)
    SELECT rel, v.position, v.name, v.type, v.description, v.indexed, v.facet
    FROM version_fields(p_upload) v;
    IF EXISTS (SELECT 1 FROM index_ahead WHERE upload = p_upload AND counted) THEN
        EXECUTE format(
            'WITH g AS (SELECT field, value, count AS n FROM counts_ahead WHERE upload = $2 '
            'UNION ALL SELECT field, value, -n FROM (%s) o UNION ALL SELECT field, value, n '
            'FROM (%s) c), t AS (SELECT field, value, sum(n)::bigint AS n FROM g GROUP BY '
            'field, value), i AS (INSERT INTO facets (release, field, value, count) SELECT $1, '
            'field, value, n FROM t WHERE field IS NOT NULL AND n > 0) SELECT n FROM t WHERE '
            'field IS NULL',
            facet_query(p_upload, format('registrar.%I s WHERE s.row_no IN (SELECT e.row_no '
                                         'FROM publisher.row_exceptions e WHERE e.release = '
                                         '%s)', stage, rel)),
            facet_query(p_upload, format('publisher.%I v WHERE v.row_no IN (SELECT e.row_no '
                                         'FROM publisher.row_exceptions e WHERE e.release = %s '
                                         'AND e.action = ''correct'')', view, rel)))
            USING rel, p_upload INTO total;
    ELSE
        EXECUTE format('WITH g AS (%s), i AS (INSERT INTO facets (release, field, value, count) '
                       'SELECT $1, field, value, n FROM g WHERE field IS NOT NULL) SELECT n '
                       'FROM g WHERE field IS NULL', facet_query(p_upload, format('%I', view)))
            USING rel INTO total;
    END IF;
    UPDATE releases SET rows = total WHERE id = rel;
    RETURN total;
END
$$;
