-- Pushed data (R5.5b, R7c). An upload is one push of one table's content (or one file);
-- it becomes a version when finished. Staged rows live in a table per upload,
-- stage_u<upload>, with one typed column per dictionary field (ARCHITECTURE principle 5);
-- rows that could not be typed are kept in rejects with their raw text (principle 3).

CREATE TABLE uploads (
    id            bigserial PRIMARY KEY,
    resource      text NOT NULL REFERENCES resources (resource),
    table_name    text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('dataset', 'file')),
    format        text NOT NULL,
    encoding      text,
    size          bigint NOT NULL,                 -- declared total size in bytes
    sha256        text NOT NULL,                   -- declared, hex
    filename      text,
    media_type    text,
    status        text NOT NULL DEFAULT 'receiving'
                  CHECK (status IN ('receiving', 'received', 'abandoned')),
    committed     bigint NOT NULL DEFAULT 0,       -- bytes durably processed (row boundary)
    hash_state    bytea,                           -- SHA-256 state at committed
    rows_received bigint NOT NULL DEFAULT 0,
    rows_staged   bigint NOT NULL DEFAULT 0,
    rows_rejected bigint NOT NULL DEFAULT 0,
    staging_table text,
    version       integer,
    started_by    text NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    failure       text,
    UNIQUE (resource, table_name, version)
);
-- At most one push of the same content in flight per table: a resume finds it.
CREATE UNIQUE INDEX uploads_receiving ON uploads (resource, table_name, sha256)
    WHERE status = 'receiving';

CREATE TABLE rejects (
    upload  bigint NOT NULL REFERENCES uploads (id),
    row_no  bigint NOT NULL,
    reason  text NOT NULL CHECK (reason IN ('ragged', 'type', 'encoding', 'shape')),
    detail  text NOT NULL,
    raw     text NOT NULL,
    PRIMARY KEY (upload, row_no)
);

-- Files (archives, documents, reports, images, audio, video: R8.3c), stored in pieces as
-- they arrive, so neither side ever holds a whole file.
CREATE TABLE file_chunks (
    upload  bigint NOT NULL REFERENCES uploads (id),
    offset_ bigint NOT NULL,
    data    bytea NOT NULL,
    PRIMARY KEY (upload, offset_)
);
