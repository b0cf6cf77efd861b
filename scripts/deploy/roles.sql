-- vdata on PostgreSQL: the database, its owner and the read-only role of /v1/query.
-- Run once as a superuser (or a role with CREATEROLE and CREATEDB):
--   psql -v app_password="$(cat /etc/vdata/db-password)" -f scripts/deploy/roles.sql
-- The server then connects as vdata_app and creates its tables itself (migrations run at every start).

\set ON_ERROR_STOP on

-- The server's own login: owns the database and its tables; no superuser, no CREATEROLE.
CREATE ROLE vdata_app LOGIN PASSWORD :'app_password';
CREATE DATABASE vdata OWNER vdata_app ENCODING 'UTF8' TEMPLATE template0;

-- What /v1/query runs as (SET LOCAL ROLE inside a READ ONLY transaction): it may read the public
-- views `records` and `stats` (granted by the migrations) and nothing else. Its own settings are a
-- second fence: every transaction read-only, every statement cut at 1 s.
CREATE ROLE vdata_readonly NOLOGIN;
ALTER ROLE vdata_readonly SET default_transaction_read_only = on;
ALTER ROLE vdata_readonly SET statement_timeout = '1s';
ALTER ROLE vdata_readonly SET idle_in_transaction_session_timeout = '5s';
GRANT vdata_readonly TO vdata_app;

-- Streaming replication (the --read-db replica): a login that may only replicate.
CREATE ROLE vdata_replication LOGIN REPLICATION PASSWORD :'app_password';

\connect vdata
-- Nobody but the owner creates objects in the schema (PostgreSQL 15 and later already do this).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
