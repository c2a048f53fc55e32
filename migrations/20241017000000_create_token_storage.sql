-- Token storage: the seed's two tables plus the run log, with Row Level Security on and no
-- policy for anon/authenticated, so only the service role (BYPASSRLS) reaches them.

-- migrate:up
create table public.tradovate_tokens (
    id                uuid primary key default gen_random_uuid(),
    account_name      text not null unique,
    main_account      text not null,
    token_type        text not null default 'bearer' check (token_type in ('bearer', 'auth')),
    -- AES-256-GCM ciphertext written by the Worker ("v1:<key id>:<base64>"), never plaintext.
    access_token      text not null check (access_token like 'v1:%'),
    token_length      integer not null check (token_length > 0),
    expires_at        timestamptz,
    created_at        timestamptz not null default now(),
    updated_at        timestamptz not null default now(),
    is_active         boolean not null default true,
    metadata          jsonb not null default '{}'::jsonb,
    -- Keyed HMAC of the plaintext: detects change without revealing the token.
    token_fingerprint text not null,
    -- Id of the encryption key that wrote access_token (for rotation).
    key_id            text not null,
    last_synced_at    timestamptz
);

create index tradovate_tokens_active_updated_idx on public.tradovate_tokens (is_active, updated_at desc);
create index tradovate_tokens_main_account_idx on public.tradovate_tokens (main_account);
create index tradovate_tokens_expires_at_idx on public.tradovate_tokens (expires_at) where is_active;

create table public.token_key_mappings (
    id           uuid primary key default gen_random_uuid(),
    main_account text not null,
    redis_key    text not null unique,
    key_type     text not null check (key_type in ('main', 'sub_account', 'auth')),
    account_name text not null,
    created_at   timestamptz not null default now()
);

create index token_key_mappings_main_account_idx on public.token_key_mappings (main_account);
create index token_key_mappings_account_name_idx on public.token_key_mappings (account_name);

create table public.sync_runs (
    id          uuid primary key default gen_random_uuid(),
    kind        text not null check (kind in ('sync', 'cleanup', 'reencrypt')),
    trigger     text not null check (trigger in ('http', 'cron')),
    status      text not null default 'running' check (status in ('running', 'succeeded', 'failed')),
    started_at  timestamptz not null default now(),
    finished_at timestamptz,
    tokens_seen integer,
    inserted    integer,
    updated     integer,
    unchanged   integer,
    deactivated integer,
    skipped     integer,
    cleaned     integer,
    details     jsonb not null default '{}'::jsonb,
    error       text
);

create index sync_runs_kind_started_idx on public.sync_runs (kind, started_at desc);

alter table public.tradovate_tokens enable row level security;
alter table public.token_key_mappings enable row level security;
alter table public.sync_runs enable row level security;

-- migrate:down
drop table if exists public.sync_runs;
drop table if exists public.token_key_mappings;
drop table if exists public.tradovate_tokens;
