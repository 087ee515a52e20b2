-- What other services may read of the registrar's schema (docs/design.md, "Who reads
-- what"). Read only: the registrar stays the only writer of everything here. Staging
-- tables (stage_u<N>) are granted to the reviewer and publisher one by one as push.c
-- creates them; credentials, staff and authorisations are granted to nobody.
GRANT USAGE ON SCHEMA registrar TO odp_reviewer, odp_publisher, odp_metrics;
GRANT SELECT ON resources, dictionary_fields, uploads, rejects TO odp_reviewer;
GRANT SELECT ON resources, dictionary_fields, uploads, departments, file_chunks TO odp_publisher;
GRANT SELECT ON plans, resources, uploads, departments TO odp_metrics;
GRANT SELECT ON publishable_versions TO odp_publisher;
