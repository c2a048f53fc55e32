//! The wasm build's entry points: `scripts/bench-wasm-cpu.mjs` calls `prepare(n)` (untimed),
//! then times each `stage(i)` with `performance.now()`.

use std::cell::RefCell;

use wasm_bindgen::prelude::wasm_bindgen;

use crate::work::{Workload, STAGES};

thread_local! {
    static WORK: RefCell<Option<Workload>> = const { RefCell::new(None) };
}

/// Makes `n` tokens' worth of work, upserted `batch_size` per request.
#[wasm_bindgen]
pub fn prepare(n: usize, batch_size: usize) {
    let work = Workload::new(n, batch_size, chrono::Utc::now());
    WORK.with(|w| *w.borrow_mut() = Some(work));
}

/// The stage names, comma-separated.
#[wasm_bindgen]
pub fn stages() -> String {
    STAGES.join(",")
}

/// Runs stage `index` over every prepared token.
#[wasm_bindgen]
pub fn stage(index: usize) -> usize {
    WORK.with(|w| {
        w.borrow_mut()
            .as_mut()
            .expect("prepare() first")
            .run_stage(index)
    })
}
