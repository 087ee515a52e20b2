-- Evidence for the reviewer's repeat check, made while the push stages the rows (issue 8):
-- for each unique text field of the upload's dictionary revision, a group's hashes of its
-- values (push_keys.c: SipHash-2-4 of the staged text, sorted, 8 bytes each, most
-- significant first), its run, in pages of at most 8,192 hashes, and how many of its values
-- were NULL (on page 0). The reviewer merges the groups' sorted runs a page at a time: no
-- hash repeating means no value repeats, without a scan of the staging table. Each group
-- commits its rows here in the transaction that commits its rows, as stage_counts and
-- stage_checks. The hashes are stored uncompressed (EXTERNAL: they do not compress).
CREATE TABLE stage_keys (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    upload bigint NOT NULL REFERENCES uploads (id),
    field  text NOT NULL,
    run    bigint NOT NULL, -- the group: the byte offset it starts at
    page   integer NOT NULL CHECK (page >= 0),
    nulls  bigint NOT NULL CHECK (nulls >= 0),
    hashes bytea NOT NULL CHECK (octet_length(hashes) % 8 = 0)
);
ALTER TABLE stage_keys ALTER COLUMN hashes SET STORAGE EXTERNAL;
CREATE INDEX stage_keys_upload ON stage_keys (upload);
GRANT SELECT ON stage_keys TO odp_reviewer;

-- The fields a push hashes, fixed when its staging table is made (push.begin): its
-- revision's unique text fields; NULL for an upload begun before, or one whose hashing was
-- given up.
ALTER TABLE uploads ADD COLUMN keyed_fields text[];
