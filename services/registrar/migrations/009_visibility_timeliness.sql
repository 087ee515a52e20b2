-- Who sees an entry, when its next version is due, and which versions may be published.

-- Operations sees every entry and a provider department all of its own; everyone else
-- (other departments, users, anonymous callers) sees an entry only once it is registered
-- and open (R4.4, R5.7b): not while it is being prepared or after a refusal, never when
-- not to be opened. One definition for every command that reads the catalogue.
CREATE FUNCTION entry_visible(actor_kind text, actor_id text, department text, status text,
                              open_type text)
    RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(actor_kind = 'operations'
                    OR (actor_kind = 'provider' AND actor_id = department)
                    OR (status = 'registered' AND open_type <> 'not_open'), false)
$$;

-- The period between versions of an update cycle (R5.3, R9b); NULL for realtime,
-- irregular and static, which are never due.
CREATE FUNCTION cycle_period(update_cycle text) RETURNS interval LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE update_cycle
        WHEN 'daily' THEN interval '1 day'
        WHEN 'weekly' THEN interval '7 days'
        WHEN 'monthly' THEN interval '1 month'
        WHEN 'quarterly' THEN interval '3 months'
        WHEN 'half_yearly' THEN interval '6 months'
        WHEN 'yearly' THEN interval '12 months'
    END
$$;

-- When the entry's next version is due (R5.5b "on time", R9b): one period after its last
-- received version, or after its registration (its cataloguing while unregistered) when
-- none was received. Services and apps have no pushed content and are never due. A month
-- from the 31st is the last day of a shorter month. It reads this schema's tables whoever
-- calls it (search_path FROM CURRENT).
CREATE FUNCTION next_due_on(r resources) RETURNS date LANGUAGE sql STABLE
    SET search_path FROM CURRENT AS $$
    SELECT CASE WHEN r.delivery_form = 'dataset_file' THEN
        (coalesce((SELECT max(u.finished_at) FROM uploads u
                   WHERE u.resource = r.resource AND u.status = 'received'),
                  r.registered_at, r.catalogued_at)::date
         + cycle_period(r.update_cycle))::date
    END
$$;

-- Versions the publisher may release: received, of a registered entry that is to be
-- opened. A version pushed before registration waits here until operations registers its
-- entry; one of an entry set to not_open drops out.
CREATE VIEW publishable_versions AS
    SELECT u.resource, u.table_name, u.version, u.id AS upload, u.kind, u.sha256, u.size,
           u.rows_staged, u.staging_table, u.dictionary_revision, u.finished_at AS received_at
    FROM uploads u
    JOIN resources r ON r.resource = u.resource
    WHERE u.status = 'received' AND r.status = 'registered' AND r.open_type <> 'not_open';
