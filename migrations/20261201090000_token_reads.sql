-- The audit trail: one row per token read (GET /v1/tokens/{account}, ?action=get) with its
-- outcome, the API key's name (or a short keyed fingerprint of an unnamed key, never the
-- key), the client's IP and user agent. Never a token. Row Level Security on, no policy:
-- only the service role reaches it, like every table.

-- migrate:up

create table if not exists public.token_reads (
    id           bigint generated always as identity primary key,
    read_at      timestamptz not null default now(),
    account_name text not null,
    outcome      smallint not null check (outcome between 100 and 599),
    key_name     text not null,
    client_ip    text,
    user_agent   text
);

create index if not exists token_reads_read_at_idx on public.token_reads (read_at desc);
create index if not exists token_reads_account_idx on public.token_reads (account_name, read_at desc);
create index if not exists token_reads_key_idx on public.token_reads (key_name, read_at desc);

alter table public.token_reads enable row level security;

-- Appends a batch of reads; returns {"recorded": n}.
create or replace function public.token_manager_record_reads(p_reads jsonb)
returns jsonb
language plpgsql
set search_path = public
as $$
declare
    v_recorded integer := 0;
begin
    insert into token_reads (read_at, account_name, outcome, key_name, client_ip, user_agent)
    select coalesce(r.read_at, now()), r.account_name, r.outcome, r.key_name,
           left(r.client_ip, 64), left(r.user_agent, 512)
      from jsonb_to_recordset(coalesce(p_reads, '[]'::jsonb))
           as r(read_at timestamptz, account_name text, outcome smallint, key_name text,
                client_ip text, user_agent text);
    get diagnostics v_recorded = row_count;
    return jsonb_build_object('recorded', v_recorded);
end;
$$;

-- Deletes reads older than p_days days (the daily cleanup); returns {"pruned": n}.
create or replace function public.token_manager_prune_reads(p_days integer)
returns jsonb
language plpgsql
set search_path = public
as $$
declare
    v_pruned integer := 0;
begin
    delete from token_reads where read_at < now() - make_interval(days => p_days);
    get diagnostics v_pruned = row_count;
    return jsonb_build_object('pruned', v_pruned);
end;
$$;

revoke execute on function public.token_manager_record_reads(jsonb) from public, anon, authenticated;
revoke execute on function public.token_manager_prune_reads(integer) from public, anon, authenticated;

do $$
begin
    if exists (select 1 from pg_roles where rolname = 'service_role') then
        grant execute on function public.token_manager_record_reads(jsonb) to service_role;
        grant execute on function public.token_manager_prune_reads(integer) to service_role;
    end if;
end;
$$;

-- migrate:down

drop function if exists public.token_manager_prune_reads(integer);
drop function if exists public.token_manager_record_reads(jsonb);
drop table if exists public.token_reads;
