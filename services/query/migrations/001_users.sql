-- Users of the public endpoint (R4.3c, R7d): accounts, sessions, bound CURVE keys.
-- Nothing here holds a secret in clear: a password is kept only as libsodium's argon2id
-- string (salt and parameters inside), a session token only as its SHA-256.

CREATE TABLE users (
    id          bigserial PRIMARY KEY,
    login       text NOT NULL UNIQUE CHECK (login ~ '^[A-Za-z0-9_.@-]{3,64}$'),
    name        text,
    pwhash      text NOT NULL CHECK (pwhash LIKE '$argon2id$%'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A token is 32 random bytes given to the client once; a stolen table holds no usable
-- token. Expired and revoked sessions stay for the record.
CREATE TABLE sessions (
    token_hash  bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id     bigint NOT NULL REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX sessions_user ON sessions (user_id) WHERE revoked_at IS NULL;

-- A CURVE public key a signed-in user bound to the account: requests made with it on the
-- public endpoint act as the user without a token.
CREATE TABLE user_keys (
    public_key  text PRIMARY KEY CHECK (length(public_key) = 40),
    user_id     bigint NOT NULL REFERENCES users (id),
    bound_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX user_keys_user ON user_keys (user_id);

-- Every statement of the query role is bounded: a request that would hold the service
-- longer is cancelled (SQLSTATE 57014) and answered 503. The role's default applies to
-- every new session; SET covers the session that runs this migration.
ALTER ROLE CURRENT_USER SET statement_timeout = '5s';
SET statement_timeout = '5s';
