-- A released file's bytes for the query service's downloads (R5.8b, R8.3c). The bytes stay
-- where the registrar stored them (registrar.file_chunks, readable by the publisher); the
-- query service reads them only through this function, only for a file release that is
-- current or superseded, never an unreleased or withdrawn upload. p_from and p_to are byte
-- offsets (from 0, p_to excluded); the pieces come in order, cut to the range.
CREATE FUNCTION released_file_part(p_release bigint, p_from bigint, p_to bigint)
RETURNS TABLE (part bytea) LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = publisher, pg_temp AS $$
DECLARE
    u bigint;
    start bigint;
BEGIN
    SELECT x.upload INTO u FROM releases x
    WHERE x.id = p_release AND x.kind = 'file' AND x.state IN ('current', 'superseded');
    IF u IS NULL OR p_to <= p_from THEN
        RETURN;
    END IF;
    -- The piece holding p_from starts at or before it: the primary key finds it.
    SELECT max(c.offset_) INTO start FROM registrar.file_chunks c
    WHERE c.upload = u AND c.offset_ <= p_from;
    RETURN QUERY
        SELECT substring(c.data FROM (greatest(p_from - c.offset_, 0) + 1)::int
                         FOR (least(p_to, c.offset_ + length(c.data))
                              - greatest(p_from, c.offset_))::int)
        FROM registrar.file_chunks c
        WHERE c.upload = u AND c.offset_ >= coalesce(start, 0) AND c.offset_ < p_to
        ORDER BY c.offset_;
END
$$;
REVOKE ALL ON FUNCTION released_file_part(bigint, bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION released_file_part(bigint, bigint, bigint) TO odp_query;
