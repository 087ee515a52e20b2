-- Views, queries and downloads per resource and day (R6c, R10b). The service counts in
-- memory and adds its counts here on a timer: one statement per flush, not one insert per
-- request.
CREATE TABLE usage_counts (
    day        date NOT NULL,
    resource   text NOT NULL,
    department text NOT NULL,
    views      bigint NOT NULL DEFAULT 0,
    queries    bigint NOT NULL DEFAULT 0,
    downloads  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, resource)
);
