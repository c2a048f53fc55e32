-- Runs of the restore and renew jobs are recorded in sync_runs like sync, cleanup and reencrypt.

-- migrate:up

alter table public.sync_runs drop constraint if exists sync_runs_kind_check;
alter table public.sync_runs add constraint sync_runs_kind_check
    check (kind in ('sync', 'cleanup', 'reencrypt', 'restore', 'renew'));

-- migrate:down

alter table public.sync_runs drop constraint if exists sync_runs_kind_check;
alter table public.sync_runs add constraint sync_runs_kind_check
    check (kind in ('sync', 'cleanup', 'reencrypt'));
