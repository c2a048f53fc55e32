-- Key rotation: rewrite ciphertexts under the current key without touching updated_at
-- (the token did not change), and record the run.

-- migrate:up

-- Applies one batch of re-encrypted rows. A row is only rewritten if its ciphertext is still
-- the one that was read (a sync in between wins). Returns {"reencrypted": n}.
create or replace function public.token_manager_apply_reencrypt(p_rows jsonb)
returns jsonb
language sql
set search_path = public
as $$
    with input as (
        select *
          from jsonb_to_recordset(p_rows) as x(
               account_name text, previous_access_token text, access_token text, key_id text,
               token_fingerprint text, metadata jsonb)
    ),
    changed as (
        update tradovate_tokens t
           set access_token = i.access_token,
               key_id = i.key_id,
               token_fingerprint = i.token_fingerprint,
               metadata = i.metadata
          from input i
         where t.account_name = i.account_name
           and t.access_token = i.previous_access_token
        returning 1
    )
    select jsonb_build_object('reencrypted', count(*)) from changed;
$$;

-- Records a finished re-encryption run. Returns its id.
create or replace function public.token_manager_record_reencrypt(p_trigger text, p_reencrypted integer, p_failed jsonb)
returns uuid
language sql
set search_path = public
as $$
    insert into sync_runs (kind, trigger, status, finished_at, updated, details, error)
    values ('reencrypt', p_trigger,
            case when jsonb_array_length(p_failed) = 0 then 'succeeded' else 'failed' end,
            now(), p_reencrypted, jsonb_build_object('failed', p_failed),
            case when jsonb_array_length(p_failed) = 0 then null
                 else jsonb_array_length(p_failed) || ' tokens could not be decrypted with the configured keys' end)
    returning id;
$$;

revoke execute on function public.token_manager_apply_reencrypt(jsonb) from public, anon, authenticated;
revoke execute on function public.token_manager_record_reencrypt(text, integer, jsonb) from public, anon, authenticated;

do $$
begin
    if exists (select 1 from pg_roles where rolname = 'service_role') then
        grant execute on function public.token_manager_apply_reencrypt(jsonb) to service_role;
        grant execute on function public.token_manager_record_reencrypt(text, integer, jsonb) to service_role;
    end if;
end;
$$;

-- migrate:down
drop function if exists public.token_manager_record_reencrypt(text, integer, jsonb);
drop function if exists public.token_manager_apply_reencrypt(jsonb);
