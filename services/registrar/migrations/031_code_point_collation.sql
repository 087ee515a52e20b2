-- The staging tables' text columns sort by code point (issues 8 and 9). The cluster's
-- locale is libc C.UTF-8, whose collation is code-point order; but PostgreSQL 15 takes
-- only a collation named C or POSIX for byte order, so every sort and index build on a
-- staging table went through strcoll, without abbreviated keys. For valid UTF-8 (all a
-- UTF8 database holds) byte order is code-point order, so LC_COLLATE C orders exactly as
-- C.UTF-8 does, at memcmp's cost. LC_CTYPE stays the database's: regular expression
-- classes ([[:alpha:]] and the like), lower/upper and ILIKE read it and go on treating
-- Chinese and other non-ASCII letters as before (under the collation "C" they would be
-- ASCII only).
-- A database whose collation is not code-point order (another locale given to initdb)
-- keeps it: the order users see does not change either way.
DO $$
DECLARE
    d pg_database%ROWTYPE;
BEGIN
    SELECT * INTO d FROM pg_database WHERE datname = current_database();
    EXECUTE format('CREATE COLLATION %I.code_point (provider = libc, lc_collate = %L, '
                   'lc_ctype = %L)', current_schema(),
                   CASE WHEN d.datcollate IN ('C', 'POSIX')
                             OR upper(d.datcollate) IN ('C.UTF-8', 'C.UTF8')
                        THEN 'C' ELSE d.datcollate END, d.datctype);
END
$$;
