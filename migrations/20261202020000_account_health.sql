-- Account health (GET /v1/accounts): per token, the facts its state is derived from, in one
-- round trip. Never returns a token (no access_token, no fingerprint).
--
-- last_seen_at: the start of the latest successful sync that saw the token's key in Redis (a
-- healthy sync deactivates every active token whose key is gone, so an active token was seen
-- by the latest sync unless that sync suspected a Redis loss and named the account in
-- details.redis_loss.accounts); for an inactive token, the latest successful sync that
-- finished before it was deactivated. Never earlier than last_synced_at (a write from Redis).
-- missing_in_redis: the token is active, the latest successful sync named it among the keys
-- a suspected Redis loss took, and no successful restore since wrote it back or found it.

-- migrate:up

create or replace function public.token_manager_accounts(p_main_accounts jsonb)
returns jsonb
language sql
stable
set search_path = public
as $$
    with scoped as (
        select t.*
          from tradovate_tokens t
         where p_main_accounts is null
            or t.main_account in (select jsonb_array_elements_text(p_main_accounts))
    ),
    last_sync as (
        select id, started_at, details
          from sync_runs
         where kind = 'sync' and status = 'succeeded'
         order by started_at desc
         limit 1
    ),
    facts as (
        select t.account_name,
               t.main_account,
               coalesce(m.key_type, case when t.account_name = t.main_account then 'main'
                                         else 'sub_account' end) as key_type,
               coalesce(t.metadata ->> 'redis_key', m.redis_key) as redis_key,
               t.token_type,
               t.is_active,
               t.expires_at,
               t.updated_at,
               t.last_synced_at,
               t.is_active and exists (
                   select 1 from last_sync l
                    where coalesce(l.details -> 'redis_loss' -> 'accounts', '[]'::jsonb) ? t.account_name
                      and not exists (
                          select 1 from sync_runs r
                           where r.kind = 'restore' and r.status = 'succeeded'
                             and r.started_at >= l.started_at
                             and (coalesce(r.details -> 'restored', '[]'::jsonb)
                                      @> jsonb_build_array(jsonb_build_object('account', t.account_name))
                                  or coalesce(r.details -> 'already_present', '[]'::jsonb)
                                      @> jsonb_build_array(jsonb_build_object('account', t.account_name))))
               ) as missing_in_redis,
               (select s.started_at
                  from sync_runs s
                 where s.kind = 'sync' and s.status = 'succeeded'
                   and (t.is_active or (s.started_at < t.updated_at and s.finished_at < t.updated_at))
                   and not coalesce(s.details -> 'redis_loss' -> 'accounts', '[]'::jsonb) ? t.account_name
                 order by s.started_at desc
                 limit 1) as seen_by_sync,
               rd.read_at as last_read_at,
               rd.outcome as last_read_outcome,
               rd.key_name as last_read_key,
               t.metadata ->> 'renew_state' as renew_state,
               t.metadata ->> 'renew_error' as renew_error,
               t.metadata ->> 'renewed_at' as renewed_at,
               t.metadata ->> 'renew_attempted_at' as renew_attempted_at,
               case when jsonb_typeof(t.metadata -> 'renewal_count') = 'number'
                    then (t.metadata ->> 'renewal_count')::bigint end as renewal_count
          from scoped t
          left join lateral (
                   select k.key_type, k.redis_key from token_key_mappings k
                    where k.account_name = t.account_name
                    order by (k.key_type = 'main') desc, k.redis_key
                    limit 1) m on true
          left join lateral (
                   select r.read_at, r.outcome, r.key_name from token_reads r
                    where r.account_name = t.account_name
                    order by r.read_at desc
                    limit 1) rd on true
    )
    select jsonb_build_object(
        'now', now(),
        'last_sync_at', (select started_at from last_sync),
        'accounts', coalesce((select jsonb_agg(jsonb_build_object(
                'account_name', f.account_name,
                'main_account', f.main_account,
                'key_type', f.key_type,
                'redis_key', f.redis_key,
                'token_type', f.token_type,
                'is_active', f.is_active,
                'expires_at', f.expires_at,
                'updated_at', f.updated_at,
                'last_synced_at', f.last_synced_at,
                'last_seen_at', case when f.seen_by_sync is null then f.last_synced_at
                                     when f.last_synced_at is null then f.seen_by_sync
                                     else greatest(f.seen_by_sync, f.last_synced_at) end,
                'missing_in_redis', f.missing_in_redis,
                'last_read_at', f.last_read_at,
                'last_read_outcome', f.last_read_outcome,
                'last_read_key', f.last_read_key,
                'renew_state', f.renew_state,
                'renew_error', f.renew_error,
                'renewed_at', f.renewed_at,
                'renew_attempted_at', f.renew_attempted_at,
                'renewal_count', f.renewal_count)
            order by f.main_account, f.key_type <> 'main', f.account_name) from facts f), '[]'::jsonb));
$$;

revoke execute on function public.token_manager_accounts(jsonb) from public, anon, authenticated;

do $$
begin
    if exists (select 1 from pg_roles where rolname = 'service_role') then
        grant execute on function public.token_manager_accounts(jsonb) to service_role;
    end if;
end;
$$;

-- migrate:down

drop function if exists public.token_manager_accounts(jsonb);
