//! The measuring program's command line, without a stack. (Also makes `cargo test --workspace
//! --no-run` build the binary with the tests' dependencies, which `scripts/bench.sh --quick`
//! then runs in CI without compiling anything again.)

use std::process::Command;

/// Runs the binary; returns its exit code, stdout and stderr.
fn bench(args: &[&str]) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_token-manager-bench"));
    // Never the test stack's settings (test.sh exports them): no stack here.
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("TM_TEST_")) {
        command.env_remove(name);
    }
    let output = command
        .args(args)
        .output()
        .expect("the benchmark binary runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn help_and_bad_options() {
    let (code, stdout, _) = bench(&["--help"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("Usage: token-manager-bench"), "{stdout}");
    assert!(stdout.contains("--wasm-cpu-skip <REASON>"), "{stdout}");
    let (code, _, stderr) = bench(&["--sizes"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("a value is required for '--sizes <SIZES>'"),
        "{stderr}"
    );
    let (code, _, stderr) = bench(&["--frobnicate"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("unexpected argument '--frobnicate'"),
        "{stderr}"
    );
    let (code, _, stderr) = bench(&["--sizes", "22,many"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("\"many\" is not a count"), "{stderr}");
    let (code, _, stderr) = bench(&["--twiggy", "t", "--twiggy-skip", "r"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}

#[test]
fn without_a_stack_it_says_how_to_get_one() {
    let (code, _, stderr) = bench(&["--quick", "--sizes", "10_000"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("scripts/bench.sh"), "{stderr}");
}
