-- PostgreSQL only: its row-level security policies are rewritten to evaluate the session
-- settings once per statement (see migrations/postgres/0011_rls_initplan.sql). SQLite has
-- no row-level security; this file keeps the two migration histories aligned.
select 1;
