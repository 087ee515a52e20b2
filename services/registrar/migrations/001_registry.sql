-- The department registry (R3.1-R3.3, R4.1): who authorised the operations department,
-- which provider departments exist, who the operations staff are, and which CURVE keys
-- act for whom. The credentials table is the truth; the certificate directory that the
-- ZAP handlers read is rebuilt from it at start.

CREATE TABLE authorisations (
    id          bigserial PRIMARY KEY,
    authority   text NOT NULL,          -- 主管机构, the responsible organisation
    operations  text NOT NULL,          -- 运维部门 it authorises
    document    text NOT NULL,          -- reference of the authorising document
    granted_on  date NOT NULL,
    recorded_by text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE departments (
    code          text PRIMARY KEY
                  CHECK (code ~ '^[1-8][0-9]{5}[0-9]{3}$' AND right(code, 3) <> '000'),
    name          text NOT NULL UNIQUE,
    contact       text,
    active        boolean NOT NULL DEFAULT true,
    registered_at timestamptz NOT NULL DEFAULT now(),
    registered_by text NOT NULL
);

CREATE TABLE staff (
    login         text PRIMARY KEY,
    name          text NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now(),
    registered_by text NOT NULL
);

CREATE TABLE credentials (
    public_key text PRIMARY KEY CHECK (length(public_key) = 40),
    kind       text NOT NULL CHECK (kind IN ('authority', 'operations', 'provider', 'user')),
    actor_id   text NOT NULL,
    name       text,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX credentials_actor ON credentials (kind, actor_id);
