-- Catalogue search (R5.8a). PostgreSQL's text search does not segment Chinese, and pg_trgm
-- skips characters the database's locale does not call alphanumeric (every CJK character
-- under the C locale), so the search index is built here from character bigrams: every
-- two adjacent characters of each word of an entry's title, summary and keywords, in a
-- GIN-indexed array. A query term matches an entry whose array holds all the term's bigrams
-- (the index) and whose text holds the term itself (the check that removes false hits).
-- Built-in operators only: nothing for a superuser to install.
CREATE FUNCTION grams(p text) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT substr(w, i, 2)), '{}')
      FROM regexp_split_to_table(lower(p), '[[:space:][:punct:]]+') AS w,
           generate_series(1, length(w) - 1) AS i
$$;

-- One row per entry the publisher ever released, refreshed from publisher.entries by the
-- entries' modified_seq before each search (an index probe when nothing changed): the
-- publisher's table stays its own, and the search never reads a stale entry.
CREATE TABLE entry_grams (
    resource text PRIMARY KEY,
    seq      bigint NOT NULL,
    body     text NOT NULL, -- lower(title, summary, keywords): the check of each term
    grams    text[] NOT NULL
);
CREATE INDEX entry_grams_seq ON entry_grams (seq);
CREATE INDEX entry_grams_grams ON entry_grams USING gin (grams);

-- plpgsql: publisher.entries is resolved at the first call, not when this is created.
CREATE FUNCTION sync_grams() RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO entry_grams (resource, seq, body, grams)
    SELECT e.resource, e.modified_seq, b.body, grams(b.body)
      FROM publisher.entries e,
           LATERAL (SELECT lower(e.title || ' ' || e.summary || ' ' ||
                                 array_to_string(e.keywords, ' '))) AS b (body)
     WHERE e.modified_seq > (SELECT coalesce(max(seq), 0) FROM entry_grams)
    ON CONFLICT (resource) DO UPDATE
       SET seq = EXCLUDED.seq, body = EXCLUDED.body, grams = EXCLUDED.grams;
END
$$;

-- What users obtained (R5.8b): one row per download of a release, its progress, and the
-- SHA-256 state of the bytes served in order so far (libsodium's state, as the registrar
-- keeps a push's), so the hash survives a restart of the service and a resumed download.
CREATE TABLE downloads (
    id           bigserial PRIMARY KEY,
    owner        text NOT NULL, -- user:<id>, key:<curve key>, provider:<code>, operations:<login>
    user_id      bigint REFERENCES users (id),
    resource     text NOT NULL,
    release      bigint NOT NULL,
    version      integer NOT NULL,
    format       text NOT NULL CHECK (format IN ('csv', 'jsonl')),
    span         bigint NOT NULL CHECK (span > 0),
    last_row     bigint NOT NULL,
    next_row     bigint NOT NULL DEFAULT 1,
    bytes        bigint NOT NULL DEFAULT 0,
    hash_state   bytea,
    started_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz
);
CREATE INDEX downloads_user ON downloads (user_id, id) WHERE user_id IS NOT NULL;

-- The SHA-256 of the exact bytes served for a release in a format: the output is the same
-- every time (fixed order, settings and header), so one completed download gives it to all.
CREATE TABLE served_hashes (
    release bigint NOT NULL,
    format  text NOT NULL,
    sha256  text NOT NULL CHECK (length(sha256) = 64),
    bytes   bigint NOT NULL,
    PRIMARY KEY (release, format)
);
