-- Alert state: one row per alert condition (sync, redis_loss, renew, renewals_paused,
-- token_expiring_unrenewed, decryption), saying whether it is firing. An alert goes out only
-- when a condition changes state, so a cron failing every 5 minutes sends one alert and, once
-- it works again, one recovery. Never a token, a key or a secret. Row Level Security on, no
-- policy: only the service role reaches it, like every table.

-- migrate:up

create table if not exists public.alert_states (
    condition  text primary key check (condition ~ '^[a-z_]{1,64}$'),
    firing     boolean not null default false,
    changed_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

alter table public.alert_states enable row level security;
revoke all on table public.alert_states from public, anon, authenticated;

-- Applies observations in order, each {"condition": text, "firing": bool}, under a row lock
-- per condition (two invocations never both see the same change); a condition never seen is
-- not firing. Returns one {"condition", "firing", "changed"} per observation.
create or replace function public.token_manager_alert_transitions(p_observations jsonb)
returns jsonb
language plpgsql
set search_path = public
as $$
declare
    v_obs record;
    v_prev boolean;
    v_out jsonb := '[]'::jsonb;
begin
    for v_obs in
        select o.condition, o.firing
          from jsonb_to_recordset(coalesce(p_observations, '[]'::jsonb))
               as o(condition text, firing boolean)
    loop
        insert into alert_states (condition, firing) values (v_obs.condition, false)
            on conflict (condition) do nothing;
        select firing into v_prev from alert_states where condition = v_obs.condition for update;
        update alert_states
           set firing = v_obs.firing,
               updated_at = now(),
               changed_at = case when v_prev is distinct from v_obs.firing then now() else changed_at end
         where condition = v_obs.condition;
        v_out := v_out || jsonb_build_array(jsonb_build_object(
            'condition', v_obs.condition, 'firing', v_obs.firing,
            'changed', v_prev is distinct from v_obs.firing));
    end loop;
    return v_out;
end;
$$;

revoke execute on function public.token_manager_alert_transitions(jsonb) from public, anon, authenticated;

do $$
begin
    if exists (select 1 from pg_roles where rolname = 'service_role') then
        grant execute on function public.token_manager_alert_transitions(jsonb) to service_role;
    end if;
end;
$$;

-- migrate:down

drop function if exists public.token_manager_alert_transitions(jsonb);
drop table if exists public.alert_states;
