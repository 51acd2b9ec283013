-- Row-level security is PostgreSQL only (migrations/postgres/0003_rls.sql); on SQLite the
-- TenantDb type is the wall. This migration keeps the version numbers of both backends in step.
select 1;
