-- Planning and the open data catalogue (R4.2, R5.3, R5.4, R7a, R8) and the transfer rules
-- (R5.5a). Code-list columns hold the codes of proto/odp_proto.h (ODP_CODES_*), checked
-- by the registrar before they get here.

CREATE TABLE plans (
    id           bigserial PRIMARY KEY,
    department   text NOT NULL REFERENCES departments (code),
    title        text NOT NULL,
    summary      text,
    domain       text,
    content_kind text,
    open_type    text NOT NULL,
    update_cycle text NOT NULL,
    due_on       date NOT NULL,
    maintainer   text NOT NULL,
    planned_by   text NOT NULL,
    planned_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX plans_department ON plans (department);

-- Per department and classification, the last sequence number given out: resource codes
-- are <department>-<classification>-<sequence> (docs/identifiers.md), never reused.
CREATE TABLE resource_sequences (
    department     text NOT NULL REFERENCES departments (code),
    classification text NOT NULL,
    last           integer NOT NULL,
    PRIMARY KEY (department, classification)
);

CREATE TABLE resources (
    resource       text PRIMARY KEY,             -- 资源代码
    department     text NOT NULL REFERENCES departments (code),
    plan           bigint UNIQUE REFERENCES plans (id),
    title          text NOT NULL,
    summary        text NOT NULL,
    keywords       text[] NOT NULL,
    domain         text NOT NULL,
    content_kind   text NOT NULL,
    delivery_form  text NOT NULL,
    open_type      text NOT NULL,
    update_cycle   text NOT NULL,
    released_on    date,
    updated_on     date,
    contact        text NOT NULL,
    location       text NOT NULL,               -- R4.2d: where the resource is at the provider
    status         text NOT NULL DEFAULT 'catalogued'
                   CHECK (status IN ('catalogued', 'registration_requested', 'registered',
                                     'refused')),
    refused_reason text,
    catalogued_by  text NOT NULL,
    catalogued_at  timestamptz NOT NULL DEFAULT now(),
    registered_by  text,
    registered_at  timestamptz
);
CREATE INDEX resources_department ON resources (department);

-- The data dictionary (R8.3a): one row per field, per table of the resource (R8.3b: a
-- database-form dataset has several tables, each with its dictionary).
CREATE TABLE dictionary_fields (
    resource    text NOT NULL REFERENCES resources (resource),
    table_name  text NOT NULL,
    position    integer NOT NULL,
    name        text NOT NULL,
    type        text NOT NULL
                CHECK (type IN ('text', 'integer', 'numeric', 'date', 'timestamp', 'boolean')),
    length      integer,
    required    boolean NOT NULL DEFAULT false,
    is_unique   boolean NOT NULL DEFAULT false,
    allowed     text[],
    min_value   numeric,
    max_value   numeric,
    pattern     text,
    check_name  text CHECK (check_name IN ('uscc', 'idcard')),
    description text,
    PRIMARY KEY (resource, table_name, position),
    UNIQUE (resource, table_name, name)
);

-- One row: the rules operations sets for transfers (R5.5a).
CREATE TABLE transfer_rules (
    id             integer PRIMARY KEY CHECK (id = 1),
    formats        text[] NOT NULL,
    encodings      text[] NOT NULL,
    max_size       bigint NOT NULL,
    max_row_length integer NOT NULL,
    chunk_size     integer NOT NULL,
    credit         integer NOT NULL,
    updated_by     text NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
INSERT INTO transfer_rules VALUES
    (1, '{csv,jsonl,file}', '{utf8,gb18030}', 10737418240, 1048576, 262144, 8, 'default');
