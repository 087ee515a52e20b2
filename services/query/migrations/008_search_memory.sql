-- Catalogue search from memory (issue #10, round 3). odp-query keeps what the search reads
-- of every entry in memory (search_index.c: the texts, the facet values, the sort keys and
-- postings of character bigrams) and answers from there; entry_grams stays the copy it is
-- loaded from and kept in step with. The bigram array and its GIN index were the SQL
-- search's index and nothing reads them any more.
DROP INDEX entry_grams_grams;
ALTER TABLE entry_grams DROP COLUMN grams;
DROP FUNCTION grams(text);

-- The service reads the changes in (seq, resource) order, in chunks: the key of the last
-- row it holds is where the next chunk starts.
DROP INDEX entry_grams_seq;
CREATE INDEX entry_grams_seq ON entry_grams (seq, resource);

-- Two searches may sync at once, each from its own snapshot of publisher.entries: the one
-- that saw the older state of an entry must not write it over the newer one (the guard on
-- seq), or the copy would keep the stale row while its max(seq) has moved past it.
CREATE OR REPLACE FUNCTION sync_grams() RETURNS void
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO entry_grams AS g (resource, seq, body, visible, title, title_l, keywords_l,
                                  modified_at, first_released_at, kind, department, domain,
                                  content_kind, delivery_form, format, open_type, update_cycle)
    SELECT e.resource, e.modified_seq,
           lower(e.title || ' ' || e.summary || ' ' || array_to_string(e.keywords, ' ')),
           e.state = 'published' AND e.open_type <> 'not_open', e.title, lower(e.title),
           lower(array_to_string(e.keywords, ' ')), e.modified_at, e.first_released_at,
           e.kind, e.department, e.domain, e.content_kind, e.delivery_form,
           coalesce(r.format, ''), e.open_type, e.update_cycle
      FROM publisher.entries e
      LEFT JOIN publisher.releases r ON r.id = e.current_release
     WHERE e.modified_seq > (SELECT coalesce(max(seq), 0) FROM entry_grams)
    ON CONFLICT (resource) DO UPDATE
       SET seq = EXCLUDED.seq, body = EXCLUDED.body, visible = EXCLUDED.visible,
           title = EXCLUDED.title, title_l = EXCLUDED.title_l,
           keywords_l = EXCLUDED.keywords_l, modified_at = EXCLUDED.modified_at,
           first_released_at = EXCLUDED.first_released_at, kind = EXCLUDED.kind,
           department = EXCLUDED.department, domain = EXCLUDED.domain,
           content_kind = EXCLUDED.content_kind, delivery_form = EXCLUDED.delivery_form,
           format = EXCLUDED.format, open_type = EXCLUDED.open_type,
           update_cycle = EXCLUDED.update_cycle
     WHERE g.seq < EXCLUDED.seq;
END
$$;

-- The service's refresh, one call per search: the copy synced, then (a new statement, so it
-- sees what the sync wrote) the rows after (p_seq, p_resource), at most p_limit, in key
-- order. The publisher numbers its changes under the lock of its outbox counter, so they
-- commit in that order: a row the service has not seen always comes after the last key it
-- holds. Times are microseconds since 1970, what the service sorts on; the facet columns
-- in the order of search.c's table of them.
-- Most calls find nothing new and must cost a few index probes whatever the planner's
-- statistics say: right after 100,000 entries are written they are stale, and a key
-- compared as a row is estimated at half the table, so a sequential scan and a sort would
-- be chosen for every search. Hence the sync only when the publisher has a newer number,
-- the rows read by a statement planned with the key's value (EXECUTE) that also bounds
-- the leading column, and no sequential scan inside (a load of the whole copy reads it in
-- key order, one chunk at a time, through the index).
CREATE FUNCTION search_changes(p_seq bigint, p_resource text, p_limit integer)
    RETURNS TABLE (resource text, seq bigint, visible boolean, title text, title_l text,
                   keywords_l text, body text, modified_us bigint, created_us bigint,
                   domain text, department text, content_kind text, delivery_form text,
                   format text, open_type text, update_cycle text, kind text)
    LANGUAGE plpgsql SET search_path FROM CURRENT SET enable_seqscan = off AS $$
BEGIN
    IF (SELECT max(modified_seq) FROM publisher.entries) >
       (SELECT coalesce(max(g.seq), 0) FROM entry_grams g) THEN
        PERFORM sync_grams();
    END IF;
    IF (SELECT coalesce(max(g.seq), 0) FROM entry_grams g) < p_seq THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE
        'SELECT g.resource, g.seq, g.visible, g.title, g.title_l, g.keywords_l, g.body,
                (extract(epoch FROM g.modified_at) * 1000000)::bigint,
                (extract(epoch FROM g.first_released_at) * 1000000)::bigint,
                g.domain, g.department, g.content_kind, g.delivery_form, g.format,
                g.open_type, g.update_cycle, g.kind
           FROM entry_grams g
          WHERE g.seq >= $1 AND (g.seq, g.resource) > ($1, $2)
          ORDER BY g.seq, g.resource
          LIMIT $3'
        USING p_seq, p_resource, p_limit;
END
$$;
