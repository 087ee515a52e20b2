-- The publisher describes a released version by the dictionary revision its staging table
-- was typed with (uploads.dictionary_revision), not the current one.
GRANT SELECT ON dictionary_revision_fields TO odp_publisher;
