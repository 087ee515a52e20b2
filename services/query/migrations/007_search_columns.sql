-- Catalogue search over one table (issue #10: p95 <= 20 ms over 100,000 entries). Each
-- entry's row in entry_grams also carries what the search filters, counts, sorts and
-- scores on, copied by sync_grams from publisher.entries and its current release in the
-- same step as the bigrams: every change to an entry moves its modified_seq (the publisher
-- event that last changed it), which is what the sync follows. The hits, their count and
-- their facets then come from entry_grams alone; only the page's rows are joined to the
-- publisher's tables for what is shown.
ALTER TABLE entry_grams
    ADD COLUMN visible           boolean NOT NULL DEFAULT false, -- published and not not_open
    ADD COLUMN title             text NOT NULL DEFAULT '',
    ADD COLUMN title_l           text NOT NULL DEFAULT '',       -- lower(title): scoring
    ADD COLUMN keywords_l        text NOT NULL DEFAULT '',       -- lower(keywords joined)
    ADD COLUMN modified_at       timestamptz,
    ADD COLUMN first_released_at timestamptz,
    ADD COLUMN kind              text,
    ADD COLUMN department        text,
    ADD COLUMN domain            text,
    ADD COLUMN content_kind      text,
    ADD COLUMN delivery_form     text,
    ADD COLUMN format            text,
    ADD COLUMN open_type         text,
    ADD COLUMN update_cycle      text;

-- The rows written before these columns existed get them here, once, whatever the size of
-- the catalogue (the service's statement timeout is for requests).
SET LOCAL statement_timeout = 0;
UPDATE entry_grams g
   SET visible = e.state = 'published' AND e.open_type <> 'not_open', title = e.title,
       title_l = lower(e.title), keywords_l = lower(array_to_string(e.keywords, ' ')),
       modified_at = e.modified_at, first_released_at = e.first_released_at, kind = e.kind,
       department = e.department, domain = e.domain, content_kind = e.content_kind,
       delivery_form = e.delivery_form, format = coalesce(r.format, ''),
       open_type = e.open_type, update_cycle = e.update_cycle
  FROM publisher.entries e
  LEFT JOIN publisher.releases r ON r.id = e.current_release
 WHERE e.resource = g.resource;

CREATE OR REPLACE FUNCTION sync_grams() RETURNS void
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO entry_grams AS g (resource, seq, body, grams, visible, title, title_l,
                                  keywords_l, modified_at, first_released_at, kind, department,
                                  domain, content_kind, delivery_form, format, open_type,
                                  update_cycle)
    SELECT e.resource, e.modified_seq, b.body, grams(b.body),
           e.state = 'published' AND e.open_type <> 'not_open', e.title, lower(e.title),
           lower(array_to_string(e.keywords, ' ')), e.modified_at, e.first_released_at,
           e.kind, e.department, e.domain, e.content_kind, e.delivery_form,
           coalesce(r.format, ''), e.open_type, e.update_cycle
      FROM publisher.entries e
      LEFT JOIN publisher.releases r ON r.id = e.current_release,
           LATERAL (SELECT lower(e.title || ' ' || e.summary || ' ' ||
                                 array_to_string(e.keywords, ' '))) AS b (body)
     WHERE e.modified_seq > (SELECT coalesce(max(seq), 0) FROM entry_grams)
    ON CONFLICT (resource) DO UPDATE
       SET seq = EXCLUDED.seq, body = EXCLUDED.body, grams = EXCLUDED.grams,
           visible = EXCLUDED.visible, title = EXCLUDED.title, title_l = EXCLUDED.title_l,
           keywords_l = EXCLUDED.keywords_l, modified_at = EXCLUDED.modified_at,
           first_released_at = EXCLUDED.first_released_at, kind = EXCLUDED.kind,
           department = EXCLUDED.department, domain = EXCLUDED.domain,
           content_kind = EXCLUDED.content_kind, delivery_form = EXCLUDED.delivery_form,
           format = EXCLUDED.format, open_type = EXCLUDED.open_type,
           update_cycle = EXCLUDED.update_cycle;
END
$$;
