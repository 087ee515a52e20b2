-- Push hardening.
--   credit   the transfer rules' credit at push.begin: the client was told it, and the
--            registrar holds it to that number of chunks in flight for the upload's life
ALTER TABLE uploads ADD COLUMN credit integer;

--   dictionary   a dataset's data dictionary as it typed the rows: the SHA-256 (hex) of
--                its fields as "name<TAB>type" lines in position order. Identical content
--                is the same bytes read the same way: sha256, format, encoding and this.
--   withdrawn_*  a version its provider took back (version.withdraw): still listed, and no
--                longer what a push of the same content duplicates
ALTER TABLE uploads
    ADD COLUMN dictionary       text,
    ADD COLUMN withdrawn_at     timestamptz,
    ADD COLUMN withdrawn_by     text,
    ADD COLUMN withdrawn_reason text;
UPDATE uploads u SET dictionary = (
    SELECT encode(sha256(convert_to(string_agg(d.name || E'\t' || d.type, E'\n'
                                               ORDER BY d.position), 'UTF8')), 'hex')
      FROM dictionary_fields d
     WHERE d.resource = u.resource AND d.table_name = u.table_name)
 WHERE u.kind = 'dataset';
