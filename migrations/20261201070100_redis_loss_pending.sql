-- A suspected Redis loss lasts until a restore has written every token back: a sync after a
-- partial restore (the subrequest budget ran out, Upstash failed, the invocation died, or
-- RESTORE_ON_LOSS is off) must not deactivate the tokens still missing just because they are
-- now fewer than REDIS_LOSS_THRESHOLD. begin_sync says whether such a loss is pending.

-- migrate:up

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

-- migrate:down

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
