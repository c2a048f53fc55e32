//! CPU of the sync's pure work (`token_manager_bench::work`): natively with a timed loop, and
//! the same code compiled to wasm, run under Node (V8, the engine workerd embeds) by
//! `bench/wasm-cpu.mjs`. Each stage's figure is the median of `reps` runs.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use chrono::Utc;
use serde_json::Value;
use token_manager_bench::work::{Workload, RESTORE_STAGE, STAGES};

use super::Res;

/// Stage times of one size on one runtime.
#[derive(Debug, Clone)]
pub struct Cpu {
    pub n: usize,
    pub runtime: &'static str,
    /// (stage, median milliseconds), in [`STAGES`] order.
    pub stages: Vec<(String, f64)>,
}

impl Cpu {
    /// A sync's CPU: every stage but the restore's.
    pub fn total_ms(&self) -> f64 {
        self.sync_stages().map(|(_, ms)| ms).sum()
    }

    /// The sync's stages (without the restore's).
    pub fn sync_stages(&self) -> impl Iterator<Item = &(String, f64)> {
        self.stages.iter().filter(|(s, _)| s != RESTORE_STAGE)
    }

    /// A restore's CPU for the same tokens (open the rows, build the `SET NX PX` pipelines).
    pub fn restore_ms(&self) -> Option<f64> {
        self.stages
            .iter()
            .find(|(s, _)| s == RESTORE_STAGE)
            .map(|(_, ms)| *ms)
    }
}

/// The native timed loop.
pub fn native(n: usize, batch_size: usize, reps: usize) -> Cpu {
    let mut work = Workload::new(n, batch_size, Utc::now());
    let mut samples = vec![Vec::new(); STAGES.len()];
    for _ in 0..reps.max(1) {
        for (i, times) in samples.iter_mut().enumerate() {
            let started = Instant::now();
            std::hint::black_box(work.run_stage(i));
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    Cpu {
        n,
        runtime: if cfg!(debug_assertions) {
            "native (debug build: not representative)"
        } else {
            "native"
        },
        stages: STAGES
            .iter()
            .zip(samples)
            .map(|(name, mut times)| (name.to_string(), median(&mut times)))
            .collect(),
    }
}

/// The wasm build under Node: `dir` holds wasm-bindgen's `--target nodejs` output.
pub fn wasm(dir: &Path, n: usize, batch_size: usize, reps: usize) -> Res<Cpu> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("wasm-cpu.mjs");
    let output = Command::new("node")
        .arg(&script)
        .arg(dir)
        .arg(n.to_string())
        .arg(batch_size.to_string())
        .arg(reps.to_string())
        .output()?;
    if !output.status.success() {
        // Node's first `Error: ...` line says what went wrong; the rest is its stack.
        let stderr = String::from_utf8_lossy(&output.stderr);
        let reason = stderr
            .lines()
            .find(|l| l.contains("Error"))
            .or_else(|| stderr.lines().rev().find(|l| !l.trim().is_empty()))
            .unwrap_or("no output");
        return Err(format!("node bench/wasm-cpu.mjs failed: {}", reason.trim()).into());
    }
    let answer: Value = serde_json::from_slice(&output.stdout)?;
    let stages = STAGES
        .iter()
        .map(|name| {
            let ms = answer["stages_ms"][name]
                .as_f64()
                .ok_or_else(|| format!("wasm-cpu.mjs gave no time for {name}"))?;
            Ok((name.to_string(), ms))
        })
        .collect::<Res<Vec<_>>>()?;
    Ok(Cpu {
        n,
        runtime: "wasm (Node)",
        stages,
    })
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
