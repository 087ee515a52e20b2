-- What the query service reads of the registrar (docs/design.md, "Who reads what"): users
-- apply for and comment on catalogued resources before anything of them is published, so
-- the query service needs to know which resources exist, whom they belong to and how they
-- open. Only those columns, and the departments' names; nothing else.
GRANT USAGE ON SCHEMA registrar TO odp_query;
GRANT SELECT (resource, department, title, open_type, status) ON resources TO odp_query;
GRANT SELECT (code, name, active) ON departments TO odp_query;
