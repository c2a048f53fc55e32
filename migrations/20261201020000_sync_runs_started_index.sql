-- The runs listing (GET /v1/runs) reads the newest runs of every kind: an index by start time.

-- migrate:up

create index if not exists sync_runs_started_idx on public.sync_runs (started_at desc);

-- migrate:down

drop index if exists public.sync_runs_started_idx;
