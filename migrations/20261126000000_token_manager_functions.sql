-- The Worker's round trips: each job is one or a few RPC calls instead of one request per
-- token. Only the service role may execute them (revoked from public, anon, authenticated).

-- migrate:up

-- Starts a sync run and returns its id with what Supabase holds, so the Worker encrypts and
-- sends only new or changed tokens.
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

-- Upserts one batch of new or changed tokens (ciphertext only) and their key mappings.
-- Returns {"inserted": n, "updated": n}.
create or replace function public.token_manager_apply_sync(p_tokens jsonb)
returns jsonb
language sql
set search_path = public
as $$
    with input as (
        select *
          from jsonb_to_recordset(p_tokens) as x(
               account_name text, main_account text, token_type text, access_token text,
               token_length integer, expires_at timestamptz, metadata jsonb,
               token_fingerprint text, key_id text, redis_key text, key_type text)
    ),
    upserted as (
        insert into tradovate_tokens as t
               (account_name, main_account, token_type, access_token, token_length, expires_at,
                metadata, token_fingerprint, key_id, is_active, updated_at, last_synced_at)
        select account_name, main_account, token_type, access_token, token_length, expires_at,
               coalesce(metadata, '{}'::jsonb), token_fingerprint, key_id, true, now(), now()
          from input
        on conflict (account_name) do update
           set main_account = excluded.main_account,
               token_type = excluded.token_type,
               access_token = excluded.access_token,
               token_length = excluded.token_length,
               expires_at = excluded.expires_at,
               metadata = excluded.metadata,
               token_fingerprint = excluded.token_fingerprint,
               key_id = excluded.key_id,
               is_active = true,
               updated_at = now(),
               last_synced_at = now()
        returning (xmax = 0) as inserted
    ),
    mapped as (
        insert into token_key_mappings (main_account, redis_key, key_type, account_name)
        select main_account, redis_key, key_type, account_name from input
        on conflict (redis_key) do update
           set main_account = excluded.main_account,
               key_type = excluded.key_type,
               account_name = excluded.account_name
        returning 1
    )
    select jsonb_build_object(
               'inserted', count(*) filter (where inserted),
               'updated', count(*) filter (where not inserted),
               'mappings', (select count(*) from mapped))
      from upserted;
$$;

-- Ends a sync run: on success deactivates the tokens whose keys left Redis; records the
-- outcome either way. Returns {"deactivated": n}.
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

-- Marks every active token whose expires_at has passed as inactive and records the run.
-- Returns {"run_id": uuid, "cleaned": n}.
create or replace function public.token_manager_cleanup(p_trigger text)
returns jsonb
language plpgsql
set search_path = public
as $$
declare
    v_run uuid;
    v_cleaned integer;
begin
    insert into sync_runs (kind, trigger) values ('cleanup', p_trigger) returning id into v_run;
    update tradovate_tokens
       set is_active = false, updated_at = now()
     where is_active and expires_at < now();
    get diagnostics v_cleaned = row_count;
    update sync_runs set status = 'succeeded', finished_at = now(), cleaned = v_cleaned where id = v_run;
    return jsonb_build_object('run_id', v_run, 'cleaned', v_cleaned);
end;
$$;

-- Everything the status action shows, in one round trip. Never returns a token.
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

-- One token row (ciphertext) by exact account name, or null. A function argument, unlike a
-- query-string filter, cannot change meaning whatever characters the name holds.
create or replace function public.token_manager_get(p_account text)
returns jsonb
language sql
stable
set search_path = public
as $$
    select to_jsonb(x) from (
        select account_name, main_account, token_type, access_token, token_length, expires_at,
               is_active, metadata, updated_at
          from tradovate_tokens where account_name = p_account) x;
$$;

revoke execute on function public.token_manager_begin_sync(text) from public, anon, authenticated;
revoke execute on function public.token_manager_apply_sync(jsonb) from public, anon, authenticated;
revoke execute on function public.token_manager_finish_sync(uuid, boolean, jsonb, jsonb, text) from public, anon, authenticated;
revoke execute on function public.token_manager_cleanup(text) from public, anon, authenticated;
revoke execute on function public.token_manager_status(integer, integer) from public, anon, authenticated;
revoke execute on function public.token_manager_get(text) from public, anon, authenticated;

do $$
begin
    if exists (select 1 from pg_roles where rolname = 'service_role') then
        grant execute on function public.token_manager_begin_sync(text) to service_role;
        grant execute on function public.token_manager_apply_sync(jsonb) to service_role;
        grant execute on function public.token_manager_finish_sync(uuid, boolean, jsonb, jsonb, text) to service_role;
        grant execute on function public.token_manager_cleanup(text) to service_role;
        grant execute on function public.token_manager_status(integer, integer) to service_role;
        grant execute on function public.token_manager_get(text) to service_role;
    end if;
end;
$$;

-- migrate:down
drop function if exists public.token_manager_get(text);
drop function if exists public.token_manager_status(integer, integer);
drop function if exists public.token_manager_cleanup(text);
drop function if exists public.token_manager_finish_sync(uuid, boolean, jsonb, jsonb, text);
drop function if exists public.token_manager_apply_sync(jsonb);
drop function if exists public.token_manager_begin_sync(text);
