//! Integration tests: the jobs and the HTTP API, natively, against the real local stack
//! (Postgres, PostgREST, Redis, and our Upstash REST server) started by ./scripts/test.sh.

#[path = "../support/mod.rs"]
mod support;

mod api;
mod audit;
mod ciphertext;
mod jobs;
mod reliability;
mod renew;
mod restore;
mod rls;
mod rotation;
mod runs;
mod seed_sql;
