-- The repeat check from the push's evidence (issue 8, round 5): the registrar hashes every
-- value of the version's unique text fields while it stages the rows, a group's hashes
-- sorted into registrar.stage_keys (its push_keys.c). The reviewer merges those sorted
-- runs (repeats.c) into the counts repeat_tally would have made by a scan of the staging
-- table: for each unique field, its values less its distinct hashes, and the rows whose
-- first unique field is NULL. A hash repeating sends the checks to the exact comparison
-- as before (collect_repeat_findings); none repeating proves no value repeats. The
-- evidence is used only when it covers the whole tally: every unique field hashed, every
-- staged row accounted for in each, and no primary key or whole-row count besides
-- (those the scan still counts).

-- Whether the last check took the repeat counts from the push's evidence (NULL: checked
-- before this).
ALTER TABLE reviews ADD COLUMN repeats_from_push boolean;

-- The pages of version u's evidence (registrar.stage_keys ids), in the order of the tally's
-- place each counts for (1-based, repeat_plan's unique fields in order), its run (the push
-- group) and its page in the run; with each page's place, run and length in hashes.
-- places, the unique fields' count; u_null_i and u_nulls, the tally's place for the rows
-- whose first unique field is NULL and their count. All NULL when the evidence does not
-- cover the tally.
CREATE FUNCTION repeat_evidence(u bigint, OUT places integer, OUT u_null_i integer,
                                OUT u_nulls bigint, OUT page_ids bigint[],
                                OUT page_places integer[], OUT page_runs bigint[],
                                OUT page_lengths bigint[])
LANGUAGE plpgsql STABLE AS $$
DECLARE
    up record;
    p record;
BEGIN
    SELECT x.dictionary_revision, x.keyed_fields, x.rows_staged, x.status INTO up
      FROM registrar.uploads x WHERE x.id = u;
    IF up.keyed_fields IS NULL OR up.status <> 'received'
       OR to_regclass('registrar.' || quote_ident('stage_u' || u)) IS NULL THEN
        RETURN;
    END IF;
    p := repeat_plan(u, up.dictionary_revision);
    IF p.tally IS NULL OR p.pk_i IS NOT NULL OR p.dup_i IS NOT NULL
       OR cardinality(p.u_names) = 0 OR NOT (p.u_names <@ up.keyed_fields) THEN
        RETURN;
    END IF;
    -- Every staged row once in each field's pages, as a value or a NULL.
    IF EXISTS (SELECT 1 FROM unnest(p.u_names) n(name)
                WHERE (SELECT coalesce(sum(k.nulls + octet_length(k.hashes) / 8), 0)
                         FROM registrar.stage_keys k
                        WHERE k.upload = u AND k.field = n.name) <> up.rows_staged) THEN
        RETURN;
    END IF;
    SELECT coalesce(array_agg(k.id ORDER BY f.place, k.run, k.page), '{}'),
           coalesce(array_agg(f.place::integer ORDER BY f.place, k.run, k.page), '{}'),
           coalesce(array_agg(k.run ORDER BY f.place, k.run, k.page), '{}'),
           coalesce(array_agg(octet_length(k.hashes) / 8 ORDER BY f.place, k.run, k.page), '{}')
      INTO page_ids, page_places, page_runs, page_lengths
      FROM registrar.stage_keys k
      JOIN unnest(p.u_names) WITH ORDINALITY f(name, place) ON f.name = k.field
     WHERE k.upload = u AND octet_length(k.hashes) > 0;
    places := cardinality(p.u_names);
    u_null_i := p.u_null_i;
    IF u_null_i IS NOT NULL THEN
        u_nulls := (SELECT coalesce(sum(k.nulls), 0) FROM registrar.stage_keys k
                     WHERE k.upload = u AND k.field = p.u_names[1]);
    END IF;
END
$$;
