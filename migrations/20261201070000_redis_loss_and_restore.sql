-- Redis loss and restore: a sync that suspects Redis lost its keys deactivates nothing and
-- says so (sync_runs.outcome); a restore writes active tokens back to Redis from the rows.
-- A JSON value's original bytes are kept sealed in metadata.redis_value (ciphertext only, like
-- metadata.md_access_token; the row's fingerprint covers it), so a restore writes back exactly
-- what the bot wrote.

-- migrate:up

alter table public.tradovate_tokens
    add constraint tradovate_tokens_redis_value_sealed
    check (metadata ->> 'redis_value' is null or metadata ->> 'redis_value' like 'v2:%');

alter table public.sync_runs add column if not exists outcome text;
alter table public.sync_runs add column if not exists restored integer;
alter table public.sync_runs add column if not exists already_present integer;
alter table public.sync_runs drop constraint if exists sync_runs_outcome_check;
alter table public.sync_runs add constraint sync_runs_outcome_check
    check (outcome in ('synced', 'redis_loss_suspected', 'restored', 'partial'));

-- As before, plus when each row's key's TTL runs out as the row's last write saw it (keys whose
-- TTL ran out are no sign of a Redis loss).
create or replace function public.token_manager_begin_sync(p_trigger text)
returns jsonb
language plpgsql
set search_path = public
as $$
declare
    v_run uuid;
    v_tokens jsonb;
begin
    insert into sync_runs (kind, trigger) values ('sync', p_trigger) returning id into v_run;
    select coalesce(jsonb_object_agg(t.account_name, jsonb_build_object(
               'fingerprint', t.token_fingerprint,
               'is_active', t.is_active,
               'expires_at', t.expires_at,
               'key_expires_at', case when jsonb_typeof(t.metadata -> 'redis_ttl_ms') = 'number'
                                      then t.last_synced_at + make_interval(secs => least(
                                           (t.metadata ->> 'redis_ttl_ms')::double precision, 1e12) / 1000)
                                 end,
               'main_account', t.main_account,
               'token_type', t.token_type,
               'mapped', exists (select 1 from token_key_mappings m where m.account_name = t.account_name))),
           '{}'::jsonb)
      into v_tokens
      from tradovate_tokens t;
    return jsonb_build_object('run_id', v_run, 'tokens', v_tokens);
end;
$$;

-- As before, plus the run's outcome (p_stats.outcome: synced or redis_loss_suspected).
create or replace function public.token_manager_finish_sync(
    p_run_id uuid, p_succeeded boolean, p_deactivate jsonb, p_stats jsonb, p_error text)
returns jsonb
language plpgsql
set search_path = public
as $$
declare
    v_deactivated integer := 0;
begin
    if p_succeeded then
        update tradovate_tokens
           set is_active = false, updated_at = now()
         where is_active
           and account_name in (select jsonb_array_elements_text(coalesce(p_deactivate, '[]'::jsonb)));
        get diagnostics v_deactivated = row_count;
    end if;
    update sync_runs
       set status = case when p_succeeded then 'succeeded' else 'failed' end,
           outcome = case when p_succeeded then coalesce(p_stats ->> 'outcome', 'synced') end,
           finished_at = now(),
           tokens_seen = (p_stats ->> 'tokens_seen')::integer,
           inserted = (p_stats ->> 'inserted')::integer,
           updated = (p_stats ->> 'updated')::integer,
           unchanged = (p_stats ->> 'unchanged')::integer,
           skipped = (p_stats ->> 'skipped')::integer,
           deactivated = v_deactivated,
           details = coalesce(p_stats -> 'details', '{}'::jsonb),
           error = p_error
     where id = p_run_id;
    return jsonb_build_object('deactivated', v_deactivated);
end;
$$;

-- Starts a restore: records a running restore run unless p_record is false (a dry run), and
-- returns every active token row (ciphertext) in account order with the number of inactive
-- rows, which a restore never writes. Returns {"run_id": uuid|null, "tokens": [...], "inactive": n}.
create or replace function public.token_manager_begin_restore(p_trigger text, p_record boolean)
returns jsonb
language plpgsql
set search_path = public
as $$
declare
    v_run uuid;
begin
    if p_record then
        insert into sync_runs (kind, trigger) values ('restore', p_trigger) returning id into v_run;
    end if;
    return jsonb_build_object(
        'run_id', v_run,
        'tokens', coalesce((select jsonb_agg(jsonb_build_object(
                                'account_name', t.account_name,
                                'access_token', t.access_token,
                                'expires_at', t.expires_at,
                                'metadata', t.metadata) order by t.account_name)
                              from tradovate_tokens t where t.is_active), '[]'::jsonb),
        'inactive', (select count(*) from tradovate_tokens where not is_active));
end;
$$;

-- Ends a restore run with its counts and lists (account names, keys and reasons, never a
-- value). Returns {"run_id": uuid}.
create or replace function public.token_manager_finish_restore(
    p_run_id uuid, p_succeeded boolean, p_stats jsonb, p_error text)
returns jsonb
language sql
set search_path = public
as $$
    update sync_runs
       set status = case when p_succeeded then 'succeeded' else 'failed' end,
           outcome = case when not p_succeeded then null
                          when coalesce((p_stats ->> 'deferred')::integer, 0) > 0 then 'partial'
                          else 'restored' end,
           finished_at = now(),
           tokens_seen = (p_stats ->> 'tokens_seen')::integer,
           restored = (p_stats ->> 'restored')::integer,
           already_present = (p_stats ->> 'already_present')::integer,
           skipped = (p_stats ->> 'skipped')::integer,
           details = coalesce(p_stats -> 'details', '{}'::jsonb),
           error = p_error
     where id = p_run_id
    returning jsonb_build_object('run_id', id);
$$;

-- As before, plus the Redis loss state (from the last completed sync: whether it suspected a
-- loss, how many keys were missing, and since when syncs have suspected it) and the last
-- restore run. Never returns a token.
create or replace function public.token_manager_status(p_expiring_within_seconds integer, p_recent_limit integer)
returns jsonb
language sql
stable
set search_path = public
as $$
    with done as (
        select started_at, outcome, details from sync_runs
         where kind = 'sync' and status = 'succeeded'
    ),
    last_done as (select * from done order by started_at desc limit 1)
    select jsonb_build_object(
        'supabase_tokens', (select count(*) from tradovate_tokens),
        'active_tokens', (select count(*) from tradovate_tokens where is_active),
        'expiring_soon', (select count(*) from tradovate_tokens
                           where is_active
                             and expires_at < now() + make_interval(secs => p_expiring_within_seconds)),
        'last_updated', (select max(updated_at) from tradovate_tokens),
        'last_sync', (select jsonb_build_object(
                                 'run_id', r.id, 'trigger', r.trigger, 'status', r.status,
                                 'started_at', r.started_at, 'finished_at', r.finished_at,
                                 'tokens_synced', r.tokens_seen, 'error', r.error)
                        from sync_runs r where r.kind = 'sync'
                       order by r.started_at desc limit 1),
        'redis_loss', (select jsonb_build_object(
                                  'missing', coalesce((l.details -> 'redis_loss' ->> 'missing')::integer, 0),
                                  'since', (select min(d.started_at) from done d
                                             where d.started_at > coalesce(
                                                   (select max(n.started_at) from done n
                                                     where n.outcome is distinct from 'redis_loss_suspected'),
                                                   '-infinity'::timestamptz)))
                         from last_done l where l.outcome = 'redis_loss_suspected'),
        'last_restore', (select jsonb_build_object(
                                    'run_id', r.id, 'trigger', r.trigger, 'status', r.status,
                                    'started_at', r.started_at, 'finished_at', r.finished_at,
                                    'restored', r.restored, 'already_present', r.already_present,
                                    'skipped', r.skipped, 'error', r.error)
                           from sync_runs r where r.kind = 'restore'
                          order by r.started_at desc limit 1),
        'recent_tokens', coalesce((select jsonb_agg(x) from (
                                 select account_name, main_account, expires_at, is_active
                                   from tradovate_tokens
                                  order by is_active desc, updated_at desc, account_name
                                  limit p_recent_limit) x), '[]'::jsonb),
        'active_accounts', coalesce((select jsonb_agg(account_name order by account_name)
                                       from tradovate_tokens where is_active), '[]'::jsonb));
$$;

revoke execute on function public.token_manager_begin_restore(text, boolean) from public, anon, authenticated;
revoke execute on function public.token_manager_finish_restore(uuid, boolean, jsonb, text) from public, anon, authenticated;

do $$
begin
    if exists (select 1 from pg_roles where rolname = 'service_role') then
        grant execute on function public.token_manager_begin_restore(text, boolean) to service_role;
        grant execute on function public.token_manager_finish_restore(uuid, boolean, jsonb, text) to service_role;
    end if;
end;
$$;

-- migrate:down

drop function if exists public.token_manager_finish_restore(uuid, boolean, jsonb, text);
drop function if exists public.token_manager_begin_restore(text, boolean);
alter table public.sync_runs drop constraint if exists sync_runs_outcome_check;
alter table public.sync_runs drop column if exists already_present;
alter table public.sync_runs drop column if exists restored;
alter table public.sync_runs drop column if exists outcome;
alter table public.tradovate_tokens drop constraint if exists tradovate_tokens_redis_value_sealed;

-- The earlier definitions, which know nothing of outcome and restore.
create or replace function public.token_manager_begin_sync(p_trigger text)
returns jsonb
language plpgsql
set search_path = public
as $$
declare
    v_run uuid;
    v_tokens jsonb;
begin
    insert into sync_runs (kind, trigger) values ('sync', p_trigger) returning id into v_run;
    select coalesce(jsonb_object_agg(t.account_name, jsonb_build_object(
               'fingerprint', t.token_fingerprint,
               'is_active', t.is_active,
               'expires_at', t.expires_at,
               'main_account', t.main_account,
               'token_type', t.token_type,
               'mapped', exists (select 1 from token_key_mappings m where m.account_name = t.account_name))),
           '{}'::jsonb)
      into v_tokens
      from tradovate_tokens t;
    return jsonb_build_object('run_id', v_run, 'tokens', v_tokens);
end;
$$;

create or replace function public.token_manager_finish_sync(
    p_run_id uuid, p_succeeded boolean, p_deactivate jsonb, p_stats jsonb, p_error text)
returns jsonb
language plpgsql
set search_path = public
as $$
declare
    v_deactivated integer := 0;
begin
    if p_succeeded then
        update tradovate_tokens
           set is_active = false, updated_at = now()
         where is_active
           and account_name in (select jsonb_array_elements_text(coalesce(p_deactivate, '[]'::jsonb)));
        get diagnostics v_deactivated = row_count;
    end if;
    update sync_runs
       set status = case when p_succeeded then 'succeeded' else 'failed' end,
           finished_at = now(),
           tokens_seen = (p_stats ->> 'tokens_seen')::integer,
           inserted = (p_stats ->> 'inserted')::integer,
           updated = (p_stats ->> 'updated')::integer,
           unchanged = (p_stats ->> 'unchanged')::integer,
           skipped = (p_stats ->> 'skipped')::integer,
           deactivated = v_deactivated,
           details = coalesce(p_stats -> 'details', '{}'::jsonb),
           error = p_error
     where id = p_run_id;
    return jsonb_build_object('deactivated', v_deactivated);
end;
$$;

create or replace function public.token_manager_status(p_expiring_within_seconds integer, p_recent_limit integer)
returns jsonb
language sql
stable
set search_path = public
as $$
    select jsonb_build_object(
        'supabase_tokens', (select count(*) from tradovate_tokens),
        'active_tokens', (select count(*) from tradovate_tokens where is_active),
        'expiring_soon', (select count(*) from tradovate_tokens
                           where is_active
                             and expires_at < now() + make_interval(secs => p_expiring_within_seconds)),
        'last_updated', (select max(updated_at) from tradovate_tokens),
        'last_sync', (select jsonb_build_object(
                                 'run_id', r.id, 'trigger', r.trigger, 'status', r.status,
                                 'started_at', r.started_at, 'finished_at', r.finished_at,
                                 'tokens_synced', r.tokens_seen, 'error', r.error)
                        from sync_runs r where r.kind = 'sync'
                       order by r.started_at desc limit 1),
        'recent_tokens', coalesce((select jsonb_agg(x) from (
                                 select account_name, main_account, expires_at, is_active
                                   from tradovate_tokens
                                  order by is_active desc, updated_at desc, account_name
                                  limit p_recent_limit) x), '[]'::jsonb),
        'active_accounts', coalesce((select jsonb_agg(account_name order by account_name)
                                       from tradovate_tokens where is_active), '[]'::jsonb));
$$;
