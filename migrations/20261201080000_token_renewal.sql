-- Token renewal: the renew pass's round trips (candidates in one query, results in one call)
-- and renewal state kept in tradovate_tokens.metadata (renewed_at, renewal_count,
-- renew_state, renew_error, renew_attempted_at) while the token stays the same.

-- migrate:up

-- Active tokens whose known expiry lies within the window and not yet past, with ciphertext
-- (the Worker decrypts; never plaintext here). Records a renew run unless p_dry_run.
-- Returns {"run_id": uuid|null, "candidates": [...]}.
create or replace function public.token_manager_begin_renew(p_trigger text, p_window_seconds integer, p_dry_run boolean)
returns jsonb
language plpgsql
set search_path = public
as $$
declare
    v_run uuid;
    v_candidates jsonb;
begin
    if not p_dry_run then
        insert into sync_runs (kind, trigger) values ('renew', p_trigger) returning id into v_run;
    end if;
    select coalesce(jsonb_agg(jsonb_build_object(
               'account_name', t.account_name,
               'main_account', t.main_account,
               'access_token', t.access_token,
               'token_fingerprint', t.token_fingerprint,
               'expires_at', t.expires_at,
               'metadata', t.metadata) order by t.account_name), '[]'::jsonb)
      into v_candidates
      from tradovate_tokens t
     where t.is_active
       and t.expires_at > now()
       and t.expires_at <= now() + make_interval(secs => p_window_seconds);
    return jsonb_build_object('run_id', v_run, 'candidates', v_candidates);
end;
$$;

-- Ends a renew run: writes the renewed rows (each only if the row still holds the token that
-- was renewed: a sync that stored a bot's newer token meanwhile wins), merges the metadata
-- patches of sessions that failed (same condition), and records the run.
-- Returns {"updated": n}.
create or replace function public.token_manager_finish_renew(
    p_run_id uuid, p_rows jsonb, p_marks jsonb, p_stats jsonb, p_error text)
returns jsonb
language plpgsql
set search_path = public
as $$
declare
    v_updated integer := 0;
begin
    update tradovate_tokens t
       set main_account = r.main_account,
           token_type = r.token_type,
           access_token = r.access_token,
           token_length = r.token_length,
           expires_at = r.expires_at,
           metadata = coalesce(r.metadata, '{}'::jsonb),
           token_fingerprint = r.token_fingerprint,
           key_id = r.key_id,
           is_active = true,
           updated_at = now()
      from jsonb_to_recordset(coalesce(p_rows, '[]'::jsonb)) as r(
               account_name text, previous_fingerprint text, main_account text, token_type text,
               access_token text, token_length integer, expires_at timestamptz, metadata jsonb,
               token_fingerprint text, key_id text)
     where t.account_name = r.account_name
       and t.token_fingerprint = r.previous_fingerprint;
    get diagnostics v_updated = row_count;

    update tradovate_tokens t
       set metadata = t.metadata || m.patch
      from jsonb_to_recordset(coalesce(p_marks, '[]'::jsonb)) as m(
               account_name text, fingerprint text, patch jsonb)
     where t.account_name = m.account_name
       and t.token_fingerprint = m.fingerprint;

    update sync_runs
       set status = case when p_error is null then 'succeeded' else 'failed' end,
           finished_at = now(),
           tokens_seen = (p_stats ->> 'tokens_seen')::integer,
           updated = v_updated,
           skipped = (p_stats ->> 'skipped')::integer,
           details = coalesce(p_stats -> 'details', '{}'::jsonb),
           error = p_error
     where id = p_run_id;
    return jsonb_build_object('updated', v_updated);
end;
$$;

-- The renewal side of status: the last renew run and how many active tokens were renewed or
-- refused. Never returns a token.
create or replace function public.token_manager_renew_status()
returns jsonb
language sql
stable
set search_path = public
as $$
    select jsonb_build_object(
        'last_run', (select jsonb_build_object(
                                'run_id', r.id, 'trigger', r.trigger, 'status', r.status,
                                'started_at', r.started_at, 'finished_at', r.finished_at,
                                'tokens_renewed', r.updated, 'error', r.error)
                       from sync_runs r where r.kind = 'renew'
                      order by r.started_at desc limit 1),
        'renewed_tokens', (select count(*) from tradovate_tokens
                            where is_active and metadata ->> 'renew_state' = 'renewed'),
        'renew_failed_tokens', (select count(*) from tradovate_tokens
                                 where is_active and metadata ->> 'renew_state' = 'renew_failed'));
$$;

-- While a row keeps its token (same fingerprint), a rewrite of its metadata (a sync) keeps
-- the renewal state; a new token starts without it.
create or replace function public.token_manager_keep_renewal_state()
returns trigger
language plpgsql
set search_path = public
as $$
begin
    if new.token_fingerprint = old.token_fingerprint then
        new.metadata := coalesce((select jsonb_object_agg(e.key, e.value)
                                    from jsonb_each(old.metadata) e
                                   where e.key in ('renewed_at', 'renewal_count', 'renew_state',
                                                   'renew_error', 'renew_attempted_at')), '{}'::jsonb)
                        || new.metadata;
    end if;
    return new;
end;
$$;

drop trigger if exists tradovate_tokens_keep_renewal_state on public.tradovate_tokens;
create trigger tradovate_tokens_keep_renewal_state
    before update on public.tradovate_tokens
    for each row execute function public.token_manager_keep_renewal_state();

revoke execute on function public.token_manager_begin_renew(text, integer, boolean) from public, anon, authenticated;
revoke execute on function public.token_manager_finish_renew(uuid, jsonb, jsonb, jsonb, text) from public, anon, authenticated;
revoke execute on function public.token_manager_renew_status() from public, anon, authenticated;
revoke execute on function public.token_manager_keep_renewal_state() from public, anon, authenticated;

do $$
begin
    if exists (select 1 from pg_roles where rolname = 'service_role') then
        grant execute on function public.token_manager_begin_renew(text, integer, boolean) to service_role;
        grant execute on function public.token_manager_finish_renew(uuid, jsonb, jsonb, jsonb, text) to service_role;
        grant execute on function public.token_manager_renew_status() to service_role;
    end if;
end;
$$;

-- migrate:down
drop trigger if exists tradovate_tokens_keep_renewal_state on public.tradovate_tokens;
drop function if exists public.token_manager_keep_renewal_state();
drop function if exists public.token_manager_renew_status();
drop function if exists public.token_manager_finish_renew(uuid, jsonb, jsonb, jsonb, text);
drop function if exists public.token_manager_begin_renew(text, integer, boolean);
