//! End-to-end: the built wasm under `wrangler dev` (workerd), started by ./scripts/test.sh,
//! against the same real local stack. Cron triggers go through `/__scheduled?cron=…`
//! (wrangler dev runs with --test-scheduled).

mod alerts;
mod audit;
mod dashboard;
mod load;
mod openapi;
mod renew;
mod restore;
mod routes;
