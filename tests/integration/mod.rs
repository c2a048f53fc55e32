//! Integration tests: the jobs and the HTTP API, natively, against the real local stack
//! (Postgres, PostgREST, Redis, and our Upstash REST server) started by ./scripts/test.sh;
//! and the OpenAPI document against the router (no services).

mod accounts;
mod alerts;
mod api;
mod audit;
mod bounded_reads;
mod ciphertext;
mod hardening;
mod jobs;
mod leaks;
mod openapi;
mod reliability;
mod renew;
mod restore;
mod rls;
mod rotation;
mod round_trips;
mod run_retention;
mod runs;
mod scoped_keys;
mod seed_sql;
