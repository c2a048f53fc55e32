-- Status without scanning Redis, limited to a read key's main accounts; sync_runs pruned by
-- the daily cleanup after SYNC_RUNS_RETENTION_DAYS.

-- migrate:up

-- Everything the status action shows, in one round trip, for every account or only those of
-- the main accounts in p_main_accounts (a JSON array of names). Redis's figure is what the
-- last successful sync counted (its details.redis_accounts / redis_by_main_account): status
-- never scans Redis. With the Redis-loss state and the last restore (sync_runs.outcome,
-- restored and already_present come from migration 20261201070000; plpgsql resolves them
-- when the function runs). Never returns a token. The two-argument version is left to older
-- callers.
create or replace function public.token_manager_status(
    p_expiring_within_seconds integer, p_recent_limit integer, p_main_accounts jsonb)
returns jsonb
language plpgsql
stable
set search_path = public
as $$
begin
    return (
    with scoped as (
        select *
          from tradovate_tokens t
         where p_main_accounts is null
            or t.main_account in (select jsonb_array_elements_text(p_main_accounts))
    ),
    done as (
        select started_at, outcome, details from sync_runs
         where kind = 'sync' and status = 'succeeded'
    ),
    last_done as (select * from done order by started_at desc limit 1),
    counted as (
        select *
          from sync_runs
         where kind = 'sync' and status = 'succeeded' and details ? 'redis_accounts'
         order by started_at desc
         limit 1
    )
    select jsonb_build_object(
        'supabase_tokens', (select count(*) from scoped),
        'active_tokens', (select count(*) from scoped where is_active),
        'expiring_soon', (select count(*) from scoped
                           where is_active
                             and expires_at < now() + make_interval(secs => p_expiring_within_seconds)),
        'last_updated', (select max(updated_at) from scoped),
        'last_sync', (select jsonb_build_object(
                                 'run_id', r.id, 'trigger', r.trigger, 'status', r.status,
                                 'started_at', r.started_at, 'finished_at', r.finished_at,
                                 -- A scoped caller does not learn how many tokens exist in all.
                                 'tokens_synced', case when p_main_accounts is null then r.tokens_seen end,
                                 'error', r.error)
                        from sync_runs r where r.kind = 'sync'
                       order by r.started_at desc limit 1),
        'redis_tokens', (select case
                                    when p_main_accounts is null then (c.details ->> 'redis_accounts')::bigint
                                    else (select coalesce(sum(e.value::bigint), 0)
                                            from jsonb_each_text(c.details -> 'redis_by_main_account') e
                                           where e.key in (select jsonb_array_elements_text(p_main_accounts)))
                                end
                           from counted c),
        'redis_counted_at', (select c.finished_at from counted c),
        'redis_loss', (select jsonb_build_object(
                                  'missing', case when p_main_accounts is null
                                                  then coalesce((l.details -> 'redis_loss' ->> 'missing')::integer, 0)
                                                  else 0 end,
                                  'since', (select min(d.started_at) from done d
                                             where d.started_at > coalesce(
                                                   (select max(n.started_at) from done n
                                                     where n.outcome is distinct from 'redis_loss_suspected'),
                                                   '-infinity'::timestamptz)))
                         from last_done l where l.outcome = 'redis_loss_suspected'),
        'last_restore', (select jsonb_build_object(
                                    'run_id', r.id, 'trigger', r.trigger, 'status', r.status,
                                    'started_at', r.started_at, 'finished_at', r.finished_at,
                                    'restored', case when p_main_accounts is null then r.restored end,
                                    'already_present', case when p_main_accounts is null then r.already_present end,
                                    'skipped', case when p_main_accounts is null then r.skipped end,
                                    'error', r.error)
                           from sync_runs r where r.kind = 'restore'
                          order by r.started_at desc limit 1),
        'recent_tokens', coalesce((select jsonb_agg(x) from (
                                 select account_name, main_account, expires_at, is_active
                                   from scoped
                                  order by is_active desc, updated_at desc, account_name
                                  limit p_recent_limit) x), '[]'::jsonb))
    );
end;
$$;

-- Deletes finished runs that started more than p_retention_days days ago, keeping the latest
-- sync run and the latest successful one (status reads them). Returns {"pruned": n}.
create or replace function public.token_manager_prune_runs(p_retention_days integer)
returns jsonb
language plpgsql
set search_path = public
as $$
declare
    v_pruned integer;
begin
    delete from sync_runs r
     where r.status <> 'running'
       and r.started_at < now() - make_interval(days => p_retention_days)
       and r.id is distinct from (select id from sync_runs where kind = 'sync'
                                   order by started_at desc limit 1)
       and r.id is distinct from (select id from sync_runs where kind = 'sync' and status = 'succeeded'
                                   order by started_at desc limit 1);
    get diagnostics v_pruned = row_count;
    return jsonb_build_object('pruned', v_pruned);
end;
$$;

revoke execute on function public.token_manager_status(integer, integer, jsonb) from public, anon, authenticated;
revoke execute on function public.token_manager_prune_runs(integer) from public, anon, authenticated;

do $$
begin
    if exists (select 1 from pg_roles where rolname = 'service_role') then
        grant execute on function public.token_manager_status(integer, integer, jsonb) to service_role;
        grant execute on function public.token_manager_prune_runs(integer) to service_role;
    end if;
end;
$$;

-- migrate:down
drop function if exists public.token_manager_prune_runs(integer);
drop function if exists public.token_manager_status(integer, integer, jsonb);
