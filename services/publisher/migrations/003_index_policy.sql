-- Which fields of a dataset version get an index (issue 9, docs/design.md "Indexes"). As in
-- 001, with one change: an enumerated field is indexed only when its list has more than
-- 100 values. An equality filter on one of k values matches about 1/k of the rows, spread
-- over the table in push order; while k is below the rows a heap page holds (50-100 for
-- tables like the benchmark's), nearly every page holds a match, so a bitmap scan through
-- the field's index reads as many pages as the sequential scan, and the query service's
-- paging order (row_no, whose index is always built) finds the first page of matches
-- after about 100 * k rows. Such an index was the dearest build of a release (1.8 s of CPU
-- for a 12-value list on 1M rows, more than the unique key's) for no faster query.
-- The query service sorts only on indexed fields, so these fields are no longer sortable;
-- they stay filterable and facets.
CREATE OR REPLACE FUNCTION version_fields(p_upload bigint)
RETURNS TABLE ("position" integer, name text, type text, description text, indexed boolean,
               facet boolean) LANGUAGE sql STABLE AS $$
    SELECT f.position, f.name, f.type, f.description,
           f.is_unique OR coalesce(cardinality(f.allowed) > 100, false)
               OR f.type IN ('date', 'timestamp') OR f.check_name IS NOT NULL,
           f.allowed IS NOT NULL OR f.type = 'boolean'
    FROM registrar.uploads u
    JOIN registrar.dictionary_revision_fields f
      ON f.resource = u.resource AND f.table_name = u.table_name
     AND f.revision = u.dictionary_revision
    WHERE u.id = p_upload
    ORDER BY f.position
$$;
