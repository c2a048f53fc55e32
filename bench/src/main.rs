//! The benchmark of token-manager against a running bench stack (`scripts/bench.sh` starts it
//! and runs this). Prints one markdown table on stdout: sync cost through `wrangler dev` with
//! requests counted from the Upstash and PostgREST logs, get latency against PostgREST
//! itself, the CPU of the sync's pure work, and the bundle. Checks that hold whatever the
//! speed (the second sync writes nothing, the counts come from the logs) are reported as
//! `bench-smoke: P passed, F failed` on stderr; the exit status is 1 if one failed.

#[cfg(not(target_arch = "wasm32"))]
mod native;

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    std::process::exit(native::main());
}

#[cfg(target_arch = "wasm32")]
fn main() {}
