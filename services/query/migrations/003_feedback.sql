-- Feedback (R4.3c, R9e): comments, error reports (纠错), data requests, ratings and apps
-- built on the data, each routed to the department responsible (NULL: operations, for a
-- request that names no department), with the times that measure the response.
CREATE TABLE feedback (
    id           bigserial PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('comment', 'report', 'request', 'rating', 'app')),
    user_id      bigint NOT NULL REFERENCES users (id),
    resource     text,
    department   text,
    title        text,
    body         text,
    rating       smallint CHECK (rating BETWEEN 1 AND 5),
    url          text,
    state        text NOT NULL DEFAULT 'received'
                 CHECK (state IN ('received', 'answered', 'resolved')),
    received_at  timestamptz NOT NULL DEFAULT now(),
    answered_at  timestamptz,
    resolved_at  timestamptz,
    CHECK (kind <> 'rating' OR (rating IS NOT NULL AND resource IS NOT NULL)),
    CHECK (kind = 'rating' OR rating IS NULL)
);
CREATE INDEX feedback_department ON feedback (department, state);
CREATE INDEX feedback_user ON feedback (user_id);
-- One rating per user and resource.
CREATE UNIQUE INDEX feedback_one_rating ON feedback (user_id, resource) WHERE kind = 'rating';

CREATE TABLE feedback_replies (
    id          bigserial PRIMARY KEY,
    feedback    bigint NOT NULL REFERENCES feedback (id),
    author      text NOT NULL, -- user:<id>, provider:<code>, operations:<login>
    body        text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX feedback_replies_feedback ON feedback_replies (feedback, id);
