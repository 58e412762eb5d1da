//! What the playground's tests share: the built site and the tools they drive it with.

#![allow(
    dead_code,
    reason = "each test binary uses its own part of the support module"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The repository root.
pub fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// The workspace's target directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
}

/// `target/playground`, built from this source once per test binary by the same script
/// CI and `scripts/playground` run, so the tests judge the page users get.
pub fn site() -> &'static Path {
    static SITE: OnceLock<PathBuf> = OnceLock::new();
    SITE.get_or_init(|| {
        let status = Command::new("bash")
            .arg(workspace().join("scripts/playground-build"))
            .current_dir(workspace())
            .stdout(Stdio::null())
            .status()
            .expect("bash runs");
        assert!(status.success(), "scripts/playground-build failed");
        let site = target_dir().join("playground");
        assert!(
            site.join("pkg/podguard_policy_bg.wasm").is_file(),
            "the build wrote no module into {}",
            site.display()
        );
        site
    })
}

/// Runs `node` with `args`, `stdin` as its input; fails the test with its output when it
/// fails. A missing Node fails too (with how to install it) rather than skipping.
pub fn node(args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write as _;
    let mut child = Command::new("node")
        .args(args)
        .current_dir(workspace())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| {
            panic!(
                "cannot run node ({err}); install it: apt-get install nodejs (scripts/test does)"
            )
        });
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "node {args:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}
