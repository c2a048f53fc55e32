//! Structured log lines: one JSON object per line, to the Workers console (Workers Logs) or
//! stderr natively. Callers never pass tokens or keys.

use serde_json::Value;

/// Writes `event` as one JSON line.
pub fn log(event: Value) {
    #[cfg(target_arch = "wasm32")]
    worker::console_log!("{}", event);
    #[cfg(not(target_arch = "wasm32"))]
    {
        capture::record(&event);
        eprintln!("{event}");
    }
}

/// Natively, a process can also keep the lines it logs, so tests can read what the Worker
/// would have logged.
#[cfg(not(target_arch = "wasm32"))]
pub mod capture {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    use serde_json::Value;

    /// Most lines kept; older ones are dropped.
    pub const MAX_LINES: usize = 100_000;

    static ON: AtomicBool = AtomicBool::new(false);
    static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

    /// From now on, keep every line this process logs.
    pub fn start() {
        ON.store(true, Ordering::SeqCst);
    }

    /// Every line kept so far (from every thread of the process).
    pub fn lines() -> Vec<String> {
        LINES.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub(super) fn record(event: &Value) {
        if ON.load(Ordering::Relaxed) {
            if let Ok(mut lines) = LINES.lock() {
                if lines.len() >= MAX_LINES {
                    lines.remove(0);
                }
                lines.push(event.to_string());
            }
        }
    }
}
