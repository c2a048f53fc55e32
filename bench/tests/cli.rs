//! The measuring program's command line, without a stack. (Also makes `cargo test --workspace
//! --no-run` build the binary with the tests' dependencies, which `scripts/bench.sh --quick`
//! then runs in CI without compiling anything again.)

use std::process::Command;

fn bench(args: &[&str]) -> (i32, String) {
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
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn help_and_bad_options_exit_2_with_usage() {
    let (code, stderr) = bench(&["--help"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("usage: token-manager-bench"), "{stderr}");
    let (code, stderr) = bench(&["--sizes"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--sizes needs a value"), "{stderr}");
    let (code, stderr) = bench(&["--frobnicate"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown option --frobnicate"), "{stderr}");
}

#[test]
fn without_a_stack_it_says_how_to_get_one() {
    let (code, stderr) = bench(&["--quick"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("scripts/bench.sh"), "{stderr}");
}
