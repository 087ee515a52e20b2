-- Statistics, the six-dimension assessment and the open data index (R6c, R10a-R10c), as
-- functions over the facts of 002_facts.sql and the registrar tables granted to
-- odp_metrics (plans, resources, uploads, departments). docs/assessment.md defines every
-- number computed here, with worked examples; the functions follow it line by line.
-- Periods are [p_from, p_to) in UTC. consumer_cursor is made by the consumer library after
-- these migrations, so bodies are checked when called, not here.
SET LOCAL check_function_bodies = off;

CREATE FUNCTION cycle_period(update_cycle text) RETURNS interval LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE update_cycle
        WHEN 'daily' THEN interval '1 day'
        WHEN 'weekly' THEN interval '7 days'
        WHEN 'monthly' THEN interval '1 month'
        WHEN 'quarterly' THEN interval '3 months'
        WHEN 'half_yearly' THEN interval '6 months'
        WHEN 'yearly' THEN interval '12 months'
    END
$$;

-- Which declared period of an update cycle t falls in, counting from 0 at w_from: the k-th
-- period starts at w_from + k cycles (docs/assessment.md, continuity). Days and weeks by
-- length, months by the calendar.
CREATE FUNCTION slot_index(w_from timestamptz, t timestamptz, update_cycle text)
    RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN update_cycle IN ('daily', 'weekly') THEN
            floor(extract(epoch FROM t - w_from)
                  / extract(epoch FROM cycle_period(update_cycle)))::bigint
        ELSE (x.m - CASE WHEN w_from + make_interval(months => x.m::int) > t THEN 1 ELSE 0 END)
             / CASE update_cycle WHEN 'monthly' THEN 1 WHEN 'quarterly' THEN 3
                                 WHEN 'half_yearly' THEN 6 ELSE 12 END
    END
    FROM (SELECT ((extract(year FROM t) - extract(year FROM w_from)) * 12
                  + extract(month FROM t) - extract(month FROM w_from))::bigint AS m) x
$$;

-- Metadata completeness: four items, each filled or not (docs/assessment.md).
CREATE FUNCTION metadata_completeness(keywords text[], released_on date, updated_on date,
                                      open_type text, access_conditions text)
    RETURNS double precision LANGUAGE sql IMMUTABLE AS $$
    SELECT ((coalesce(cardinality(keywords), 0) > 0)::int + (released_on IS NOT NULL)::int
            + (updated_on IS NOT NULL)::int
            + (open_type <> 'conditional' OR access_conditions IS NOT NULL)::int) / 4.0
$$;

-- A release is withdrawn at t when its last withdrawal is before t and not restored since.
CREATE FUNCTION release_open(rl releases, t timestamptz) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT rl.published_at < t AND (rl.withdrawn_at IS NULL OR rl.withdrawn_at >= t)
$$;

-- Per version received in the period: the six dimensions.
CREATE FUNCTION version_scores(p_from timestamptz, p_to timestamptz, p_dept text)
RETURNS TABLE (upload bigint, resource text, department text, version bigint,
               continuity double precision, consistency double precision,
               normativity double precision, authenticity double precision,
               completeness double precision, validity double precision)
LANGUAGE sql STABLE AS $$
    SELECT v.upload, v.resource, e.department, v.version,
           CASE WHEN cycle_period(r.update_cycle) IS NULL OR prev.at IS NULL THEN 1.0
                WHEN v.received_at <= prev.at + cycle_period(r.update_cycle) THEN 1.0
                ELSE 0.0 END,
           CASE WHEN v.rows_received = 0 THEN 1.0
                ELSE v.rows_staged::float8 / v.rows_received END,
           CASE v.first_decision WHEN 'approved' THEN 1.0 WHEN 'rejected' THEN 0.0 END,
           (CASE WHEN EXISTS (SELECT 1 FROM releases rl WHERE rl.resource = v.resource
                              AND rl.version = v.version AND rl.sha256 <> ''
                              AND rl.sha256 <> v.sha256) THEN 0 ELSE 1 END
            + CASE WHEN v.approved_by LIKE 'operations:%' THEN 1 ELSE 0 END
            + CASE WHEN v.pushed_by = 'provider:' || e.department THEN 1 ELSE 0 END) / 3.0,
           metadata_completeness(r.keywords, r.released_on, r.updated_on, r.open_type,
                                 r.access_conditions),
           CASE WHEN v.rows_staged = 0 THEN 1.0
                ELSE 1.0 - least(v.quarantined, v.rows_staged)::float8 / v.rows_staged END
    FROM versions_reviewed v
    JOIN entries e ON e.resource = v.resource
    LEFT JOIN registrar.resources r ON r.resource = v.resource
    LEFT JOIN LATERAL (SELECT max(p.received_at) AS at FROM versions_reviewed p
                       WHERE p.resource = v.resource AND p.table_name = v.table_name
                         AND p.version < v.version) prev ON true
    WHERE v.received_at >= p_from AND v.received_at < p_to
      AND (p_dept IS NULL OR e.department = p_dept)
$$;

-- Per dataset entry registered (catalogued) before the period's end: the six dimensions.
CREATE FUNCTION entry_scores(p_from timestamptz, p_to timestamptz, p_dept text)
RETURNS TABLE (resource text, department text, versions bigint,
               continuity double precision, consistency double precision,
               normativity double precision, authenticity double precision,
               completeness double precision, validity double precision)
LANGUAGE sql STABLE AS $$
    WITH es AS MATERIALIZED (
        SELECT e.resource, e.department, r.update_cycle AS cycle,
               cycle_period(r.update_cycle) AS period,
               greatest(p_from, coalesce(e.registered_at, e.catalogued_at)) AS w_from,
               least(p_to, now()) AS w_to,
               metadata_completeness(r.keywords, r.released_on, r.updated_on, r.open_type,
                                     r.access_conditions) AS completeness
        FROM entries e JOIN registrar.resources r ON r.resource = e.resource
        WHERE r.delivery_form = 'dataset_file' AND e.refused_at IS NULL
          AND coalesce(e.registered_at, e.catalogued_at) < p_to
          AND (p_dept IS NULL OR e.department = p_dept)
    ), covered AS (
        SELECT es.resource, count(DISTINCT slot_index(es.w_from, a.approved_at, es.cycle)) AS hit
        FROM es JOIN reviews a ON a.resource = es.resource AND a.approved_at >= es.w_from
                               AND a.approved_at < es.w_to
        WHERE es.period IS NOT NULL
        GROUP BY es.resource
    ), ever AS (
        SELECT DISTINCT a.resource FROM reviews a JOIN es ON es.resource = a.resource
        WHERE es.period IS NULL AND a.approved_at < es.w_to
    ), vs AS (
        SELECT v.resource, count(*) AS n, sum(v.rows_staged) AS staged,
               sum(v.rows_received) AS received,
               sum(least(v.quarantined, v.rows_staged)) AS quarantined,
               count(*) FILTER (WHERE v.first_decision = 'approved') AS first_approved,
               count(v.first_decision) AS decided,
               avg((CASE WHEN rl.sha256 <> '' AND rl.sha256 <> v.sha256 THEN 0 ELSE 1 END
                    + CASE WHEN v.approved_by LIKE 'operations:%' THEN 1 ELSE 0 END
                    + CASE WHEN v.pushed_by = 'provider:' || es.department THEN 1 ELSE 0 END)
                   / 3.0) AS authenticity
        FROM versions_reviewed v JOIN es ON es.resource = v.resource
        LEFT JOIN releases rl ON rl.resource = v.resource AND rl.version = v.version
        WHERE v.received_at >= p_from AND v.received_at < p_to
        GROUP BY v.resource
    ), fails AS (
        SELECT f.resource, count(*) AS n FROM push_failures f
        WHERE f.failed_at >= p_from AND f.failed_at < p_to GROUP BY f.resource
    )
    SELECT es.resource, es.department, coalesce(vs.n, 0),
           CASE WHEN es.w_from >= es.w_to THEN NULL
                WHEN es.period IS NULL THEN (ever.resource IS NOT NULL)::int::float8
                ELSE coalesce(covered.hit, 0)::float8
                     / (slot_index(es.w_from, es.w_to - interval '1 microsecond', es.cycle) + 1)
           END,
           CASE WHEN vs.n IS NULL THEN NULL WHEN vs.received = 0 THEN 1.0
                ELSE vs.staged::float8 / vs.received END,
           CASE WHEN coalesce(vs.decided, 0) + coalesce(fails.n, 0) = 0 THEN NULL
                ELSE coalesce(vs.first_approved, 0)::float8
                     / (coalesce(vs.decided, 0) + coalesce(fails.n, 0)) END,
           vs.authenticity,
           es.completeness,
           CASE WHEN vs.n IS NULL THEN NULL WHEN vs.staged = 0 THEN 1.0
                ELSE 1.0 - vs.quarantined::float8 / vs.staged END
    FROM es LEFT JOIN vs ON vs.resource = es.resource
    LEFT JOIN fails ON fails.resource = es.resource
    LEFT JOIN covered ON covered.resource = es.resource
    LEFT JOIN ever ON ever.resource = es.resource
$$;

-- Per department: each dimension the mean of its entries' (those that have one).
CREATE FUNCTION department_scores(p_from timestamptz, p_to timestamptz, p_dept text)
RETURNS TABLE (department text, entries bigint,
               continuity double precision, consistency double precision,
               normativity double precision, authenticity double precision,
               completeness double precision, validity double precision)
LANGUAGE sql STABLE AS $$
    SELECT department, count(*), avg(continuity), avg(consistency), avg(normativity),
           avg(authenticity), avg(completeness), avg(validity)
    FROM entry_scores(p_from, p_to, p_dept) GROUP BY department
$$;

-- The open data index's components per department (docs/assessment.md, "Open data
-- index"), each in [0, 1] or NULL when its inputs do not exist yet. Set-based: one pass
-- per kind of record, grouped by department (the index of 1,000 departments is one query).
CREATE FUNCTION index_components(p_from timestamptz, p_to timestamptz, p_dept text,
                                 p_weights bigint)
RETURNS TABLE (department text, weights bigint, open_entries bigint, catalogued bigint,
               late_plans bigint, due_plans bigint, app_entries bigint, uses bigint,
               first_approved bigint, decided bigint, feedback bigint, resolved bigint,
               volume double precision, quality double precision, apps double precision,
               access double precision, efficiency double precision,
               effect double precision, score double precision)
LANGUAGE sql STABLE AS $$
    WITH w AS (SELECT * FROM weights WHERE version = p_weights),
    released_any AS (SELECT EXISTS (SELECT 1 FROM releases) AS yes),
    accessed_any AS (SELECT EXISTS (SELECT 1 FROM access) AS yes),
    d AS (SELECT code AS department FROM registrar.departments
          WHERE active AND (p_dept IS NULL OR code = p_dept)),
    ent AS (SELECT e.resource, e.department, r.delivery_form, e.catalogued_at, e.registered_at,
                   e.refused_at
            FROM entries e JOIN registrar.resources r ON r.resource = e.resource
            WHERE p_dept IS NULL OR e.department = p_dept),
    opened AS (SELECT DISTINCT rl.resource FROM releases rl
               WHERE (SELECT yes FROM released_any) AND release_open(rl, p_to)
               UNION
               SELECT DISTINCT w2.resource FROM reviews w2
               WHERE NOT (SELECT yes FROM released_any) AND w2.approved_at < p_to),
    cat AS (SELECT ent.department, count(*) AS catalogued,
                   count(o.resource) AS open_entries
            FROM ent LEFT JOIN opened o ON o.resource = ent.resource
            WHERE ent.delivery_form = 'dataset_file' AND ent.catalogued_at < p_to
              AND ent.refused_at IS NULL
            GROUP BY ent.department),
    app AS (SELECT ent.department, count(*) AS n FROM ent
            WHERE ent.delivery_form = 'app' AND ent.registered_at < p_to
            GROUP BY ent.department),
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
    dec AS (SELECT e.department,
                   count(*) FILTER (WHERE v.first_decision = 'approved') AS first_approved,
                   count(v.first_decision) AS decided
            FROM versions_reviewed v JOIN entries e ON e.resource = v.resource
            WHERE v.received_at >= p_from AND v.received_at < p_to
              AND (p_dept IS NULL OR e.department = p_dept)
            GROUP BY e.department),
    fb AS (SELECT e.department, count(*) AS n, count(*) FILTER (WHERE f.resolved) AS resolved
           FROM feedback f JOIN entries e ON e.resource = f.resource
           WHERE f.opened_at >= p_from AND f.opened_at < p_to
           GROUP BY e.department),
    q AS (SELECT s.department,
                 (coalesce(s.continuity, 0) + coalesce(s.consistency, 0)
                  + coalesce(s.normativity, 0) + coalesce(s.authenticity, 0)
                  + coalesce(s.completeness, 0) + coalesce(s.validity, 0))
                 / nullif((s.continuity IS NOT NULL)::int + (s.consistency IS NOT NULL)::int
                          + (s.normativity IS NOT NULL)::int + (s.authenticity IS NOT NULL)::int
                          + (s.completeness IS NOT NULL)::int + (s.validity IS NOT NULL)::int,
                          0) AS quality
          FROM department_scores(p_from, p_to, p_dept) s),
    c AS (SELECT d.department, coalesce(cat.open_entries, 0) AS open_entries,
                 coalesce(cat.catalogued, 0) AS catalogued, coalesce(pl.late, 0) AS late_plans,
                 coalesce(pl.due, 0) AS due_plans, coalesce(app.n, 0) AS app_entries,
                 coalesce(use.n, 0)::bigint AS uses,
                 coalesce(dec.first_approved, 0) AS first_approved,
                 coalesce(dec.decided, 0) AS decided, coalesce(fb.n, 0) AS feedback,
                 coalesce(fb.resolved, 0) AS resolved, q.quality
          FROM d LEFT JOIN cat ON cat.department = d.department
          LEFT JOIN pl ON pl.department = d.department
          LEFT JOIN app ON app.department = d.department
          LEFT JOIN use ON use.department = d.department
          LEFT JOIN dec ON dec.department = d.department
          LEFT JOIN fb ON fb.department = d.department
          LEFT JOIN q ON q.department = d.department),
    k AS (
        SELECT c.*,
            CASE WHEN c.catalogued + c.late_plans = 0 THEN NULL
                 ELSE c.open_entries::float8 / (c.catalogued + c.late_plans) END AS volume,
            least(1.0, c.app_entries / (SELECT apps_target FROM w)) AS apps,
            CASE WHEN NOT (SELECT yes FROM accessed_any) THEN NULL
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

-- Conditions monitor.status shows and alerts are raised for (R10a). stuck: how long a
-- push or review may wait; lag: how many events behind a source may be.
CREATE FUNCTION conditions(stuck interval, max_lag bigint)
RETURNS TABLE (alert text, kind text, subject text, department text, detail text)
LANGUAGE sql STABLE AS $$
    SELECT 'service_down:' || s.service, 'service_down', s.service, NULL::text,
           s.service || ' has not answered health since ' || coalesce(s.ok_at::text, 'start')
    FROM service_status s WHERE s.status <> 'ok'
    UNION ALL
    SELECT 'event_lag:' || s.service, 'event_lag', s.service, NULL,
           s.service || ' is ' || (s.seq - c.last) || ' events ahead of what metrics handled'
    FROM service_status s JOIN consumer_cursor c ON c.source = s.service
    WHERE s.seq - c.last > max_lag
    UNION ALL
    SELECT 'stuck_push:' || u.id, 'stuck_push', u.id::text, r.department,
           'push ' || u.id || ' of ' || u.resource || ' receiving since ' || u.started_at
    FROM registrar.uploads u JOIN registrar.resources r ON r.resource = u.resource
    WHERE u.status = 'receiving' AND u.started_at < now() - stuck
    UNION ALL
    SELECT 'stuck_review:' || v.upload, 'stuck_review', v.upload::text, e.department,
           'version ' || v.version || ' of ' || v.resource || ' waits for its review since '
           || v.received_at
    FROM versions_reviewed v JOIN entries e ON e.resource = v.resource
    WHERE v.first_decision IS NULL AND v.withdrawn_at IS NULL AND v.received_at < now() - stuck
    UNION ALL
    SELECT 'overdue_plan:' || p.id, 'overdue_plan', p.id::text, p.department,
           'plan ' || p.id || ' (' || p.title || ') was due on ' || p.due_on
    FROM registrar.plans p
    WHERE p.cancelled_at IS NULL AND p.due_on < current_date
      AND NOT EXISTS (SELECT 1 FROM registrar.resources r WHERE r.plan = p.id)
    UNION ALL
    SELECT 'late_entry:' || r.resource, 'late_entry', r.resource, r.department,
           r.resource || ': next version was due on ' || registrar.next_due_on(r)
    FROM registrar.resources r
    WHERE r.status = 'registered' AND registrar.next_due_on(r) < current_date
    UNION ALL
    SELECT 'withdrawn_release:' || rl.resource || '/' || rl.version, 'withdrawn_release',
           rl.resource || '/' || rl.version, e.department,
           'release ' || rl.version || ' of ' || rl.resource || ' withdrawn at ' || rl.withdrawn_at
    FROM releases rl LEFT JOIN entries e ON e.resource = rl.resource
    WHERE rl.withdrawn_at IS NOT NULL
$$;

-- stats.get (R6c, R10a): counts by department, domain and content kind; rows and bytes;
-- access; operating efficiency. NULL where the inputs do not exist yet.
CREATE FUNCTION stats_json(p_from timestamptz, p_to timestamptz, p_dept text)
RETURNS json LANGUAGE sql STABLE
    SET jit = off SET work_mem = '64MB' AS $$
    WITH e AS (
        SELECT e.*, r.domain, r.content_kind FROM entries e
        LEFT JOIN registrar.resources r USING (resource)
        WHERE p_dept IS NULL OR e.department = p_dept
    ), facts AS (
        SELECT 'planned' AS what, p.department, NULL::text AS domain, NULL::text AS content_kind
        FROM plans p WHERE p.planned_at >= p_from AND p.planned_at < p_to
          AND (p_dept IS NULL OR p.department = p_dept)
        UNION ALL
        SELECT 'catalogued', department, domain, content_kind FROM e
        WHERE catalogued_at >= p_from AND catalogued_at < p_to
        UNION ALL
        SELECT 'registered', department, domain, content_kind FROM e
        WHERE registered_at >= p_from AND registered_at < p_to
        UNION ALL
        SELECT 'released', e.department, e.domain, e.content_kind FROM releases rl
        JOIN e USING (resource) WHERE rl.published_at >= p_from AND rl.published_at < p_to
        UNION ALL
        SELECT 'withdrawn', e.department, e.domain, e.content_kind FROM releases rl
        JOIN e USING (resource) WHERE rl.withdrawn_at >= p_from AND rl.withdrawn_at < p_to
    ), v AS (
        SELECT v.* FROM versions_reviewed v JOIN e USING (resource)
        WHERE v.received_at >= p_from AND v.received_at < p_to
    )
    SELECT json_build_object(
        'from', p_from, 'to', p_to, 'department', p_dept,
        'totals', (SELECT json_build_object(
            'planned', count(*) FILTER (WHERE what = 'planned'),
            'catalogued', count(*) FILTER (WHERE what = 'catalogued'),
            'registered', count(*) FILTER (WHERE what = 'registered'),
            'released', count(*) FILTER (WHERE what = 'released'),
            'withdrawn', count(*) FILTER (WHERE what = 'withdrawn')) FROM facts),
        'by_department', (SELECT coalesce(json_agg(x ORDER BY x.department), '[]') FROM (
            SELECT department,
                   count(*) FILTER (WHERE what = 'planned') AS planned,
                   count(*) FILTER (WHERE what = 'catalogued') AS catalogued,
                   count(*) FILTER (WHERE what = 'registered') AS registered,
                   count(*) FILTER (WHERE what = 'released') AS released,
                   count(*) FILTER (WHERE what = 'withdrawn') AS withdrawn
            FROM facts GROUP BY department) x),
        'by_domain', (SELECT coalesce(json_agg(x ORDER BY x.domain), '[]') FROM (
            SELECT domain, count(*) FILTER (WHERE what = 'catalogued') AS catalogued,
                   count(*) FILTER (WHERE what = 'registered') AS registered,
                   count(*) FILTER (WHERE what = 'released') AS released,
                   count(*) FILTER (WHERE what = 'withdrawn') AS withdrawn
            FROM facts WHERE what <> 'planned' GROUP BY domain) x),
        'by_content_kind', (SELECT coalesce(json_agg(x ORDER BY x.content_kind), '[]') FROM (
            SELECT content_kind, count(*) FILTER (WHERE what = 'catalogued') AS catalogued,
                   count(*) FILTER (WHERE what = 'registered') AS registered,
                   count(*) FILTER (WHERE what = 'released') AS released,
                   count(*) FILTER (WHERE what = 'withdrawn') AS withdrawn
            FROM facts WHERE what <> 'planned' GROUP BY content_kind) x),
        'versions', (SELECT count(*) FROM v),
        'rows', (SELECT coalesce(sum(rows_staged), 0) FROM v),
        'bytes', (SELECT coalesce(sum(size), 0) FROM v),
        'released_rows', (SELECT coalesce(sum(rl.rows), 0) FROM releases rl JOIN e USING (resource)
                          WHERE rl.published_at >= p_from AND rl.published_at < p_to),
        'access', (SELECT json_build_object(
            'views', coalesce(sum(a.count) FILTER (WHERE a.kind = 'view'), 0),
            'queries', coalesce(sum(a.count) FILTER (WHERE a.kind = 'query'), 0),
            'downloads', coalesce(sum(a.count) FILTER (WHERE a.kind = 'download'), 0),
            'distinct_users', (SELECT count(DISTINCT u.actor) FROM access_users u
                               JOIN e USING (resource)
                               WHERE u.day >= p_from::date AND u.day < p_to::date))
            FROM access a JOIN e USING (resource)
            WHERE a.day >= p_from::date AND a.day < p_to::date),
        'efficiency', json_build_object(
            'push_to_release_s', (SELECT avg(extract(epoch FROM rl.published_at - v.received_at))
                                  FROM releases rl JOIN v ON v.resource = rl.resource
                                  AND v.version = rl.version),
            'push_to_approval_s', (SELECT avg(extract(epoch FROM v.approved_at - v.received_at))
                                   FROM v WHERE v.approved_at IS NOT NULL),
            'first_pass_approval_rate', (SELECT count(*) FILTER (WHERE first_decision = 'approved')
                                                ::float8 / nullif(count(first_decision), 0)
                                         FROM v),
            'quarantine_handling_s', (SELECT avg(extract(epoch FROM h.handled_at - q.isolated_at))
                                      FROM quarantine_handled h
                                      JOIN quarantine_isolated q USING (upload)
                                      JOIN versions_reviewed vv USING (upload) JOIN e USING (resource)
                                      WHERE h.handled_at >= p_from AND h.handled_at < p_to),
            'feedback_response_s', (SELECT avg(extract(epoch FROM f.answered_at - f.opened_at))
                                    FROM feedback f LEFT JOIN e USING (resource)
                                    WHERE f.opened_at >= p_from AND f.opened_at < p_to
                                      AND (p_dept IS NULL OR e.department IS NOT NULL))))
$$;

-- assess.get (R10b): per department, entry and version.
CREATE FUNCTION assess_json(p_from timestamptz, p_to timestamptz, p_dept text, p_resource text)
RETURNS json LANGUAGE sql STABLE
    SET jit = off SET work_mem = '64MB' AS $$
    SELECT json_build_object(
        'from', p_from, 'to', p_to,
        'departments', (SELECT coalesce(json_agg(d ORDER BY d.department), '[]')
                        FROM department_scores(p_from, p_to, p_dept) d
                        WHERE p_resource IS NULL),
        'entries', (SELECT coalesce(json_agg(s ORDER BY s.resource), '[]')
                    FROM entry_scores(p_from, p_to, p_dept) s
                    WHERE p_resource IS NULL OR s.resource = p_resource),
        'versions', (SELECT coalesce(json_agg(s ORDER BY s.resource, s.version), '[]')
                     FROM version_scores(p_from, p_to, p_dept) s
                     WHERE p_resource IS NULL OR s.resource = p_resource))
$$;

-- index.get (R10c): computed with the weights in force and kept in index_history.
CREATE FUNCTION index_json(p_period text, p_from timestamptz, p_to timestamptz, p_dept text)
RETURNS json LANGUAGE sql VOLATILE
    SET jit = off SET work_mem = '64MB' AS $$
    WITH w AS (SELECT max(version) AS v FROM weights),
    k AS (SELECT * FROM index_components(p_from, p_to, p_dept, (SELECT v FROM w))),
    kept AS (
        INSERT INTO index_history (period, department, weights, score, components)
        SELECT p_period, k.department, k.weights, coalesce(k.score, 0),
               json_build_object('volume', k.volume, 'quality', k.quality, 'apps', k.apps,
                                 'access', k.access, 'efficiency', k.efficiency,
                                 'effect', k.effect)::text
        FROM k RETURNING 1)
    SELECT json_build_object(
        'period', p_period, 'from', p_from, 'to', p_to, 'weights', (SELECT v FROM w),
        'kept', (SELECT count(*) FROM kept),
        'departments', (SELECT coalesce(json_agg(json_build_object(
            'department', k.department, 'score', k.score, 'volume', k.volume,
            'quality', k.quality, 'apps', k.apps, 'access', k.access,
            'efficiency', k.efficiency, 'effect', k.effect)
            ORDER BY k.score DESC NULLS LAST, k.department), '[]') FROM k))
$$;

-- index.explain: each component of one department's index, its inputs and the records
-- they came from.
CREATE FUNCTION explain_json(p_from timestamptz, p_to timestamptz, p_dept text)
RETURNS json LANGUAGE sql STABLE
    SET jit = off SET work_mem = '64MB' AS $$
    WITH w AS (SELECT * FROM weights ORDER BY version DESC LIMIT 1),
    k AS (SELECT * FROM index_components(p_from, p_to, p_dept, (SELECT version FROM w)))
    SELECT json_build_object(
        'department', p_dept, 'from', p_from, 'to', p_to,
        'weights', (SELECT row_to_json(w) FROM w),
        'score', k.score,
        'volume', json_build_object('value', k.volume, 'open_entries', k.open_entries,
            'catalogued', k.catalogued, 'late_plans', k.late_plans,
            'formula', 'open_entries / (catalogued + late_plans)',
            'open', (SELECT coalesce(json_agg(DISTINCT rl.resource), '[]') FROM releases rl
                     JOIN entries e USING (resource)
                     WHERE e.department = p_dept AND release_open(rl, p_to)),
            'approved', (SELECT coalesce(json_agg(DISTINCT v.resource), '[]') FROM versions_reviewed v
                         JOIN entries e USING (resource)
                         WHERE e.department = p_dept AND v.approved_at < p_to)),
        'quality', json_build_object('value', k.quality,
            'formula', 'mean of the department''s six dimensions',
            'dimensions', (SELECT row_to_json(d) FROM department_scores(p_from, p_to, p_dept) d),
            'entries', (SELECT coalesce(json_agg(s ORDER BY s.resource), '[]')
                        FROM entry_scores(p_from, p_to, p_dept) s)),
        'apps', json_build_object('value', k.apps, 'app_entries', k.app_entries,
            'target', (SELECT apps_target FROM w), 'formula', 'min(1, app_entries / target)'),
        'access', json_build_object('value', k.access, 'uses', k.uses,
            'target', (SELECT access_target FROM w),
            'formula', 'min(1, uses / (target * max(open_entries, 1))); NULL before any access event'),
        'efficiency', json_build_object('value', k.efficiency,
            'first_approved', k.first_approved, 'decided', k.decided,
            'late_plans', k.late_plans, 'due_plans', k.due_plans,
            'formula', 'mean of first_approved/decided and 1 - late_plans/due_plans (those defined)',
            'late', (SELECT coalesce(json_agg(p.id ORDER BY p.id), '[]') FROM plans p
                     WHERE p.department = p_dept AND p.cancelled_at IS NULL
                       AND p.due_on < least(p_to, now())::date
                       AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.plan = p.id
                                       AND e.catalogued_at::date <= p.due_on)),
            'rejected_first', (SELECT coalesce(json_agg(v.upload ORDER BY v.upload), '[]')
                               FROM versions_reviewed v JOIN entries e USING (resource)
                               WHERE e.department = p_dept AND v.received_at >= p_from
                                 AND v.received_at < p_to AND v.first_decision = 'rejected')),
        'effect', json_build_object('value', k.effect, 'feedback', k.feedback,
            'resolved', k.resolved, 'formula', 'resolved / feedback; NULL without feedback'))
    FROM k
$$;

-- quality.report (R9e): what a department should fix.
CREATE FUNCTION feedback_json(p_from timestamptz, p_to timestamptz, p_dept text)
RETURNS json LANGUAGE sql STABLE
    SET jit = off SET work_mem = '64MB' AS $$
    SELECT coalesce(json_agg(x ORDER BY x.department), '[]') FROM (
        SELECT d.code AS department, d.name,
            (SELECT count(*) FROM versions_reviewed v JOIN entries e USING (resource)
             WHERE e.department = d.code AND v.received_at >= p_from AND v.received_at < p_to)
                AS versions,
            (SELECT coalesce(sum(v.findings), 0) FROM versions_reviewed v JOIN entries e USING (resource)
             WHERE e.department = d.code AND v.received_at >= p_from AND v.received_at < p_to)
                AS findings,
            (SELECT coalesce(sum(v.rows_rejected), 0) FROM versions_reviewed v JOIN entries e USING (resource)
             WHERE e.department = d.code AND v.received_at >= p_from AND v.received_at < p_to)
                AS rows_rejected,
            (SELECT coalesce(sum(q.rows), 0) FROM quarantine_isolated q
             JOIN versions_reviewed v USING (upload) JOIN entries e USING (resource)
             WHERE e.department = d.code AND q.isolated_at >= p_from AND q.isolated_at < p_to)
                AS quarantined,
            (SELECT coalesce(json_object_agg(o.outcome, o.n), '{}') FROM (
                SELECT h.outcome, count(*) AS n FROM quarantine_handled h
                JOIN versions_reviewed v USING (upload) JOIN entries e USING (resource)
                WHERE e.department = d.code AND h.handled_at >= p_from AND h.handled_at < p_to
                GROUP BY h.outcome) o) AS quarantine_outcomes,
            (SELECT coalesce(json_object_agg(f.code, f.n), '{}') FROM (
                SELECT f.code, count(*) AS n FROM push_failures f JOIN entries e USING (resource)
                WHERE e.department = d.code AND f.failed_at >= p_from AND f.failed_at < p_to
                GROUP BY f.code) f) AS failed_pushes,
            (SELECT count(*) FROM feedback f JOIN entries e USING (resource)
             WHERE e.department = d.code AND f.kind = 'error_report' AND f.opened_at >= p_from
               AND f.opened_at < p_to) AS error_reports,
            (SELECT coalesce(json_agg(json_build_object('resource', v.resource, 'upload', v.upload,
                                                        'version', v.version, 'findings', v.findings,
                                                        'quarantined', v.quarantined,
                                                        'rejected', v.first_decision = 'rejected')
                                      ORDER BY v.upload), '[]')
             FROM versions_reviewed v JOIN entries e USING (resource)
             WHERE e.department = d.code AND v.received_at >= p_from AND v.received_at < p_to
               AND (v.findings > 0 OR v.quarantined > 0 OR v.first_decision = 'rejected'))
                AS to_fix
        FROM registrar.departments d WHERE p_dept IS NULL OR d.code = p_dept) x
$$;
