//! Structured log lines: one JSON object per line, to the Workers console (Workers Logs) or
//! stderr natively. Callers never pass tokens or keys.

use serde_json::Value;

/// Writes `event` as one JSON line.
pub fn log(event: Value) {
    #[cfg(target_arch = "wasm32")]
    worker::console_log!("{}", event);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("{event}");
}
