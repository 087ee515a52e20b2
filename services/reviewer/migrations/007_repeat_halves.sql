-- The repeat counts of repeat_plan in two halves, one per connection of the checker (issue 8).
-- With the row-level checks proven during the push (006) the count of repeats is the whole
-- of a clean version's review: one scan and one sort of 8-byte hashes on one core while the
-- other is idle. Each count is split by the parity of the hash it counts distinct: a value
-- and all its repeats have the same hash, so they fall in the same half, and for each count
-- (values - distinct hashes) the two halves add up to the whole. The count of rows whose
-- unique field is NULL goes to half 0 only. Both halves only read the staging table.
CREATE FUNCTION repeat_tally(u bigint, half integer) RETURNS bigint[] LANGUAGE plpgsql STABLE
SET work_mem = '256MB' SET jit = off AS $$
DECLARE
    p record;
    parts text[] := '{}';
    h text;
    counts bigint[];
BEGIN
    IF half NOT IN (0, 1) THEN
        RAISE EXCEPTION 'half must be 0 or 1, not %', half;
    END IF;
    IF to_regclass('registrar.' || quote_ident('stage_u' || u)) IS NULL THEN
        RETURN NULL;
    END IF;
    p := repeat_plan(u, (SELECT dictionary_revision FROM registrar.uploads WHERE id = u));
    IF p.tally IS NULL THEN
        RETURN NULL;
    END IF;
    FOR i IN 1 .. cardinality(p.u_cols) LOOP
        parts := parts || format('count(%s) FILTER (WHERE (%s & 1) = %s) - count(DISTINCT %s) '
                                 'FILTER (WHERE (%s & 1) = %s)', p.u_cols[i], p.u_hashes[i],
                                 half, p.u_hashes[i], p.u_hashes[i], half);
    END LOOP;
    IF p.pk_i IS NOT NULL THEN
        h := format('hash_record_extended(ROW(%s), 0)', p.pk_cols);
        parts := parts || format('count(*) FILTER (WHERE (%s & 1) = %s) - count(DISTINCT %s) '
                                 'FILTER (WHERE (%s & 1) = %s)', h, half, h, h, half);
    END IF;
    IF p.dup_i IS NOT NULL THEN
        h := format('hash_record_extended(ROW(%s), 0)', p.all_cols);
        parts := parts || format('count(*) FILTER (WHERE NOT (%s) AND (%s & 1) = %s) - count('
                                 'DISTINCT %s) FILTER (WHERE NOT (%s) AND (%s & 1) = %s)',
                                 p.blank, h, half, h, p.blank, h, half);
    ELSIF p.u_null_i IS NOT NULL THEN
        parts := parts || format('count(*) FILTER (WHERE %s IS NULL AND %s = 0)', p.u_cols[1],
                                 half);
    END IF;
    EXECUTE format('SELECT ARRAY[%s] FROM registrar.%I s', array_to_string(parts, ', '),
                   'stage_u' || u) INTO counts;
    RETURN counts;
END
$$;

-- The two halves added up, count by count; NULL when either is NULL.
CREATE FUNCTION repeat_tally_add(a bigint[], b bigint[]) RETURNS bigint[] LANGUAGE sql IMMUTABLE
AS $$
    SELECT CASE WHEN a IS NULL OR b IS NULL OR cardinality(a) <> cardinality(b) THEN NULL
                ELSE ARRAY(SELECT x + y FROM unnest(a, b) WITH ORDINALITY AS t(x, y, i)
                           ORDER BY i) END
$$;
