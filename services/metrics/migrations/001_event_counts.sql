-- Events seen per source and topic (R10a): every other service's lifecycle events,
-- each counted exactly once (common/consumer.h: the count and the cursor move in one
-- transaction).
CREATE TABLE event_counts (
    source text NOT NULL,
    topic text NOT NULL,
    count bigint NOT NULL CHECK (count > 0),
    last_seq bigint NOT NULL CHECK (last_seq > 0),
    last_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, topic)
);
