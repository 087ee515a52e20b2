-- What the statistics, the assessment and the index are computed from (R6c, R10): facts
-- taken from the other services' events, one table per kind of thing, written only by the
-- event handlers of services/metrics/events.c (its table of topics says which topic
-- writes what). Times are the events' own `at`, so a replay writes the same rows as the
-- live stream did: a metrics service started late or restarted counts the same.

-- catalog.planned / plan_cancelled
CREATE TABLE plans (
    id           bigint PRIMARY KEY,
    department   text NOT NULL,
    title        text NOT NULL,
    due_on       date NOT NULL,
    planned_at   timestamptz NOT NULL,
    cancelled_at timestamptz
);
CREATE INDEX plans_department ON plans (department);

-- catalog.catalogued / registered / refused
CREATE TABLE entries (
    resource      text PRIMARY KEY,
    department    text NOT NULL,
    plan          bigint,
    catalogued_at timestamptz NOT NULL,
    registered_at timestamptz,
    refused_at    timestamptz
);
CREATE INDEX entries_department ON entries (department);
CREATE INDEX entries_plan ON entries (plan);

-- data.received (a version) and data.withdrawn. One row per upload.
CREATE TABLE versions (
    upload            bigint PRIMARY KEY,
    resource          text NOT NULL,
    table_name        text NOT NULL,
    version           bigint NOT NULL,
    kind              text NOT NULL,
    sha256            text NOT NULL,
    size              bigint NOT NULL,
    rows_received     bigint NOT NULL,
    rows_staged       bigint NOT NULL,
    rows_rejected     bigint NOT NULL,
    received_at       timestamptz NOT NULL,
    pushed_by         text NOT NULL,
    withdrawn_at      timestamptz
);
CREATE INDEX versions_resource ON versions (resource, version);

-- review.started / flagged / approved / rejected. Its own table, not columns of versions:
-- two sources are not ordered against each other, so a review's events may be handled
-- before the registrar's data.received of the same upload.
CREATE TABLE reviews (
    upload         bigint PRIMARY KEY,
    resource       text NOT NULL,
    department     text NOT NULL,
    started_at     timestamptz,
    findings       bigint NOT NULL DEFAULT 0,
    quarantined    bigint NOT NULL DEFAULT 0,
    first_decision text CHECK (first_decision IN ('approved', 'rejected')),
    approved_at    timestamptz,
    approved_by    text,
    rejected_at    timestamptz
);
CREATE INDEX reviews_resource ON reviews (resource, approved_at);

-- A version with its review, as the reports read it.
CREATE VIEW versions_reviewed AS
    SELECT v.*, w.started_at AS review_started_at, coalesce(w.findings, 0) AS findings,
           coalesce(w.quarantined, 0) AS quarantined, w.first_decision, w.approved_at,
           w.approved_by, w.rejected_at
    FROM versions v LEFT JOIN reviews w ON w.upload = v.upload;

-- data.failed: a push that ended without a version (a rule, the header, the hash).
CREATE TABLE push_failures (
    upload    bigint PRIMARY KEY,
    resource  text NOT NULL,
    code      text NOT NULL,
    failed_at timestamptz NOT NULL
);
CREATE INDEX push_failures_resource ON push_failures (resource);

-- quarantine.isolated (how many rows, when) and quarantine.handled (each row's outcome).
CREATE TABLE quarantine_isolated (
    upload      bigint PRIMARY KEY,
    rows        bigint NOT NULL,
    isolated_at timestamptz NOT NULL
);
CREATE TABLE quarantine_handled (
    upload     bigint NOT NULL,
    row_no     bigint NOT NULL,
    outcome    text NOT NULL,
    handled_at timestamptz NOT NULL,
    PRIMARY KEY (upload, row_no)
);

-- release.published / superseded / withdrawn / restored (the publisher).
CREATE TABLE releases (
    resource      text NOT NULL,
    version       bigint NOT NULL,
    rows          bigint NOT NULL,
    sha256        text NOT NULL,
    published_at  timestamptz NOT NULL,
    superseded_at timestamptz,
    withdrawn_at  timestamptz,
    restored_at   timestamptz,
    PRIMARY KEY (resource, version)
);

-- The query service's use counts and feedback, when its events exist (events.c).
CREATE TABLE access (
    resource text NOT NULL,
    day      date NOT NULL,
    kind     text NOT NULL CHECK (kind IN ('view', 'query', 'download')),
    count    bigint NOT NULL,
    PRIMARY KEY (resource, day, kind)
);
CREATE TABLE access_users (
    resource text NOT NULL,
    day      date NOT NULL,
    actor    text NOT NULL,
    PRIMARY KEY (resource, day, actor)
);
CREATE TABLE feedback (
    source      text NOT NULL,
    id          text NOT NULL,
    resource    text,
    kind        text NOT NULL,
    opened_at   timestamptz NOT NULL,
    answered_at timestamptz,
    resolved    boolean,
    PRIMARY KEY (source, id)
);

-- Index weights, versioned (R10c): the newest version is in force; older ones stay so
-- that a stored index names the weights it was computed with.
CREATE TABLE weights (
    version    bigint PRIMARY KEY,
    volume     double precision NOT NULL CHECK (volume >= 0),
    quality    double precision NOT NULL CHECK (quality >= 0),
    apps       double precision NOT NULL CHECK (apps >= 0),
    access     double precision NOT NULL CHECK (access >= 0),
    efficiency double precision NOT NULL CHECK (efficiency >= 0),
    effect     double precision NOT NULL CHECK (effect >= 0),
    apps_target   double precision NOT NULL DEFAULT 5 CHECK (apps_target > 0),
    access_target double precision NOT NULL DEFAULT 100 CHECK (access_target > 0),
    comment    text,
    set_by     text NOT NULL,
    set_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (volume + quality + apps + access + efficiency + effect > 0)
);
INSERT INTO weights (version, volume, quality, apps, access, efficiency, effect, comment, set_by)
    VALUES (1, 0.2, 0.25, 0.1, 0.15, 0.2, 0.1, 'initial weights', 'metrics');

-- Index history (R10c): every computed index, kept, so trends show.
CREATE TABLE index_history (
    period      text NOT NULL,
    department  text NOT NULL,
    weights     bigint NOT NULL REFERENCES weights (version),
    score       double precision NOT NULL,
    components  text NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (period, department, weights, computed_at)
);

-- Alerts (R10a): a condition raised stays here until it clears, so each condition raises
-- one alert.raised and one alert.cleared, whatever the number of ticks between.
CREATE TABLE alerts (
    alert      text PRIMARY KEY,
    kind       text NOT NULL,
    subject    text NOT NULL,
    department text,
    detail     text NOT NULL,
    raised_at  timestamptz NOT NULL DEFAULT now()
);

-- What the services' health said, polled by metrics: counters as the service reported
-- them (they restart at 0 with the process) plus `base`, what earlier processes had
-- counted, so that the exported total never goes back (Prometheus counters).
CREATE TABLE service_counters (
    service   text NOT NULL,
    name      text NOT NULL,
    reported  double precision NOT NULL DEFAULT 0,
    base      double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (service, name)
);
CREATE TABLE service_status (
    service    text PRIMARY KEY,
    status     text NOT NULL,
    seq        bigint NOT NULL,
    uptime_s   bigint NOT NULL,
    checked_at timestamptz NOT NULL,
    ok_at      timestamptz
);

-- Webhooks (CloudEvents HTTP, structured mode): each endpoint has its own cursor per
-- source and gets events at least once, in order per source.
CREATE TABLE webhooks (
    id         bigserial PRIMARY KEY,
    url        text NOT NULL UNIQUE,
    sources    text[],
    added_by   text NOT NULL,
    added_at   timestamptz NOT NULL DEFAULT now(),
    delivered  bigint NOT NULL DEFAULT 0,
    failures   bigint NOT NULL DEFAULT 0,
    last_error text,
    backoff_ms integer NOT NULL DEFAULT 0,  -- after a failure: doubles up to a cap
    retry_at   timestamptz                  -- no attempt before this
);
CREATE TABLE webhook_cursor (
    webhook bigint NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    source  text NOT NULL,
    last    bigint NOT NULL,
    PRIMARY KEY (webhook, source)
);
-- Every event, as the CloudEvent the webhooks send, kept for the webhooks to read in
-- order (written in the same transaction as the event's facts).
CREATE TABLE event_log (
    source text NOT NULL,
    seq    bigint NOT NULL,
    topic  text NOT NULL,
    cloudevent text NOT NULL,
    PRIMARY KEY (source, seq)
);
