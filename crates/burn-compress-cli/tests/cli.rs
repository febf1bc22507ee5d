//! The CLI's failures: each bad input (arguments, configs, the allocator variable) exits with
//! status 1, names what is wrong on stderr, and leaves no output behind. (The successful path
//! is the README's main command; the recipe itself is tested in the workspace's integration
//! tests.)

use std::path::Path;
use std::process::Command;

/// The CLI with `args`, run from the repository's root.
fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_burn-compress"));
    command
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
    command
}

fn run(args: &[&str]) -> (i32, String) {
    let out = command(args).output().expect("the CLI runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_inputs_exit_non_zero_naming_the_problem_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/mnist_qat.json"),
    )
    .unwrap();
    let config = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    };
    let out = dir.path().join("out");
    let out_arg = out.to_string_lossy().into_owned();
    let blocker = config("a-file", "");
    let cases = [
        (
            vec![
                "run".to_string(),
                config("malformed.json", &good[..good.len() / 2]),
            ],
            "not valid JSON",
        ),
        (
            vec![
                "run".to_string(),
                config(
                    "algorithm.json",
                    &good.replace("\"quantization\"", "\"binarization\""),
                ),
            ],
            "unknown algorithm `binarization`",
        ),
        (
            vec![
                "run".to_string(),
                config(
                    "type.json",
                    &good.replace("\"epochs\": 1", "\"epochs\": \"one\""),
                ),
            ],
            "key `epochs`: expected a number",
        ),
        (
            vec![
                "run".to_string(),
                "configs/mnist_qat.json".to_string(),
                "--data".to_string(),
                "/nonexistent/mnist".to_string(),
            ],
            "/nonexistent/mnist",
        ),
        (
            vec![
                "run".to_string(),
                "configs/mnist_qat.json".to_string(),
                "--out".to_string(),
                format!("{blocker}/out"),
            ],
            "a-file/out",
        ),
        // Neither test build enables the CLI's `ndarray` feature.
        (
            vec![
                "run".to_string(),
                "configs/mnist_qat.json".to_string(),
                "--device".to_string(),
                "ndarray".to_string(),
            ],
            "built without the ndarray backend",
        ),
        (
            vec!["check".to_string(), "/nonexistent/config.json".to_string()],
            "/nonexistent/config.json",
        ),
    ];
    for (args, expected) in cases {
        let mut args = args;
        if args[0] == "run" && !args.contains(&"--out".to_string()) {
            args.extend(["--out".to_string(), out_arg.clone()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, stderr) = run(&args);
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!out.exists(), "{args:?} left {}", out.display());
    }
}

#[test]
fn an_unknown_allocator_is_refused_by_name_and_system_runs() {
    let with_allocator = |value: &str, args: &[&str]| {
        command(args)
            .env("BURN_COMPRESS_ALLOCATOR", value)
            .output()
            .expect("the CLI runs")
    };
    let refused = with_allocator("jemalloc", &["stats", "configs/mnist_qat.json"]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("BURN_COMPRESS_ALLOCATOR=\"jemalloc\"") && stderr.contains("`system`"),
        "{stderr}"
    );
    let system = with_allocator("system", &["--version"]);
    assert!(system.status.success(), "{system:?}");
}
