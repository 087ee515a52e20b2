-- Data dictionary revisions (R4.2c, R8.3a). A table's dictionary is a numbered revision;
-- a revision is fixed once an upload has begun with it (its staging table is typed by
-- it), and dictionary.set then makes the next one, which the next push uses. Earlier
-- versions keep the revision they were loaded with (uploads.dictionary_revision).

CREATE TABLE dictionary_revisions (
    resource   text NOT NULL REFERENCES resources (resource),
    table_name text NOT NULL,
    revision   integer NOT NULL CHECK (revision >= 1),
    set_by     text NOT NULL,
    set_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (resource, table_name, revision)
);

CREATE TABLE dictionary_revision_fields (
    resource    text NOT NULL,
    table_name  text NOT NULL,
    revision    integer NOT NULL,
    position    integer NOT NULL,
    name        text NOT NULL,
    type        text NOT NULL
                CHECK (type IN ('text', 'integer', 'numeric', 'date', 'timestamp', 'boolean')),
    length      integer,
    required    boolean NOT NULL DEFAULT false,
    is_unique   boolean NOT NULL DEFAULT false,
    allowed     text[],
    min_value   numeric,
    max_value   numeric,
    pattern     text,
    check_name  text CHECK (check_name IN ('uscc', 'idcard')),
    description text,
    PRIMARY KEY (resource, table_name, revision, position),
    UNIQUE (resource, table_name, revision, name),
    FOREIGN KEY (resource, table_name, revision)
        REFERENCES dictionary_revisions (resource, table_name, revision) ON DELETE CASCADE
);

-- Every dictionary stored so far is its table's first revision.
INSERT INTO dictionary_revisions (resource, table_name, revision, set_by)
    SELECT DISTINCT resource, table_name, 1, 'migration:008' FROM dictionary_fields;
INSERT INTO dictionary_revision_fields
    SELECT resource, table_name, 1, position, name, type, length, required, is_unique, allowed,
           min_value, max_value, pattern, check_name, description
    FROM dictionary_fields;
DROP TABLE dictionary_fields;

-- The current (latest) revision of every table, under the old table's name and columns:
-- push.begin builds a new staging table from it.
CREATE VIEW dictionary_fields AS
    SELECT f.resource, f.table_name, f.position, f.name, f.type, f.length, f.required,
           f.is_unique, f.allowed, f.min_value, f.max_value, f.pattern, f.check_name,
           f.description, f.revision
    FROM dictionary_revision_fields f
    WHERE f.revision = (SELECT max(d.revision) FROM dictionary_revisions d
                        WHERE d.resource = f.resource AND d.table_name = f.table_name);

-- The revision an upload was begun with: the current one when its row is inserted, which
-- push.begin does right after reading the staging table's columns from dictionary_fields
-- (a registrar instance handles one request at a time, so no dictionary.set comes between).
ALTER TABLE uploads ADD COLUMN dictionary_revision integer;
UPDATE uploads SET dictionary_revision = 1 WHERE kind = 'dataset';

-- search_path FROM CURRENT: the schema's tables, whoever inserts.
CREATE FUNCTION uploads_dictionary_revision() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
BEGIN
    IF NEW.kind = 'dataset' AND NEW.dictionary_revision IS NULL THEN
        NEW.dictionary_revision := (SELECT max(revision) FROM dictionary_revisions
                                    WHERE resource = NEW.resource
                                      AND table_name = NEW.table_name);
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER uploads_dictionary_revision BEFORE INSERT ON uploads
    FOR EACH ROW EXECUTE FUNCTION uploads_dictionary_revision();

CREATE INDEX uploads_dictionary_revision ON uploads (resource, table_name, dictionary_revision);
