-- count_ahead as in 002, from the counts the registrar made while the push staged the rows
-- (registrar.stage_counts, issue 9) when it counted every facet field of the version: a sum
-- over a few rows per push group instead of a scan of the staging table. The registrar
-- keeps a value as COPY read it; cast to the column's type and back it reads as a scan's
-- %I::text does (a boolean's t as true). An upload it did not count, or not wholly
-- (uploads.counted_fields NULL, or without a facet field), is counted by the scan.
CREATE OR REPLACE FUNCTION count_ahead(p_upload bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    total bigint;
    f record;
    counted text[];
BEGIN
    DELETE FROM counts_ahead WHERE upload = p_upload;
    SELECT u.counted_fields INTO counted FROM registrar.uploads u WHERE u.id = p_upload;
    IF counted IS NOT NULL AND NOT EXISTS (SELECT 1 FROM version_fields(p_upload) v
                                           WHERE v.facet AND NOT v.name = ANY (counted)) THEN
        INSERT INTO counts_ahead (upload, field, value, count)
        SELECT p_upload, NULL, NULL, coalesce(sum(c.count), 0)
        FROM registrar.stage_counts c WHERE c.upload = p_upload AND c.field IS NULL;
        FOR f IN
            SELECT v.name, format_type(a.atttypid, a.atttypmod) AS type
            FROM version_fields(p_upload) v
            JOIN pg_attribute a ON a.attrelid = format('registrar.%I', 'stage_u' || p_upload)::regclass
                               AND a.attname = v.name
            WHERE v.facet
        LOOP
            EXECUTE format('INSERT INTO counts_ahead (upload, field, value, count) SELECT $1, $2, '
                           'c.value::%s::text, sum(c.count) FROM registrar.stage_counts c WHERE '
                           'c.upload = $1 AND c.field = $2 GROUP BY 3', f.type)
                USING p_upload, f.name;
        END LOOP;
    ELSE
        EXECUTE format('INSERT INTO counts_ahead (upload, field, value, count) SELECT $1, field, '
                       'value, n FROM (%s) g',
                       facet_query(p_upload, format('registrar.%I', 'stage_u' || p_upload)))
            USING p_upload;
    END IF;
    UPDATE index_ahead SET counted = true WHERE upload = p_upload;
    SELECT count INTO total FROM counts_ahead WHERE upload = p_upload AND field IS NULL;
    RETURN total;
END
$$;
