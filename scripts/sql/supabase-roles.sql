-- Supabase's API roles and privileges, as a Supabase project has them, for the local stack.
-- Applied by scripts/lib.sh (prepare_database) as the superuser `postgres` before the
-- migrations, on every start: idempotent. It sets up roles, schemas and default privileges and
-- grants nothing on objects that already exist, so a second start leaves every privilege the
-- migrations set as they set it (an earlier version re-granted every table and function in
-- `public` to anon and authenticated on each start, undoing the migrations' revokes).
--
--   anon           requests without a JWT, or with the anon key          NOLOGIN
--   authenticated  requests with a user's JWT                            NOLOGIN
--   service_role   requests with the service-role key: bypasses RLS      NOLOGIN BYPASSRLS
--   authenticator  the role PostgREST logs in as; it switches to the role named in the
--                  JWT's `role` claim (SET ROLE), so it holds the three and inherits none
--
-- Like Supabase, every table and function created in `public` afterwards is granted to all
-- three API roles (default privileges below), so a migration that forgets `enable row level
-- security`, or to revoke a function from anon, exposes it here exactly as it would on
-- Supabase; the RLS test (tests/integration/rls.rs) checks every table and token_manager_*
-- function after this file ran again.

\set ON_ERROR_STOP on

do $$
begin
  if not exists (select from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  if not exists (select from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit;
  end if;
end
$$;

-- Keep the attributes right even on a data dir made by an older version of this file.
alter role anon nologin noinherit;
alter role authenticated nologin noinherit;
alter role service_role nologin noinherit bypassrls;
-- Local-only password (PostgREST's db-uri in .state/<profile>/postgrest.conf uses it).
alter role authenticator login noinherit password 'postgres';

grant anon, authenticated, service_role to authenticator;

-- Supabase's statement timeouts for the API roles.
alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';
alter role authenticator set statement_timeout = '8s';

-- Supabase keeps extensions in their own schema, on everyone's search_path.
create schema if not exists extensions;
grant usage on schema extensions to postgres, anon, authenticated, service_role;
create extension if not exists pgcrypto with schema extensions;
alter database postgres set search_path to "$user", public, extensions;

grant usage on schema public to postgres, anon, authenticated, service_role;

alter default privileges for role postgres in schema public
  grant all on tables to anon, authenticated, service_role;
alter default privileges for role postgres in schema public
  grant all on sequences to anon, authenticated, service_role;
alter default privileges for role postgres in schema public
  grant all on functions to anon, authenticated, service_role;

-- Where dbmate records applied migrations: Supabase's own schema for them, outside the API's
-- `public` schema (a table in public would be granted to anon, without RLS).
create schema if not exists supabase_migrations;
