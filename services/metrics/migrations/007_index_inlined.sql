-- index.get without the nested loops, and without numeric arithmetic per entry (issue 11).
-- - index_json passed the weights version to index_components as a sub-select, and
--   PostgreSQL inlines a SQL function returning a set only when no argument holds a
--   sub-select: the body then ran as a function of its own, planned once for unknown
--   arguments (one entry in 600 estimated), with index lookups per entry where hash joins
--   belong. The version is read into a variable first, so the body is inlined into the
--   call's own plan (force_custom_plan: planned for the actual period). The components are
--   computed once and read twice (kept in the history, and answered).
-- - Per version, sums of bigint and an average of a division by 3.0 are numeric in
--   PostgreSQL, each group an allocated numeric state: 100,000 of them for 100,000 entries.
--   The same figures are summed as double precision (whole numbers far below 2^53, exact)
--   and authenticity is the sum of its points over three times the count; metadata
--   completeness divides by 4 as double precision; slot_index reads the calendar with
--   date_part (double precision) rather than extract (numeric since PostgreSQL 14). Same
--   definitions (docs/assessment.md).
CREATE OR REPLACE FUNCTION metadata_completeness(keywords text[], released_on date, updated_on date,
                                                 open_type text, access_conditions text)
    RETURNS double precision LANGUAGE sql IMMUTABLE AS $$
    SELECT ((coalesce(cardinality(keywords), 0) > 0)::int + (released_on IS NOT NULL)::int
            + (updated_on IS NOT NULL)::int
            + (open_type <> 'conditional' OR access_conditions IS NOT NULL)::int) / 4.0::float8
$$;

CREATE OR REPLACE FUNCTION slot_index(w_from timestamptz, t timestamptz, update_cycle text)
    RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN update_cycle IN ('daily', 'weekly') THEN
            floor(date_part('epoch', t - w_from)
                  / date_part('epoch', cycle_period(update_cycle)))::bigint
        ELSE (((date_part('year', t) - date_part('year', w_from)) * 12
               + date_part('month', t) - date_part('month', w_from))::bigint
              - CASE WHEN w_from + make_interval(months => ((date_part('year', t)
                                                             - date_part('year', w_from)) * 12
                                                            + date_part('month', t)
                                                            - date_part('month', w_from))::int)
                          > t THEN 1 ELSE 0 END)
             / CASE update_cycle WHEN 'monthly' THEN 1 WHEN 'quarterly' THEN 3
                                 WHEN 'half_yearly' THEN 6 ELSE 12 END
    END
$$;

CREATE OR REPLACE FUNCTION index_components(p_from timestamptz, p_to timestamptz, p_dept text,
                                            p_weights bigint)
RETURNS TABLE (department text, weights bigint, open_entries bigint, catalogued bigint,
               late_plans bigint, due_plans bigint, app_entries bigint, uses bigint,
               first_approved bigint, decided bigint, feedback bigint, resolved bigint,
               volume double precision, quality double precision, apps double precision,
               access double precision, efficiency double precision,
               effect double precision, score double precision)
LANGUAGE sql STABLE AS $$
    WITH w AS (SELECT * FROM weights WHERE version = p_weights),
    flags AS (SELECT EXISTS (SELECT 1 FROM releases) AS released_any,
                     EXISTS (SELECT 1 FROM access) AS accessed_any),
    -- Every entry of the departments asked for, with what each component reads of it.
    ent AS MATERIALIZED (
        SELECT e.resource, e.department, r.delivery_form, r.update_cycle AS cycle,
               cycle_period(r.update_cycle) AS period, e.catalogued_at, e.registered_at,
               e.refused_at,
               greatest(p_from, coalesce(e.registered_at, e.catalogued_at)) AS w_from,
               least(p_to, now()) AS w_to,
               metadata_completeness(r.keywords, r.released_on, r.updated_on, r.open_type,
                                     r.access_conditions) AS completeness,
               -- an entry the six dimensions are computed for (entry_scores)
               (r.delivery_form = 'dataset_file' AND e.refused_at IS NULL
                AND coalesce(e.registered_at, e.catalogued_at) < p_to) AS assessed
        FROM entries e JOIN registrar.resources r ON r.resource = e.resource
        WHERE p_dept IS NULL OR e.department = p_dept),
    -- Versions received in the period, per resource.
    ver AS (
        SELECT v.resource, count(*) AS n, sum(v.rows_staged::float8) AS staged,
               sum(v.rows_received::float8) AS received,
               sum(least(coalesce(w2.quarantined, 0), v.rows_staged)::float8) AS quarantined,
               count(*) FILTER (WHERE w2.first_decision = 'approved') AS first_approved,
               count(w2.first_decision) AS decided,
               sum(CASE WHEN rl.sha256 <> '' AND rl.sha256 <> v.sha256 THEN 0 ELSE 1 END
                   + CASE WHEN w2.approved_by LIKE 'operations:%' THEN 1 ELSE 0 END
                   + CASE WHEN v.pushed_by = 'provider:' || ent.department THEN 1 ELSE 0 END)
                   / (3.0::float8 * count(*)) AS authenticity
        FROM versions v JOIN ent ON ent.resource = v.resource
        LEFT JOIN reviews w2 ON w2.upload = v.upload
        LEFT JOIN releases rl ON rl.resource = v.resource AND rl.version = v.version
        WHERE v.received_at >= p_from AND v.received_at < p_to
        GROUP BY v.resource),
    -- Continuity: the declared periods with an approval in them, or any approval at all
    -- for an entry without an update cycle.
    cov AS (
        SELECT s.resource, count(s.slot) AS hit, true AS ever
        FROM (SELECT DISTINCT ent.resource,
                     CASE WHEN a.approved_at >= ent.w_from
                          THEN slot_index(ent.w_from, a.approved_at, ent.cycle) END AS slot
              FROM ent JOIN reviews a ON a.resource = ent.resource
                                     AND a.approved_at < ent.w_to
              WHERE ent.assessed) s
        GROUP BY s.resource),
    fails AS (
        SELECT f.resource, count(*) AS n FROM push_failures f
        WHERE f.failed_at >= p_from AND f.failed_at < p_to GROUP BY f.resource),
    opened AS (
        SELECT DISTINCT rl.resource FROM releases rl
        WHERE (SELECT released_any FROM flags) AND release_open(rl, p_to)
        UNION
        SELECT DISTINCT w3.resource FROM reviews w3
        WHERE NOT (SELECT released_any FROM flags) AND w3.approved_at < p_to),
    -- Each entry's dimensions (entry_scores) and its part in the other components.
    es AS (
        SELECT ent.department, ent.assessed, ent.delivery_form, ent.catalogued_at,
               ent.registered_at, ent.refused_at, o.resource IS NOT NULL AS open,
               ver.first_approved AS v_first_approved, ver.decided AS v_decided,
               CASE WHEN ent.w_from >= ent.w_to THEN NULL
                    WHEN ent.period IS NULL THEN coalesce(cov.ever, false)::int::float8
                    ELSE coalesce(cov.hit, 0)::float8
                         / (slot_index(ent.w_from, ent.w_to - interval '1 microsecond',
                                       ent.cycle) + 1)
               END AS continuity,
               CASE WHEN ver.n IS NULL THEN NULL WHEN ver.received = 0 THEN 1.0
                    ELSE ver.staged::float8 / ver.received END AS consistency,
               CASE WHEN coalesce(ver.decided, 0) + coalesce(fails.n, 0) = 0 THEN NULL
                    ELSE coalesce(ver.first_approved, 0)::float8
                         / (coalesce(ver.decided, 0) + coalesce(fails.n, 0)) END AS normativity,
               ver.authenticity,
               ent.completeness,
               CASE WHEN ver.n IS NULL THEN NULL WHEN ver.staged = 0 THEN 1.0
                    ELSE 1.0 - ver.quarantined::float8 / ver.staged END AS validity
        FROM ent LEFT JOIN ver ON ver.resource = ent.resource
        LEFT JOIN cov ON cov.resource = ent.resource
        LEFT JOIN fails ON fails.resource = ent.resource
        LEFT JOIN opened o ON o.resource = ent.resource),
    per AS (
        SELECT es.department,
               count(*) FILTER (WHERE es.delivery_form = 'dataset_file' AND es.catalogued_at < p_to
                                  AND es.refused_at IS NULL) AS catalogued,
               count(*) FILTER (WHERE es.delivery_form = 'dataset_file' AND es.catalogued_at < p_to
                                  AND es.refused_at IS NULL AND es.open) AS open_entries,
               count(*) FILTER (WHERE es.delivery_form = 'app' AND es.registered_at < p_to)
                   AS app_entries,
               coalesce(sum(es.v_first_approved), 0)::bigint AS first_approved,
               coalesce(sum(es.v_decided), 0)::bigint AS decided,
               avg(es.continuity) FILTER (WHERE es.assessed) AS continuity,
               avg(es.consistency) FILTER (WHERE es.assessed) AS consistency,
               avg(es.normativity) FILTER (WHERE es.assessed) AS normativity,
               avg(es.authenticity) FILTER (WHERE es.assessed) AS authenticity,
               avg(es.completeness) FILTER (WHERE es.assessed) AS completeness,
               avg(es.validity) FILTER (WHERE es.assessed) AS validity
        FROM es GROUP BY es.department),
    d AS (SELECT code AS department FROM registrar.departments
          WHERE active AND (p_dept IS NULL OR code = p_dept)),
    pl AS (SELECT p.department, count(*) AS due,
                  count(*) FILTER (WHERE NOT EXISTS (
                      SELECT 1 FROM entries e WHERE e.plan = p.id
                      AND e.catalogued_at::date <= p.due_on)) AS late
           FROM plans p
           WHERE p.cancelled_at IS NULL AND p.due_on < least(p_to, now())::date
             AND (p_dept IS NULL OR p.department = p_dept)
           GROUP BY p.department),
    use AS (SELECT e.department, sum(a.count) AS n FROM access a
            JOIN entries e ON e.resource = a.resource
            WHERE a.day >= p_from::date AND a.day < p_to::date
            GROUP BY e.department),
    fb AS (SELECT e.department, count(*) AS n, count(*) FILTER (WHERE f.resolved) AS resolved
           FROM feedback f JOIN entries e ON e.resource = f.resource
           WHERE f.opened_at >= p_from AND f.opened_at < p_to
           GROUP BY e.department),
    c AS (SELECT d.department, coalesce(per.open_entries, 0) AS open_entries,
                 coalesce(per.catalogued, 0) AS catalogued, coalesce(pl.late, 0) AS late_plans,
                 coalesce(pl.due, 0) AS due_plans, coalesce(per.app_entries, 0) AS app_entries,
                 coalesce(use.n, 0)::bigint AS uses,
                 coalesce(per.first_approved, 0) AS first_approved,
                 coalesce(per.decided, 0) AS decided, coalesce(fb.n, 0) AS feedback,
                 coalesce(fb.resolved, 0) AS resolved,
                 (coalesce(per.continuity, 0) + coalesce(per.consistency, 0)
                  + coalesce(per.normativity, 0) + coalesce(per.authenticity, 0)
                  + coalesce(per.completeness, 0) + coalesce(per.validity, 0))
                 / nullif((per.continuity IS NOT NULL)::int + (per.consistency IS NOT NULL)::int
                          + (per.normativity IS NOT NULL)::int
                          + (per.authenticity IS NOT NULL)::int
                          + (per.completeness IS NOT NULL)::int
                          + (per.validity IS NOT NULL)::int, 0) AS quality
          FROM d LEFT JOIN per ON per.department = d.department
          LEFT JOIN pl ON pl.department = d.department
          LEFT JOIN use ON use.department = d.department
          LEFT JOIN fb ON fb.department = d.department),
    k AS (
        SELECT c.*,
            CASE WHEN c.catalogued + c.late_plans = 0 THEN NULL
                 ELSE c.open_entries::float8 / (c.catalogued + c.late_plans) END AS volume,
            least(1.0, c.app_entries / (SELECT apps_target FROM w)) AS apps,
            CASE WHEN NOT (SELECT accessed_any FROM flags) THEN NULL
                 ELSE least(1.0, c.uses / ((SELECT access_target FROM w)
                                           * greatest(c.open_entries, 1))) END AS access,
            CASE WHEN c.decided + c.due_plans = 0 THEN NULL
                 ELSE (coalesce(c.first_approved::float8 / nullif(c.decided, 0), 0)
                       + coalesce(1.0 - c.late_plans::float8 / nullif(c.due_plans, 0), 0))
                      / ((c.decided > 0)::int + (c.due_plans > 0)::int) END AS efficiency,
            CASE WHEN c.feedback = 0 THEN NULL
                 ELSE c.resolved::float8 / c.feedback END AS effect
        FROM c
    )
    SELECT k.department, p_weights, k.open_entries, k.catalogued, k.late_plans, k.due_plans,
           k.app_entries, k.uses, k.first_approved, k.decided, k.feedback, k.resolved,
           k.volume, k.quality, k.apps, k.access, k.efficiency, k.effect,
           100.0 * (coalesce(w.volume * k.volume, 0) + coalesce(w.quality * k.quality, 0)
                    + coalesce(w.apps * k.apps, 0) + coalesce(w.access * k.access, 0)
                    + coalesce(w.efficiency * k.efficiency, 0)
                    + coalesce(w.effect * k.effect, 0))
           / nullif(CASE WHEN k.volume IS NULL THEN 0 ELSE w.volume END
                    + CASE WHEN k.quality IS NULL THEN 0 ELSE w.quality END
                    + CASE WHEN k.apps IS NULL THEN 0 ELSE w.apps END
                    + CASE WHEN k.access IS NULL THEN 0 ELSE w.access END
                    + CASE WHEN k.efficiency IS NULL THEN 0 ELSE w.efficiency END
                    + CASE WHEN k.effect IS NULL THEN 0 ELSE w.effect END, 0)
    FROM k, w
$$;

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
