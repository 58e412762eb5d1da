//! Builds the policy module the binary carries, so `podguard audit`, `eval` and `serve`
//! work with no `--policy` wherever the binary is copied.
//!
//! The module is built by a cargo of its own, exactly as the release module is built
//! (`cargo build --release --target wasm32-wasip1 -p podguard-policy`), into a target
//! directory of its own: the outer build holds the lock on the workspace's. The bytes are
//! the same as the release module's, which a test checks.
//!
//! `PODGUARD_EMBED_MODULE=FILE` embeds that file instead (a module built from an
//! organisation's own requirements, or one already built), and builds nothing.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest as _, Sha256};

fn main() {
    println!("cargo:rerun-if-env-changed=PODGUARD_EMBED_MODULE");
    // The policy's build script reads the requirements document from here; a change must
    // rebuild the module this binary carries.
    println!("cargo:rerun-if-env-changed=PODGUARD_REQUIREMENTS");
    let module = match env::var_os("PODGUARD_EMBED_MODULE").filter(|v| !v.is_empty()) {
        Some(file) => {
            let file = PathBuf::from(file);
            println!("cargo:rerun-if-changed={}", file.display());
            file
        }
        None => build_module(),
    };
    let bytes = std::fs::read(&module).unwrap_or_else(|err| {
        panic!(
            "cannot read the policy module to embed, {}: {err}",
            module.display()
        )
    });
    println!(
        "cargo:rustc-env=PODGUARD_EMBEDDED_MODULE={}",
        module.display()
    );
    println!(
        "cargo:rustc-env=PODGUARD_EMBEDDED_DIGEST=sha256:{}",
        hex::encode(Sha256::digest(&bytes))
    );
}

fn build_module() -> PathBuf {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir
        .parent()
        .expect("webhook-server sits in the workspace");
    for watched in [
        "policy/src",
        "policy/build.rs",
        "policy/Cargo.toml",
        "policy/requirements.yaml",
        "Cargo.lock",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    if let Some(requirements) = env::var_os("PODGUARD_REQUIREMENTS") {
        println!(
            "cargo:rerun-if-changed={}",
            PathBuf::from(requirements).display()
        );
    }
    let target_dir = embed_target_dir(workspace);
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip1",
            "-p",
            "podguard-policy",
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    // The outer build's settings are not the module's: its flags (a fuzzing or coverage
    // build's), its target, and clippy standing in for rustc would change the bytes, or
    // the fingerprint and with it rebuild the module every time.
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let outer_only =
            (key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_MAKEFLAGS")
                || matches!(
                    key,
                    "RUSTFLAGS"
                        | "RUSTC_WORKSPACE_WRAPPER"
                        | "TARGET"
                        | "HOST"
                        | "OUT_DIR"
                        | "PROFILE"
                        | "OPT_LEVEL"
                        | "DEBUG"
                        | "NUM_JOBS"
                        | "RUSTC_LINKER"
                );
        if outer_only {
            command.env_remove(key);
        }
    }
    let status = command
        .status()
        .unwrap_or_else(|err| panic!("cannot run cargo to build the policy module: {err}"));
    if !status.success() {
        panic!(
            "building the policy module this binary carries failed (above); it needs the wasm32-wasip1 target: `rustup target add wasm32-wasip1`. Or embed a module you built: PODGUARD_EMBED_MODULE=FILE"
        );
    }
    target_dir.join("wasm32-wasip1/release/podguard_policy.wasm")
}

/// `<workspace target>/embedded-policy`: one directory for every build of the binary
/// (debug, release, musl), so the module is compiled once for all of them.
fn embed_target_dir(workspace: &Path) -> PathBuf {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    // OUT_DIR is <target>/[<triple>/]<profile>/build/<package>-<hash>/out; cargo tags
    // <target> and each <target>/<triple> as a cache directory, and the outermost is the
    // target directory.
    let target = out_dir
        .ancestors()
        .filter(|dir| dir.join("CACHEDIR.TAG").is_file())
        .last()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| workspace.join("target"));
    target.join("embedded-policy")
}
