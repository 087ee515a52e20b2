-- index.get without the nested loops (issue 11). index_json passed the weights version to
-- index_components as a sub-select, and PostgreSQL inlines a SQL function returning a set
-- only when no argument holds a sub-select: the body then ran as a function of its own,
-- planned once for unknown arguments (one entry in 600 estimated), with index lookups per
-- entry where hash joins belong. The version is read into a variable first, so the body is
-- inlined into the call's own plan (force_custom_plan: planned for the actual period). The
-- components are computed once and read twice (kept in the history, and answered).
CREATE OR REPLACE FUNCTION index_json(p_period text, p_from timestamptz, p_to timestamptz,
                                      p_dept text)
RETURNS json LANGUAGE plpgsql VOLATILE
    SET jit = off SET work_mem = '64MB' SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    result json;
    v_weights bigint;
BEGIN
    SELECT max(version) INTO v_weights FROM weights;
    WITH k AS MATERIALIZED (SELECT * FROM index_components(p_from, p_to, p_dept, v_weights)),
    kept AS (
        INSERT INTO index_history (period, department, weights, score, components)
        SELECT p_period, k.department, k.weights, coalesce(k.score, 0),
               json_build_object('volume', k.volume, 'quality', k.quality, 'apps', k.apps,
                                 'access', k.access, 'efficiency', k.efficiency,
                                 'effect', k.effect)::text
        FROM k RETURNING 1)
    SELECT json_build_object(
        'period', p_period, 'from', p_from, 'to', p_to, 'weights', v_weights,
        'kept', (SELECT count(*) FROM kept),
        'departments', (SELECT coalesce(json_agg(json_build_object(
            'department', k.department, 'score', k.score, 'volume', k.volume,
            'quality', k.quality, 'apps', k.apps, 'access', k.access,
            'efficiency', k.efficiency, 'effect', k.effect)
            ORDER BY k.score DESC NULLS LAST, k.department), '[]') FROM k))
    INTO result;
    RETURN result;
END
$$;
