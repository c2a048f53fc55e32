-- The API roles anon and authenticated hold no privilege on token-manager's tables and
-- functions: Row Level Security (no policy for them) is no longer the only thing between them
-- and the ciphertexts, and no token_manager_* function is executable by anyone but the service
-- role, whatever the project's default privileges granted when it was created (Supabase grants
-- every new table and function in `public` to anon and authenticated, and PostgreSQL every new
-- function to PUBLIC). A later migration that adds a table or function revokes it the same way;
-- tests/integration/rls.rs checks every table and token_manager_* function in the catalog.

-- migrate:up

do $$
declare
    t regclass;
    f regprocedure;
begin
    for t in
        select c.oid::regclass
          from pg_class c
         where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'v', 'p')
    loop
        execute format('revoke all on table %s from public, anon, authenticated', t);
    end loop;
    for f in
        select p.oid::regprocedure
          from pg_proc p
         where p.pronamespace = 'public'::regnamespace
           and p.proname like 'token\_manager\_%'
    loop
        execute format('revoke all on function %s from public, anon, authenticated', f);
        if exists (select 1 from pg_roles where rolname = 'service_role') then
            execute format('grant execute on function %s to service_role', f);
        end if;
    end loop;
end
$$;

-- migrate:down

-- Supabase's defaults again for the tables (RLS still keeps anon and authenticated out of the
-- rows); the functions stay the service role's.
do $$
declare
    t regclass;
begin
    for t in
        select c.oid::regclass
          from pg_class c
         where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'v', 'p')
    loop
        execute format('grant all on table %s to anon, authenticated', t);
    end loop;
end
$$;
