//! token-manager's test suite against the real local stack, as one test binary (one link):
//!
//! - [`support`]: the harness — [`support::TestStack`] (one test's turn on the stack: Redis,
//!   SQL, the API through a method per route), test data, fault injection, the OpenAPI
//!   document's schemas;
//! - [`integration`]: the jobs and the HTTP API natively (the code the Worker runs) against
//!   Postgres, PostgREST, Redis and upstash-local;
//! - [`e2e`]: the built wasm under `wrangler dev` (workerd).
//!
//! ./scripts/test.sh starts the stack and exports its settings (`TM_TEST_*`); by hand:
//! `scripts/stack.sh up test && eval "$(scripts/env.sh test)" && cargo test --test suite`.
//! Pure unit and property tests live next to their code in `src/` (`cargo test --lib`).

mod e2e;
mod integration;
mod support;
