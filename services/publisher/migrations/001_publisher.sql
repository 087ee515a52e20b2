-- Releases, the public catalogue and the public views (R4.3a, R5.7b, R9a, R9d, R8.2b,
-- R8.3c-d). entries, releases, release_fields, facets and the r<release> views are the
-- contract the query and metrics services read (docs/design.md, "What the publisher makes
-- public"); everything else here is the publisher's own.

-- Release on approval automatically, or wait for release.publish: per department (scope =
-- its code) or per entry (scope = its resource code, which wins). No row: wait.
CREATE TABLE policies (
    scope     text PRIMARY KEY,
    automatic boolean NOT NULL,
    set_by    text NOT NULL,
    set_at    timestamptz NOT NULL DEFAULT now()
);

-- A released catalogue entry, with the registrar's metadata as it was at its last release.
CREATE TABLE entries (
    resource          text PRIMARY KEY,
    kind              text NOT NULL CHECK (kind IN ('dataset', 'file', 'interface', 'app')),
    department        text NOT NULL,
    department_name   text NOT NULL,
    title             text NOT NULL,
    summary           text NOT NULL,
    keywords          text[] NOT NULL,
    domain            text NOT NULL,
    content_kind      text NOT NULL,
    delivery_form     text NOT NULL,
    open_type         text NOT NULL,
    update_cycle      text NOT NULL,
    contact           text NOT NULL,
    location          text NOT NULL,
    access_conditions text,
    endpoint          text,
    state             text NOT NULL CHECK (state IN ('published', 'withdrawn')),
    current_release   bigint,
    withdrawn_reason  text,
    modified_seq      bigint NOT NULL,  -- the publisher event that last changed it
    first_released_at timestamptz NOT NULL DEFAULT now(),
    modified_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX entries_modified ON entries (modified_seq);

CREATE TABLE releases (
    id                  bigserial PRIMARY KEY,
    resource            text NOT NULL,
    table_name          text NOT NULL,
    version             integer NOT NULL,
    upload              bigint,
    kind                text NOT NULL CHECK (kind IN ('dataset', 'file', 'interface', 'app')),
    state               text NOT NULL
                        CHECK (state IN ('prepared', 'current', 'superseded', 'withdrawn')),
    relation            text,
    rows                bigint,
    bytes               bigint,
    sha256              text,
    format              text,
    endpoint            text,
    standard            integer,
    dictionary_revision integer,
    released_by         text NOT NULL,
    released_at         timestamptz NOT NULL DEFAULT now(),
    event_seq           bigint,
    superseded_at       timestamptz,
    withdrawn_from      text CHECK (withdrawn_from IN ('current', 'superseded')),
    withdrawn_by        text,
    withdrawn_at        timestamptz,
    withdrawn_reason    text,
    CHECK ((state = 'withdrawn') = (withdrawn_from IS NOT NULL)),
    UNIQUE (resource, table_name, version)
);
-- The switch: at most one current release per table, so a reader finds one or the other.
CREATE UNIQUE INDEX releases_current ON releases (resource, table_name) WHERE state = 'current';
ALTER TABLE entries ADD FOREIGN KEY (current_release) REFERENCES releases (id)
    DEFERRABLE INITIALLY DEFERRED;

CREATE TABLE release_fields (
    release     bigint NOT NULL REFERENCES releases (id),
    position    integer NOT NULL,
    name        text NOT NULL,
    type        text NOT NULL,
    description text,
    indexed     boolean NOT NULL,
    facet       boolean NOT NULL,
    PRIMARY KEY (release, position)
);

CREATE TABLE facets (
    release bigint NOT NULL REFERENCES releases (id),
    field   text NOT NULL,
    value   text,
    count   bigint NOT NULL
);
CREATE INDEX facets_release ON facets (release, field);

-- The rows of a release that differ from its staging table: left out (isolated or
-- dropped by the reviewer) or shown with operations' corrected value of one field.
-- Copied once at release, so a release never changes when anything else does.
CREATE TABLE row_exceptions (
    release bigint NOT NULL REFERENCES releases (id),
    row_no  bigint NOT NULL,
    action  text NOT NULL CHECK (action IN ('exclude', 'correct')),
    field   text,
    value   text,
    CHECK ((action = 'correct') = (field IS NOT NULL)),
    PRIMARY KEY (release, row_no)
);

-- Every release attempt, refused ones with the conditions that failed.
CREATE TABLE attempts (
    id         bigserial PRIMARY KEY,
    resource   text NOT NULL,
    table_name text NOT NULL,
    version    integer,
    actor      text NOT NULL,
    at         timestamptz NOT NULL DEFAULT now(),
    outcome    text NOT NULL CHECK (outcome IN ('released', 'refused', 'failed')),
    reasons    text,
    release    bigint REFERENCES releases (id)
);
CREATE INDEX attempts_entry ON attempts (resource, table_name, id);

-- Versions approved under an automatic policy, waiting for the release loop (which asks
-- the registrar for indexes first, and so cannot run inside the event's transaction).
CREATE TABLE pending (
    upload     bigint PRIMARY KEY,
    resource   text NOT NULL,
    table_name text NOT NULL,
    version    integer NOT NULL,
    queued_at  timestamptz NOT NULL DEFAULT now(),
    tries      integer NOT NULL DEFAULT 0,
    last_error text
);

-- Reviewed versions whose indexes the registrar builds ahead, while operations look at the
-- findings: any release of the version needs them, and the staging table never changes, so
-- the time from the decision to the release does not grow with the index builds.
CREATE TABLE index_ahead (
    upload    bigint PRIMARY KEY,
    queued_at timestamptz NOT NULL DEFAULT now(),
    tries     integer NOT NULL DEFAULT 0
);

-- Does value read as a value of type? (PostgreSQL 15 has no pg_input_is_valid.)
CREATE FUNCTION value_fits(value text, type text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('SELECT $1::%s', type) USING value;
    RETURN true;
EXCEPTION WHEN data_exception THEN
    RETURN false;
END
$$;

-- The kind of entry a release is: a pushed dataset or file, or an endpoint.
CREATE FUNCTION entry_kind(delivery_form text, upload_kind text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN delivery_form IN ('query_interface', 'exchange_interface') THEN 'interface'
                WHEN delivery_form = 'app' THEN 'app'
                WHEN upload_kind = 'file' THEN 'file'
                ELSE 'dataset' END
$$;

-- Every condition a release of (resource, table, version) fails, with what was found; no
-- row when it may go public (R9a, R9d). version NULL: an endpoint, which has none.
CREATE FUNCTION release_checks(p_resource text, p_table text, p_version integer)
RETURNS TABLE (condition text, detail text) LANGUAGE plpgsql STABLE AS $$
DECLARE
    r registrar.resources%ROWTYPE;
    u registrar.uploads%ROWTYPE;
    v reviewer.reviews%ROWTYPE;
    missing text[];
    n bigint;
    found boolean;
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
    IF u.kind = 'file' THEN
        IF u.size = 0 THEN
            RETURN QUERY SELECT 'non_empty', 'the file is empty';
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
        USING u.id INTO found;
    IF NOT found THEN
        RETURN QUERY SELECT 'non_empty', 'the version has no accepted rows';
    END IF;
END
$$;

-- The fields of a dataset version that get an index on its staging table: those a public
-- query filters on exactly or by range - unique (a key), enumerated (code-like), dates,
-- and check-digit codes (credit codes, ID numbers) - and row_no, the public row's key and
-- the order of paging. Facets are the code-like ones: enumerated or boolean.
CREATE FUNCTION version_fields(p_upload bigint)
RETURNS TABLE ("position" integer, name text, type text, description text, indexed boolean,
               facet boolean) LANGUAGE sql STABLE AS $$
    SELECT f.position, f.name, f.type, f.description,
           f.is_unique OR f.allowed IS NOT NULL OR f.type IN ('date', 'timestamp')
               OR f.check_name IS NOT NULL,
           f.allowed IS NOT NULL OR f.type = 'boolean'
    FROM registrar.uploads u
    JOIN registrar.dictionary_revision_fields f
      ON f.resource = u.resource AND f.table_name = u.table_name
     AND f.revision = u.dictionary_revision
    WHERE u.id = p_upload
    ORDER BY f.position
$$;

-- The public view of release rel over upload's staging table: the accepted rows, typed as
-- staged, corrected values in place. Names are quoted (%I), never pasted in. Its rows and
-- facets are counted here, once: a release never changes.
CREATE FUNCTION make_view(rel bigint, p_upload bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    view text := 'r' || rel;
    stage text := 'stage_u' || p_upload;
    cols text := 's.row_no';
    fixed text := 's.row_no';
    f record;
    has_excl boolean;
    has_corr boolean;
    body text;
    sets text := '()';
    field_case text := '';
    value_case text := '';
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
    -- One pass over the view for the row count and every facet (GROUPING SETS): the ()
    -- set is the total, where no field is grouped.
    FOR f IN SELECT name FROM release_fields WHERE release = rel AND facet ORDER BY position LOOP
        sets := sets || format(', (%I)', f.name);
        field_case := field_case || format(' WHEN grouping(%I) = 0 THEN %L', f.name, f.name);
        value_case := value_case || format(' WHEN grouping(%I) = 0 THEN %I::text', f.name, f.name);
    END LOOP;
    IF sets = '()' THEN
        EXECUTE format('SELECT count(*) FROM %I', view) INTO total;
    ELSE
        EXECUTE format('WITH g AS (SELECT CASE %s END AS field, CASE %s END AS value, count(*) '
                       'AS n FROM %I GROUP BY GROUPING SETS (%s)), i AS (INSERT INTO facets '
                       '(release, field, value, count) SELECT $1, field, value, n FROM g WHERE '
                       'field IS NOT NULL) SELECT n FROM g WHERE field IS NULL',
                       field_case, value_case, view, sets) USING rel INTO total;
    END IF;
    UPDATE releases SET rows = total WHERE id = rel;
    RETURN total;
END
$$;

-- Who may read a release's view: odp_query and odp_metrics, while the release is not
-- withdrawn and its entry is published. Withdrawal revokes in its own transaction, so a
-- withdrawn entry stops being served at once, whatever a reader has cached.
CREATE FUNCTION sync_grants(p_resource text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    x record;
BEGIN
    FOR x IN SELECT r.relation, r.state IN ('current', 'superseded') AND e.state = 'published'
                    AS open
             FROM releases r JOIN entries e ON e.resource = r.resource
             WHERE r.resource = p_resource AND r.relation IS NOT NULL LOOP
        IF x.open THEN
            EXECUTE format('GRANT SELECT ON %s TO odp_query, odp_metrics', x.relation);
        ELSE
            EXECUTE format('REVOKE SELECT ON %s FROM odp_query, odp_metrics', x.relation);
        END IF;
    END LOOP;
END
$$;

-- An entry's state follows its releases: published while one is current.
CREATE FUNCTION entry_refresh(p_resource text, p_reason text) RETURNS void LANGUAGE sql AS $$
    UPDATE entries e SET
        current_release = (SELECT max(r.id) FROM releases r
                           WHERE r.resource = e.resource AND r.state = 'current'),
        state = CASE WHEN EXISTS (SELECT 1 FROM releases r WHERE r.resource = e.resource
                                  AND r.state = 'current') THEN 'published' ELSE 'withdrawn' END,
        withdrawn_reason = CASE WHEN EXISTS (SELECT 1 FROM releases r WHERE r.resource =
                                             e.resource AND r.state = 'current') THEN NULL
                                ELSE coalesce(p_reason, e.withdrawn_reason) END,
        modified_at = now()
    WHERE e.resource = p_resource;
    SELECT sync_grants(p_resource);
$$;

CREATE FUNCTION policy_auto(p_resource text, p_department text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT automatic FROM policies WHERE scope = p_resource),
                    (SELECT automatic FROM policies WHERE scope = p_department), false)
$$;

-- The first half of a release, before anything is public: the release row (state
-- prepared), its view (no grant yet), its fields, and its rows and facets counted once.
-- This is the part whose time grows with the version's size, so it runs in a transaction
-- of its own; a prepared release left by a crash is taken up again by the next attempt.
CREATE FUNCTION prepare(p_resource text, p_table text, p_version integer, p_actor text)
RETURNS bigint LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    r registrar.resources%ROWTYPE;
    u registrar.uploads%ROWTYPE;
    k text;
    ver integer := p_version;
    rel bigint;
BEGIN
    SELECT x.id INTO rel FROM releases x
    WHERE x.resource = p_resource AND x.table_name = p_table AND x.state = 'prepared'
      AND (p_version IS NULL OR x.version = p_version);
    IF FOUND THEN
        RETURN rel;
    END IF;
    SELECT * INTO r FROM registrar.resources x WHERE x.resource = p_resource;
    IF r.delivery_form = 'dataset_file' THEN
        SELECT * INTO u FROM registrar.uploads x
        WHERE x.resource = p_resource AND x.table_name = p_table AND x.version = p_version;
    ELSE
        ver := coalesce((SELECT max(x.version) FROM releases x WHERE x.resource = p_resource
                         AND x.table_name = p_table), 0) + 1;
    END IF;
    k := entry_kind(r.delivery_form, u.kind);
    INSERT INTO releases (resource, table_name, version, upload, kind, state, bytes, sha256,
                          format, endpoint, standard, dictionary_revision, released_by)
    VALUES (p_resource, p_table, ver, u.id, k, 'prepared', u.size, u.sha256,
            coalesce(u.media_type, u.format),
            CASE WHEN k IN ('interface', 'app') THEN r.endpoint END,
            (SELECT s.standard FROM reviewer.signoffs s WHERE s.upload = u.id),
            u.dictionary_revision, p_actor)
    RETURNING id INTO rel;
    IF k = 'dataset' THEN
        PERFORM make_view(rel, u.id);
    END IF;
    RETURN rel;
END
$$;

-- The switch: the entry's metadata refreshed, its current release superseded and the
-- prepared one current, grants following, in the caller's transaction (which has run
-- release_checks in it). Constant work, whatever the version's size.
CREATE FUNCTION switch_to(rel bigint, p_actor text)
RETURNS TABLE (release bigint, version integer, kind text, department text, rows bigint,
               sha256 text, endpoint text, upload bigint, old_release bigint,
               old_version integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    x releases%ROWTYPE;
    r record;
    old record;
BEGIN
    SELECT * INTO x FROM releases y WHERE y.id = rel AND y.state = 'prepared';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'release % is not prepared', rel USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    SELECT y.*, d.name AS department_name INTO r
    FROM registrar.resources y JOIN registrar.departments d ON d.code = y.department
    WHERE y.resource = x.resource;
    INSERT INTO entries AS e (resource, kind, department, department_name, title, summary,
                              keywords, domain, content_kind, delivery_form, open_type,
                              update_cycle, contact, location, access_conditions, endpoint,
                              state, modified_seq)
    VALUES (r.resource, x.kind, r.department, r.department_name, r.title, r.summary, r.keywords,
            r.domain, r.content_kind, r.delivery_form, r.open_type, r.update_cycle, r.contact,
            r.location, r.access_conditions, r.endpoint, 'published', 0)
    ON CONFLICT (resource) DO UPDATE SET
        kind = EXCLUDED.kind, department_name = EXCLUDED.department_name,
        title = EXCLUDED.title, summary = EXCLUDED.summary, keywords = EXCLUDED.keywords,
        domain = EXCLUDED.domain, content_kind = EXCLUDED.content_kind,
        delivery_form = EXCLUDED.delivery_form, open_type = EXCLUDED.open_type,
        update_cycle = EXCLUDED.update_cycle, contact = EXCLUDED.contact,
        location = EXCLUDED.location, access_conditions = EXCLUDED.access_conditions,
        endpoint = EXCLUDED.endpoint, modified_at = now();
    UPDATE releases y SET state = 'superseded', superseded_at = now()
    WHERE y.resource = x.resource AND y.table_name = x.table_name AND y.state = 'current'
    RETURNING y.id, y.version INTO old;
    UPDATE releases y SET state = 'current', released_by = p_actor, released_at = now()
    WHERE y.id = rel;
    PERFORM entry_refresh(x.resource, NULL);
    RETURN QUERY SELECT x.id, x.version, x.kind, r.department::text, x.rows, x.sha256,
                        x.endpoint, x.upload, old.id, old.version;
END
$$;

-- Withdraw the current release of each table (version NULL) or one release, with reason.
CREATE FUNCTION withdraw(p_resource text, p_table text, p_version integer, p_reason text,
                         p_actor text)
RETURNS TABLE (release bigint, table_name text, version integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    UPDATE releases x SET withdrawn_from = x.state, state = 'withdrawn', withdrawn_by = p_actor,
                          withdrawn_at = now(), withdrawn_reason = p_reason
    WHERE x.resource = p_resource AND (p_table IS NULL OR x.table_name = p_table)
      AND CASE WHEN p_version IS NULL THEN x.state = 'current'
               ELSE x.version = p_version AND x.state IN ('current', 'superseded') END
    RETURNING x.id, x.table_name, x.version;
    PERFORM entry_refresh(p_resource, p_reason);
END
$$;

-- Restore the withdrawn release of each table that was current last (version NULL) or one
-- release: current again when its table has no current release, else superseded.
CREATE FUNCTION restore(p_resource text, p_table text, p_version integer)
RETURNS TABLE (release bigint, table_name text, version integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    UPDATE releases x SET
        state = CASE WHEN x.withdrawn_from = 'current' AND NOT EXISTS (
                          SELECT 1 FROM releases y WHERE y.resource = x.resource
                          AND y.table_name = x.table_name AND y.state = 'current')
                     THEN 'current' ELSE 'superseded' END,
        withdrawn_from = NULL, withdrawn_by = NULL, withdrawn_at = NULL, withdrawn_reason = NULL
    WHERE x.resource = p_resource AND (p_table IS NULL OR x.table_name = p_table)
      AND x.state = 'withdrawn'
      AND CASE WHEN p_version IS NULL THEN x.id IN (
                   SELECT max(y.id) FROM releases y WHERE y.resource = p_resource
                   AND y.state = 'withdrawn' AND y.withdrawn_from = 'current'
                   GROUP BY y.table_name)
               ELSE x.version = p_version END
    RETURNING x.id, x.table_name, x.version;
    PERFORM entry_refresh(p_resource, NULL);
END
$$;

-- The contract (docs/design.md): read by the query and metrics services.
GRANT USAGE ON SCHEMA publisher TO odp_query, odp_metrics;
GRANT SELECT ON entries, releases, release_fields, facets TO odp_query, odp_metrics;
