// Times the sync's pure work compiled to wasm (token_manager_bench's cdylib, wasm-bindgen
// --target nodejs) under Node's V8, the engine workerd embeds. Run by the native benchmark:
//
//   node bench/wasm-cpu.mjs DIR N BATCH_SIZE REPS
//
// Prints {"n": N, "stages_ms": {"parse": median, ...}} on stdout: the process's CPU time
// (process.cpuUsage, user + system) per stage, which Workers bill and which a loaded machine
// inflates far less than wall time.
import { createRequire } from "node:module";
import path from "node:path";

const [dir, n, batch, reps] = process.argv.slice(2);
if (!dir || !n) {
  console.error("usage: node bench/wasm-cpu.mjs DIR N [BATCH_SIZE] [REPS]");
  process.exit(2);
}
const require = createRequire(import.meta.url);
const bench = require(path.resolve(dir, "token_manager_bench.js"));

bench.prepare(Number(n), Number(batch || 1000));
const names = bench.stages().split(",");
const samples = names.map(() => []);
for (let r = 0; r < Number(reps || 5); r++) {
  names.forEach((_, i) => {
    const started = process.cpuUsage();
    bench.stage(i);
    const used = process.cpuUsage(started);
    samples[i].push((used.user + used.system) / 1000);
  });
}
const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const stages_ms = Object.fromEntries(names.map((name, i) => [name, median(samples[i])]));
console.log(JSON.stringify({ n: Number(n), stages_ms }));
