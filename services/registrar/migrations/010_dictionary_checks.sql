-- Two more constraints of the data dictionary, as Frictionless Table Schema has them
-- (R9c): min_length (minLength of a text field) and primary_key (the fields marked form
-- the table's primary key, in dictionary order; a key over several fields is several
-- marks). The reviewer checks them; the registrar only keeps them.
ALTER TABLE dictionary_revision_fields
    ADD COLUMN min_length  integer CHECK (min_length >= 1),
    ADD COLUMN primary_key boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT dictionary_length_range CHECK (min_length IS NULL OR length IS NULL
                                                  OR min_length <= length);

-- The view keeps its columns in their order; the new ones go last.
CREATE OR REPLACE VIEW dictionary_fields AS
    SELECT f.resource, f.table_name, f.position, f.name, f.type, f.length, f.required,
           f.is_unique, f.allowed, f.min_value, f.max_value, f.pattern, f.check_name,
           f.description, f.revision, f.min_length, f.primary_key
    FROM dictionary_revision_fields f
    WHERE f.revision = (SELECT max(d.revision) FROM dictionary_revisions d
                        WHERE d.resource = f.resource AND d.table_name = f.table_name);

-- The reviewer checks a version against the revision it was pushed with, and re-checks
-- approved versions against the latest (reviewer migrations 003).
GRANT SELECT ON dictionary_revisions, dictionary_revision_fields TO odp_reviewer;
