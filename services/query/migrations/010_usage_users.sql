-- The signed-in users who used (viewed, queried, downloaded) a resource, one row per user,
-- resource and day: the distinct users of the statistics (R6c). Written at the counts'
-- flush (guard.c); a new row is announced as usage.user_counted. Anonymous use is counted
-- in usage_counts only: there is nobody to tell apart.
CREATE TABLE usage_users (
    day      date NOT NULL,
    resource text NOT NULL,
    user_id  text NOT NULL,
    PRIMARY KEY (day, resource, user_id)
);
