-- Fixed round trips for a sync: 2 Supabase calls (begin; last batch + finish) instead of 3, and
-- a sync that releases its Redis lock in the pipeline of its last value batch, before writing to
-- Supabase. What the Redis lock no longer covers (the writes after that pipeline) a lease in
-- Postgres covers: begin_sync records the run with `lock_expires_at` (now + the lock's TTL) and
-- refuses to start while another sync's lease is live; begin_restore refuses a real restore
-- meanwhile; finish_sync, which now also upserts the last batch, ends the lease, and refuses to
-- write when a newer sync or restore started (a run that outlived its lease: a fencing check).
-- Begins and finishes are serialised by one transaction-level advisory lock.
--
-- begin_sync(text) and finish_sync(uuid, boolean, jsonb, jsonb, text) are replaced (dropped):
-- nothing calls them any more.

-- migrate:up

alter table public.sync_runs add column if not exists lock_expires_at timestamptz;
create index if not exists sync_runs_running_idx on public.sync_runs (kind) where status = 'running';

drop function if exists public.token_manager_begin_sync(text);
drop function if exists public.token_manager_finish_sync(uuid, boolean, jsonb, jsonb, text);

-- Starts a sync run holding the sync lease for p_lock_ms (the Redis lock's TTL) and returns
-- every stored row's fingerprint and state, and whether a Redis loss is pending. While another
-- sync's lease is live it starts nothing and answers {"run_id": null, "locked_until": t}.
create or replace function public.token_manager_begin_sync(p_trigger text, p_lock_ms bigint)
returns jsonb
language plpgsql
set search_path = public
as $$
declare
    v_run uuid;
    v_tokens jsonb;
    v_loss_pending boolean;
    v_locked_until timestamptz;
begin
    perform pg_advisory_xact_lock(hashtext('token_manager_sync_lease'));
    select max(lock_expires_at) into v_locked_until
      from sync_runs
     where kind = 'sync' and status = 'running' and lock_expires_at > clock_timestamp();
    if v_locked_until is not null then
        return jsonb_build_object('run_id', null, 'locked_until', v_locked_until);
    end if;
    -- Before this run's row exists: the last completed sync suspected a loss, and no restore
    -- has completed since (it was off, failed, ran out of budget or died mid-way).
    select exists (
               select 1
                 from (select started_at, outcome from sync_runs
                        where kind = 'sync' and status = 'succeeded'
                        order by started_at desc limit 1) l
                where l.outcome = 'redis_loss_suspected'
                  and not exists (select 1 from sync_runs r
                                   where r.kind = 'restore' and r.status = 'succeeded'
                                     and r.outcome = 'restored' and r.started_at > l.started_at))
      into v_loss_pending;
    -- clock_timestamp(), not now(): after the advisory lock, so runs started later always
    -- compare later (the fencing check in finish_sync relies on it).
    insert into sync_runs (kind, trigger, started_at, lock_expires_at)
    values ('sync', p_trigger, clock_timestamp(),
            clock_timestamp() + make_interval(secs => greatest(p_lock_ms, 1000) / 1000.0))
    returning id into v_run;
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
    return jsonb_build_object('run_id', v_run, 'tokens', v_tokens, 'loss_pending', v_loss_pending);
end;
$$;

-- Ends a sync run and its lease. When it succeeded: upserts p_tokens (the last batch, as
-- token_manager_apply_sync does), deactivates p_deactivate, and records p_stats, whose inserted
-- and updated counts cover the earlier batches (this call adds its own batch's); refuses
-- (raises) when the run is no longer running or a newer sync or restore has started, writing
-- nothing. When it failed: records p_error and writes nothing else.
-- Returns {"deactivated": n, "inserted": n, "updated": n} (this call's batch).
create or replace function public.token_manager_finish_sync(
    p_run_id uuid, p_succeeded boolean, p_tokens jsonb, p_deactivate jsonb, p_stats jsonb,
    p_error text)
returns jsonb
language plpgsql
set search_path = public
as $$
declare
    v_deactivated integer := 0;
    v_started timestamptz;
    v_applied jsonb := '{"inserted": 0, "updated": 0}'::jsonb;
begin
    if p_succeeded then
        perform pg_advisory_xact_lock(hashtext('token_manager_sync_lease'));
        select started_at into v_started
          from sync_runs where id = p_run_id and kind = 'sync' and status = 'running';
        if not found then
            raise exception 'sync run % is not running any more; nothing was written', p_run_id
                using hint = 'run the sync again';
        end if;
        if exists (select 1 from sync_runs
                    where kind in ('sync', 'restore') and id <> p_run_id
                      and started_at > v_started) then
            raise exception 'a newer sync or restore started while this sync ran (it outlived SYNC_LOCK_TTL_SECONDS); its last batch and deactivations were not written'
                using hint = 'raise SYNC_LOCK_TTL_SECONDS if syncs take that long';
        end if;
        if jsonb_array_length(coalesce(p_tokens, '[]'::jsonb)) > 0 then
            v_applied := token_manager_apply_sync(p_tokens);
        end if;
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
           lock_expires_at = null,
           tokens_seen = (p_stats ->> 'tokens_seen')::integer,
           inserted = case when p_succeeded then coalesce((p_stats ->> 'inserted')::integer, 0)
                                               + (v_applied ->> 'inserted')::integer end,
           updated = case when p_succeeded then coalesce((p_stats ->> 'updated')::integer, 0)
                                              + (v_applied ->> 'updated')::integer end,
           unchanged = (p_stats ->> 'unchanged')::integer,
           skipped = (p_stats ->> 'skipped')::integer,
           deactivated = v_deactivated,
           details = coalesce(p_stats -> 'details', '{}'::jsonb),
           error = p_error
     where id = p_run_id;
    return jsonb_build_object('deactivated', v_deactivated,
                              'inserted', (v_applied ->> 'inserted')::integer,
                              'updated', (v_applied ->> 'updated')::integer);
end;
$$;

-- As before, and a real restore (p_record) starts nothing while a sync's lease is live: it
-- answers {"run_id": null, "locked_until": t, "tokens": [], "inactive": 0}.
create or replace function public.token_manager_begin_restore(p_trigger text, p_record boolean)
returns jsonb
language plpgsql
set search_path = public
as $$
declare
    v_run uuid;
    v_locked_until timestamptz;
begin
    if p_record then
        perform pg_advisory_xact_lock(hashtext('token_manager_sync_lease'));
        select max(lock_expires_at) into v_locked_until
          from sync_runs
         where kind = 'sync' and status = 'running' and lock_expires_at > clock_timestamp();
        if v_locked_until is not null then
            return jsonb_build_object('run_id', null, 'locked_until', v_locked_until,
                                      'tokens', '[]'::jsonb, 'inactive', 0);
        end if;
        insert into sync_runs (kind, trigger, started_at)
        values ('restore', p_trigger, clock_timestamp()) returning id into v_run;
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

revoke execute on function public.token_manager_begin_sync(text, bigint) from public, anon, authenticated;
revoke execute on function public.token_manager_finish_sync(uuid, boolean, jsonb, jsonb, jsonb, text) from public, anon, authenticated;

do $$
begin
    if exists (select 1 from pg_roles where rolname = 'service_role') then
        grant execute on function public.token_manager_begin_sync(text, bigint) to service_role;
        grant execute on function public.token_manager_finish_sync(uuid, boolean, jsonb, jsonb, jsonb, text) to service_role;
    end if;
end;
$$;

-- migrate:down

drop function if exists public.token_manager_finish_sync(uuid, boolean, jsonb, jsonb, jsonb, text);
drop function if exists public.token_manager_begin_sync(text, bigint);

create or replace function public.token_manager_begin_sync(p_trigger text)
returns jsonb
language plpgsql
set search_path = public
as $$
declare
    v_run uuid;
    v_tokens jsonb;
    v_loss_pending boolean;
begin
    select exists (
               select 1
                 from (select started_at, outcome from sync_runs
                        where kind = 'sync' and status = 'succeeded'
                        order by started_at desc limit 1) l
                where l.outcome = 'redis_loss_suspected'
                  and not exists (select 1 from sync_runs r
                                   where r.kind = 'restore' and r.status = 'succeeded'
                                     and r.outcome = 'restored' and r.started_at > l.started_at))
      into v_loss_pending;
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
    return jsonb_build_object('run_id', v_run, 'tokens', v_tokens, 'loss_pending', v_loss_pending);
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

revoke execute on function public.token_manager_begin_sync(text) from public, anon, authenticated;
revoke execute on function public.token_manager_finish_sync(uuid, boolean, jsonb, jsonb, text) from public, anon, authenticated;

do $$
begin
    if exists (select 1 from pg_roles where rolname = 'service_role') then
        grant execute on function public.token_manager_begin_sync(text) to service_role;
        grant execute on function public.token_manager_finish_sync(uuid, boolean, jsonb, jsonb, text) to service_role;
    end if;
end;
$$;

drop index if exists public.sync_runs_running_idx;
alter table public.sync_runs drop column if exists lock_expires_at;
