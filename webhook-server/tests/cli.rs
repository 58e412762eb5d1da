//! The small things a user trips on, run through the binary from a directory outside the
//! repository: eval's inputs, broken pipes, errors said once and without colour codes,
//! gen-certs, and the publishing commands' built-in defaults.

mod audit_support;

use std::process::{Command, Output, Stdio};

use audit_support::{module, repo};
use serde_json::Value;

/// Runs `podguard ARGS` in `cwd` (a directory outside the repository), `stdin` piped in.
fn podguard(cwd: &std::path::Path, args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_podguard"))
        .args(args)
        .current_dir(cwd)
        .env_remove("PODGUARD_POLICY")
        .env_remove("PODGUARD_SETTINGS")
        .env_remove("PODGUARD_LOG")
        .env_remove("PODGUARD_CACHE_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("podguard starts");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().expect("podguard finishes")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn eval_takes_a_bare_admission_request_and_sends_manifests_to_audit() {
    let dir = tempfile::tempdir().unwrap();
    let review: Value = serde_json::from_slice(
        &std::fs::read(repo().join("tests/fixtures/pod-noncompliant/review.json")).unwrap(),
    )
    .unwrap();
    let module = module().to_str().unwrap();

    // The AdmissionRequest alone, as `kwctl run --request-path` takes it.
    let request = serde_json::to_vec(&review["request"]).unwrap();
    let out = podguard(dir.path(), &["eval", "--policy", module, "-"], &request);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(answer["response"]["uid"], review["request"]["uid"]);
    assert_eq!(answer["response"]["allowed"], false);

    // Compiled once, then read from the user's cache directory, as kwctl does.
    let cache = dir.path().join("cache");
    let mut cached = Command::new(env!("CARGO_BIN_EXE_podguard"));
    cached
        .args(["eval", "--policy", module, "tests-review.json"])
        .current_dir(dir.path())
        .env("XDG_CACHE_HOME", &cache)
        .env_remove("PODGUARD_CACHE_DIR");
    std::fs::write(dir.path().join("tests-review.json"), &request).unwrap();
    assert_eq!(cached.output().unwrap().status.code(), Some(1));
    let compiled: Vec<_> = std::fs::read_dir(cache.join("podguard"))
        .expect("the cache directory is made")
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        compiled.len() == 1 && compiled[0].ends_with(".cwasm"),
        "{compiled:?}"
    );

    // A manifest is not a review: say which command judges it.
    let manifest = serde_json::to_vec(&review["request"]["object"]).unwrap();
    let out = podguard(dir.path(), &["eval", "--policy", module, "-"], &manifest);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr).trim_end(),
        "podguard eval: stdin is a Pod manifest (v1), not an AdmissionReview: judge manifests with `podguard audit -`"
    );

    // A module that refuses its settings is named once, by its file.
    let settings = dir.path().join("settings.yaml");
    std::fs::write(&settings, "checks: {no-such-check: {mode: warn}}\n").unwrap();
    let out = podguard(
        dir.path(),
        &[
            "eval",
            "--policy",
            module,
            "--settings",
            settings.to_str().unwrap(),
            "-",
        ],
        &request,
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("podguard eval: policy podguard_policy.wasm refused its settings:"),
        "{stderr}"
    );
    assert!(!stderr.contains("policy policy"), "{stderr}");
}

#[test]
fn output_cut_short_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    // The reader closes the pipe before podguard writes (as `head` does once it has its
    // lines), so every write meets a closed pipe.
    let script = format!(
        "{} inspect {} | {{ exec 0<&-; sleep 1; }}",
        env!("CARGO_BIN_EXE_podguard"),
        module().display()
    );
    let out = Command::new("sh")
        .args(["-c", &script])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
}

#[test]
fn a_fatal_error_is_said_once_without_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let out = podguard(dir.path(), &["inspect", "no-such-module.wasm"], b"");
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("podguard: "), "{stderr}");
    assert!(stderr.contains("no-such-module.wasm"), "{stderr}");
    assert!(!stderr.contains('\x1b'), "{stderr}");
}

#[test]
fn gen_certs_says_what_it_wrote_and_keeps_what_exists() {
    let dir = tempfile::tempdir().unwrap();
    let out = podguard(dir.path(), &["gen-certs", "--out", "certs"], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for file in ["ca.crt", "ca.key", "tls.crt", "tls.key"] {
        assert!(
            stdout.contains(&format!("wrote certs/{file}\n")),
            "{stdout}"
        );
    }
    assert!(stdout.contains("valid until "), "{stdout}");
    let key = std::fs::read(dir.path().join("certs/tls.key")).unwrap();

    let again = podguard(dir.path(), &["gen-certs", "--out", "certs"], b"");
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("pass --force to replace them"));
    assert_eq!(
        std::fs::read(dir.path().join("certs/tls.key")).unwrap(),
        key
    );

    let forced = podguard(
        dir.path(),
        &["gen-certs", "--out", "certs", "--force", "--days", "30"],
        b"",
    );
    assert!(forced.status.success(), "{}", text(&forced.stderr));
    assert_ne!(
        std::fs::read(dir.path().join("certs/tls.key")).unwrap(),
        key
    );
}

#[test]
fn publishing_commands_carry_their_metadata_and_write_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let out = podguard(dir.path(), &["artifacthub", "-o", "-"], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!dir.path().join("-").exists(), "no file named -");
    let committed = std::fs::read_to_string(repo().join("artifacthub-pkg.yml")).unwrap();
    let without_date = |listing: &str| {
        listing
            .lines()
            .filter(|line| !line.starts_with("createdAt:"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(without_date(&text(&out.stdout)), without_date(&committed));

    let annotated = dir.path().join("annotated.wasm");
    let out = podguard(
        dir.path(),
        &[
            "annotate",
            module().to_str().unwrap(),
            "-o",
            annotated.to_str().unwrap(),
        ],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let inspected = podguard(
        dir.path(),
        &["inspect", annotated.to_str().unwrap(), "--json"],
        b"",
    );
    assert!(inspected.status.success(), "{}", text(&inspected.stderr));
    assert!(text(&inspected.stdout).contains("io.kubewarden.policy.version"));
}

/// The binary copied alone into an empty directory, far from any build and with an empty
/// cache: it names the module it carries, and that module is the release build's, byte for
/// byte; it audits and evaluates with it, no `--policy` given.
#[test]
fn a_copy_of_the_binary_alone_carries_the_release_module() {
    use sha2::Digest as _;
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("podguard");
    std::fs::copy(env!("CARGO_BIN_EXE_podguard"), &binary).unwrap();
    let release = format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(std::fs::read(module()).unwrap()))
    );
    let run = |args: &[&str]| {
        Command::new(&binary)
            .args(args)
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .output()
            .unwrap()
    };

    let version = text(&run(&["--version"]).stdout);
    assert!(version.contains(&release), "{version} vs {release}");
    let inspected: Value = serde_json::from_slice(&run(&["inspect", "--json"]).stdout).unwrap();
    assert_eq!(inspected["digest"], release.as_str());

    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    for fixture in ["deployment-noncompliant", "pod-compliant"] {
        let review: Value = serde_json::from_slice(
            &std::fs::read(repo().join(format!("tests/fixtures/{fixture}/review.json"))).unwrap(),
        )
        .unwrap();
        std::fs::write(
            manifests.join(format!("{fixture}.json")),
            review["request"]["object"].to_string(),
        )
        .unwrap();
    }
    let audit = run(&["audit", "manifests", "-o", "json", "--no-progress"]);
    assert_eq!(audit.status.code(), Some(1), "{}", text(&audit.stderr));
    let report: Value = serde_json::from_slice(&audit.stdout).unwrap();
    let statuses: Vec<(&str, &str)> = report["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["name"].as_str().unwrap(), w["status"].as_str().unwrap()))
        .collect();
    assert_eq!(statuses.len(), 2, "{report}");
    assert!(
        statuses.iter().any(|(_, status)| *status == "fail"),
        "{statuses:?}"
    );
    assert!(
        statuses.iter().any(|(_, status)| *status == "pass"),
        "{statuses:?}"
    );

    let eval = run(&[
        "eval",
        &repo()
            .join("tests/fixtures/pod-compliant/review.json")
            .display()
            .to_string(),
    ]);
    assert_eq!(eval.status.code(), Some(0), "{}", text(&eval.stderr));
    // The compiled module was cached where the user's cache is.
    assert!(dir.path().join(".cache/podguard").is_dir());
}

/// Settings that a module refuses, a module that is not there and a policy named as a URL
/// are said once, naming what was given.
#[test]
fn policies_are_named_one_way_and_errors_name_them() {
    let dir = tempfile::tempdir().unwrap();
    let review = repo().join("tests/fixtures/pod-compliant/review.json");
    let review = review.to_str().unwrap();
    let missing = podguard(
        dir.path(),
        &["eval", "--policy", "no,such.wasm", review],
        b"",
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        text(&missing.stderr).contains("cannot read the policy module no,such.wasm"),
        "{}",
        text(&missing.stderr)
    );
    std::fs::write(
        dir.path().join("typo.yaml"),
        "checks: {run-as-nonroot: {}}\n",
    )
    .unwrap();
    let refused = podguard(
        dir.path(),
        &["eval", "--settings", "typo.yaml", review],
        b"",
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        text(&refused.stderr).starts_with("podguard eval: policy builtin refused its settings: settings field `checks.run-as-nonroot`"),
        "{}",
        text(&refused.stderr)
    );
    let file_url = format!("file://{}", module().display());
    let by_url = podguard(dir.path(), &["eval", "--policy", &file_url, review], b"");
    assert_eq!(by_url.status.code(), Some(0), "{}", text(&by_url.stderr));
    let https = podguard(
        dir.path(),
        &["audit", "--policy", "https://example.com/p.wasm", "x.yaml"],
        b"",
    );
    assert_eq!(https.status.code(), Some(2));
    assert!(
        text(&https.stderr).contains("not URLs"),
        "{}",
        text(&https.stderr)
    );
}
