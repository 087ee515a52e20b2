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
