-- A dataset version's row total and the counts of its code-like values (enumerated or
-- boolean fields: the publisher's facets), made while the push stages the rows (issue 9).
-- The registrar reads every value as it types it, so counting costs a hash lookup per
-- value; a count by the publisher afterwards was a scan of the whole staging table (0.5 s
-- of CPU for 1M rows) beside the index builds. Each group commits its counts in the
-- transaction that commits its rows: what is committed counts exactly the committed rows,
-- and a resumed push counts from the committed boundary on. The rows of a field and value
-- are summed by the reader. value is the staged text as COPY read it (a boolean is t or f:
-- the reader casts it to the column's type); field NULL is the group's row total.
CREATE TABLE stage_counts (
    upload bigint NOT NULL REFERENCES uploads (id),
    field  text,
    value  text,
    count  bigint NOT NULL
);
CREATE INDEX stage_counts_upload ON stage_counts (upload);
GRANT SELECT ON stage_counts TO odp_publisher;

-- The fields a push counts, fixed when its staging table is made (push.begin): NULL for an
-- upload begun before the registrar counted, whose counts a reader makes itself.
ALTER TABLE uploads ADD COLUMN counted_fields text[];
