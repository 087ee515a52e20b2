-- quality.report's error_reports count user error reports (纠错). The query service's
-- feedback.received names that kind 'report' (services/query/migrations/003_feedback.sql);
-- 003 counted only 'error_report', the name the facts used before the query service's
-- events reached metrics (005), so the count stayed 0. Both names count.
CREATE OR REPLACE FUNCTION feedback_json(p_from timestamptz, p_to timestamptz, p_dept text)
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
             WHERE e.department = d.code AND f.kind IN ('report', 'error_report') AND f.opened_at >= p_from
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
