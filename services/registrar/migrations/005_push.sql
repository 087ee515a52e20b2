-- What push.c needs to resume an upload after a restart, and to answer quickly.
--   colmap         the loader's header mapping (file column i -> dictionary column), once
--                  the header is read; a resumed loader starts after the header
--   chunk_size,    the transfer rules as they were at push.begin: the client was told
--   max_row_length this chunk size, and a resumed loader must cut rows as before
ALTER TABLE uploads
    ADD COLUMN colmap         integer[],
    ADD COLUMN chunk_size     integer,
    ADD COLUMN max_row_length integer;

-- push.begin looks for identical content already received (a duplicate gives no new
-- version); version.list reads the received uploads of a resource.
CREATE INDEX uploads_received ON uploads (resource, table_name, sha256)
    WHERE status = 'received';
