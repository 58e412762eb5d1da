//! Shared helpers of the `audit_*` tests: the policy module, fixtures, and running the
//! `podguard audit` binary with expected-versus-actual output on failure.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the helpers"
)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate is in the workspace")
        .to_owned()
}

/// `tests/audit-fixtures/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    repo().join("tests/audit-fixtures").join(name)
}

/// The release policy module, built once per test binary (cargo makes it a no-op when it
/// is up to date), so the tests judge with the module built from this source.
pub fn module() -> &'static Path {
    static MODULE: OnceLock<PathBuf> = OnceLock::new();
    MODULE.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .current_dir(repo())
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip1",
                "-p",
                "podguard-policy",
            ])
            .status()
            .expect("cargo runs");
        assert!(
            status.success(),
            "building the policy module failed; is the target installed? (rustup target add wasm32-wasip1)"
        );
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo().join("target"));
        target.join("wasm32-wasip1/release/podguard_policy.wasm")
    })
}

/// A precompiled-module cache shared by the tests, so each run does not compile the
/// module again.
pub fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("audit-module-cache")
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    /// The exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// The command line, for messages.
    pub command: String,
}

impl Run {
    /// Fails the test, showing everything, unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "`{}` exited {} instead of {code}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command, self.code, self.stdout, self.stderr
        );
        self
    }

    /// Standard output as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "`{}` did not print JSON ({e}):\n{}\n--- stderr ---\n{}",
                self.command, self.stdout, self.stderr
            )
        })
    }

    /// Fails unless stdout contains `text`.
    #[track_caller]
    pub fn stdout_has(&self, text: &str) -> &Run {
        assert!(
            self.stdout.contains(text),
            "`{}`: stdout lacks {text:?}:\n{}\n--- stderr ---\n{}",
            self.command,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Fails unless stderr contains `text`.
    #[track_caller]
    pub fn stderr_has(&self, text: &str) -> &Run {
        assert!(
            self.stderr.contains(text),
            "`{}`: stderr lacks {text:?}:\n{}\n--- stdout ---\n{}",
            self.command,
            self.stderr,
            self.stdout
        );
        self
    }
}

/// How to run the binary.
#[derive(Default)]
pub struct Invocation<'a> {
    /// Arguments after `audit` (the module and cache flags are added).
    pub args: Vec<String>,
    /// Standard input.
    pub stdin: Option<&'a [u8]>,
    /// Extra environment.
    pub env: Vec<(&'a str, String)>,
    /// Working directory (default: the repository).
    pub cwd: Option<&'a Path>,
}

/// Runs `podguard audit ARGS` with the test module.
pub fn audit(args: &[&str]) -> Run {
    run(Invocation {
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        ..Invocation::default()
    })
}

/// Runs `podguard audit ARGS` reading `stdin`.
pub fn audit_stdin(args: &[&str], stdin: &[u8]) -> Run {
    run(Invocation {
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        stdin: Some(stdin),
        ..Invocation::default()
    })
}

/// Runs the binary as described.
pub fn run(invocation: Invocation) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_podguard"));
    command.arg("audit").arg("--policy").arg(module());
    command
        .arg("--cache-dir")
        .arg(cache_dir())
        .arg("--no-progress")
        .args(&invocation.args)
        .current_dir(invocation.cwd.map_or_else(repo, Path::to_owned))
        .env_remove("PODGUARD_POLICY")
        .env_remove("PODGUARD_SETTINGS")
        .env_remove("KUBECONFIG")
        .env("NO_COLOR", "1")
        .stdin(if invocation.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in &invocation.env {
        command.env(key, value);
    }
    let shown = format!("podguard audit {}", invocation.args.join(" "));
    let mut child = spawn(&mut command);
    if let Some(stdin) = invocation.stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(stdin).expect("stdin takes the input");
    }
    let output = child.wait_with_output().expect("podguard finishes");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        command: shown,
    }
}

/// Spawns, retrying briefly: another build relinking the binary, or a forked child still
/// holding a just-written copy open, makes exec fail with "text file busy" for a moment.
pub fn spawn(command: &mut Command) -> std::process::Child {
    let mut attempts = 0;
    loop {
        match command.spawn() {
            Ok(child) => return child,
            Err(err) if attempts < 20 => {
                attempts += 1;
                eprintln!("retrying spawn: {err}");
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
            Err(err) => panic!("the podguard binary does not run: {err}"),
        }
    }
}

/// The workloads of a JSON report, as `Kind namespace/name` => entry.
pub fn workloads(report: &Value) -> Vec<(String, Value)> {
    report["workloads"]
        .as_array()
        .expect("workloads is an array")
        .iter()
        .map(|w| {
            let name = match w["namespace"].as_str() {
                Some(ns) => format!(
                    "{} {ns}/{}",
                    w["kind"].as_str().unwrap(),
                    w["name"].as_str().unwrap()
                ),
                None => format!(
                    "{} {}",
                    w["kind"].as_str().unwrap(),
                    w["name"].as_str().unwrap()
                ),
            };
            (name, w.clone())
        })
        .collect()
}

/// The check ids of a workload entry's violations.
pub fn checks_of(entry: &Value) -> Vec<String> {
    let mut checks: Vec<String> = entry["violations"]
        .as_array()
        .map(|v| {
            v.iter()
                .map(|v| v["check"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    checks.dedup();
    checks
}
