-- Ciphertext format v2 (XChaCha20-Poly1305, unambiguous associated data): access_token holds
-- "v2:<key id>:<base64>" from now on; "v1:…" rows stay readable until /v1/reencrypt
-- rewrites them. Still ciphertext only: anything else is refused.

-- migrate:up
alter table public.tradovate_tokens drop constraint if exists tradovate_tokens_access_token_check;
alter table public.tradovate_tokens add constraint tradovate_tokens_access_token_check
    check (access_token like 'v2:%' or access_token like 'v1:%');
comment on column public.tradovate_tokens.access_token is
    'ciphertext written by the Worker: v2:<key id>:<base64> (XChaCha20-Poly1305), or v1:<key id>:<base64> (AES-256-GCM, read only); never plaintext';

-- migrate:down
-- Fails while v2 rows exist: run the Worker version that writes v1 and /v1/reencrypt first.
alter table public.tradovate_tokens drop constraint if exists tradovate_tokens_access_token_check;
alter table public.tradovate_tokens add constraint tradovate_tokens_access_token_check
    check (access_token like 'v1:%');
