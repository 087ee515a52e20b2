-- deploy/bootstrap.sql - database, roles and schemas for odp. Idempotent.
--
-- Run as a superuser, connected to any database (e.g. postgres):
--   psql -X -v ON_ERROR_STOP=1 -v db=odp \
--        -v registrar_pw=... -v reviewer_pw=... -v publisher_pw=... \
--        -v query_pw=... -v metrics_pw=... -f deploy/bootstrap.sql
-- Used by deploy/pg.sh (embedded cluster) and deploy/initdb/10-odp.sh (docker-compose).
--
-- Passwords arrive as psql variables and are quoted by psql (:'var'); they are set on
-- every run, so rerunning with the same values changes nothing and with new values
-- rotates them. Tables are created by the services themselves, each in its own schema.

\set ON_ERROR_STOP 1
\if :{?db}
\else
\set db odp
\endif

-- Fail early and clearly when a password variable is missing.
\if :{?registrar_pw}
\else
DO $$ BEGIN RAISE EXCEPTION 'bootstrap.sql: psql variable registrar_pw is not set'; END $$;
\endif
\if :{?reviewer_pw}
\else
DO $$ BEGIN RAISE EXCEPTION 'bootstrap.sql: psql variable reviewer_pw is not set'; END $$;
\endif
\if :{?publisher_pw}
\else
DO $$ BEGIN RAISE EXCEPTION 'bootstrap.sql: psql variable publisher_pw is not set'; END $$;
\endif
\if :{?query_pw}
\else
DO $$ BEGIN RAISE EXCEPTION 'bootstrap.sql: psql variable query_pw is not set'; END $$;
\endif
\if :{?metrics_pw}
\else
DO $$ BEGIN RAISE EXCEPTION 'bootstrap.sql: psql variable metrics_pw is not set'; END $$;
\endif

SET client_min_messages = warning;
SET password_encryption = 'scram-sha-256';

-- Database (CREATE DATABASE cannot run inside DO or a transaction: \gexec).
SELECT format('CREATE DATABASE %I ENCODING %L TEMPLATE template0', :'db', 'UTF8')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')
\gexec

-- Login roles, one per service.
SELECT format('CREATE ROLE %I LOGIN', r)
FROM unnest(ARRAY['odp_registrar', 'odp_reviewer', 'odp_publisher', 'odp_query', 'odp_metrics']) AS r
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r)
\gexec

ALTER ROLE odp_registrar WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'registrar_pw';
ALTER ROLE odp_reviewer  WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'reviewer_pw';
ALTER ROLE odp_publisher WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'publisher_pw';
ALTER ROLE odp_query     WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'query_pw';
ALTER ROLE odp_metrics   WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'metrics_pw';

-- Database privileges: nobody but the service roles (and superusers) may connect, and the
-- service roles to this database only.
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
REVOKE CONNECT ON DATABASE postgres, template1 FROM PUBLIC;
GRANT CONNECT ON DATABASE :"db" TO odp_registrar, odp_reviewer, odp_publisher, odp_query, odp_metrics;

-- Unqualified names resolve to the service's own schema.
ALTER ROLE odp_registrar IN DATABASE :"db" SET search_path = registrar;
ALTER ROLE odp_reviewer  IN DATABASE :"db" SET search_path = reviewer;
ALTER ROLE odp_publisher IN DATABASE :"db" SET search_path = publisher;
ALTER ROLE odp_query     IN DATABASE :"db" SET search_path = query;
ALTER ROLE odp_metrics   IN DATABASE :"db" SET search_path = metrics;

\connect :db
SET client_min_messages = warning;

REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- One schema per service, owned by the service's role; no one else gets any right on it.
CREATE SCHEMA IF NOT EXISTS registrar AUTHORIZATION odp_registrar;
CREATE SCHEMA IF NOT EXISTS reviewer  AUTHORIZATION odp_reviewer;
CREATE SCHEMA IF NOT EXISTS publisher AUTHORIZATION odp_publisher;
CREATE SCHEMA IF NOT EXISTS query     AUTHORIZATION odp_query;
CREATE SCHEMA IF NOT EXISTS metrics   AUTHORIZATION odp_metrics;
ALTER SCHEMA registrar OWNER TO odp_registrar;
ALTER SCHEMA reviewer  OWNER TO odp_reviewer;
ALTER SCHEMA publisher OWNER TO odp_publisher;
ALTER SCHEMA query     OWNER TO odp_query;
ALTER SCHEMA metrics   OWNER TO odp_metrics;

-- Remove any CREATE (or other) right a non-owner may have been given on a service schema.
-- USAGE held by another service's role stays: the owning service's migrations grant it
-- (the query service reads the publisher's views), and they run once, so a second run of
-- this script on a live database must not take it away.
SELECT format('REVOKE %s ON SCHEMA %I FROM %s', a.privilege_type, n.nspname,
              CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END)
FROM pg_namespace n
CROSS JOIN LATERAL aclexplode(n.nspacl) a
WHERE n.nspname IN ('registrar', 'reviewer', 'publisher', 'query', 'metrics')
  AND a.grantee <> n.nspowner
  AND NOT (a.privilege_type = 'USAGE' AND a.grantee <> 0 AND pg_get_userbyid(a.grantee) IN
           ('odp_registrar', 'odp_reviewer', 'odp_publisher', 'odp_query', 'odp_metrics'))
\gexec
