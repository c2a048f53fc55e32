-- A get in one round trip: token_manager_get_recorded reads one token (only within the
-- caller's main accounts, when it has a scope) and appends the read to the audit trail in
-- the same call, so a get costs the Worker one subrequest instead of two (the read, then the
-- audit row). The outcome is decided here exactly as the Worker decides it: 404 when there
-- is no such token in scope, 410 when it is inactive or expired at p_now, else 200. A failed
-- audit insert never fails the read: it answers "recorded": false, and the Worker decides
-- (AUDIT_REQUIRED withholds the token). Unless p_durable (AUDIT_REQUIRED), the transaction
-- commits without waiting for its WAL flush (synchronous_commit off, this transaction only):
-- the answer does not wait for the disk, and a database crash can lose at most the last
-- fraction of a second of audit rows -- no weaker than the row written after the answer that
-- this replaces, which a stopped isolate could also lose.

-- migrate:up

create or replace function public.token_manager_get_recorded(
    p_account text,
    p_mains text[],
    p_now timestamptz,
    p_read jsonb,
    p_durable boolean default true
)
returns jsonb
language plpgsql
set search_path = public
as $$
declare
    v_token jsonb;
    v_outcome smallint;
    v_recorded boolean := false;
begin
    select to_jsonb(x) into v_token from (
        select account_name, main_account, token_type, access_token, token_length, expires_at,
               is_active, metadata, updated_at
          from tradovate_tokens
         where account_name = p_account
           and (p_mains is null or main_account = any (p_mains))) x;
    v_outcome := case
        when v_token is null then 404
        when not (v_token->>'is_active')::boolean then 410
        when (v_token->>'expires_at')::timestamptz <= p_now then 410
        else 200
    end;
    if p_read is not null then
        if not coalesce(p_durable, true) then
            perform set_config('synchronous_commit', 'off', true);
        end if;
        begin
            insert into token_reads (read_at, account_name, outcome, key_name, client_ip, user_agent)
            values (coalesce((p_read->>'read_at')::timestamptz, now()),
                    left(coalesce(p_read->>'account_name', p_account), 256), v_outcome,
                    p_read->>'key_name', left(p_read->>'client_ip', 64),
                    left(p_read->>'user_agent', 512));
            v_recorded := true;
        exception when others then
            v_recorded := false;
        end;
    end if;
    return jsonb_build_object('token', v_token, 'outcome', v_outcome, 'recorded', v_recorded);
end;
$$;

revoke execute on function public.token_manager_get_recorded(text, text[], timestamptz, jsonb, boolean)
    from public, anon, authenticated;

do $$
begin
    if exists (select 1 from pg_roles where rolname = 'service_role') then
        grant execute on function public.token_manager_get_recorded(text, text[], timestamptz, jsonb, boolean)
            to service_role;
    end if;
end;
$$;

-- migrate:down

drop function if exists public.token_manager_get_recorded(text, text[], timestamptz, jsonb, boolean);
