//! The benchmark's shared parts: realistic token data ([`tokens`]) and the sync's pure work
//! ([`work`]: parse, fingerprint, encrypt, serialise), the same code natively and in wasm.
//! The native measuring program is `src/main.rs`; `scripts/bench.sh` runs everything.

pub mod tokens;
pub mod work;

#[cfg(target_arch = "wasm32")]
mod wasm;
