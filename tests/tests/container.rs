//! The container image's build context holds the whole workspace: the Containerfile
//! copies the context, not a list of members (which once went stale when a member was
//! added), and `.containerignore` keeps out only build output, git and fuzz/.
//! `scripts/image-check` builds the image itself in CI.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The workspace members, from the root manifest's `members = [...]`.
fn members() -> Vec<String> {
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let line = manifest
        .lines()
        .find(|l| l.trim_start().starts_with("members"))
        .expect("the root manifest lists its members on one line");
    let list = &line[line.find('[').unwrap() + 1..line.rfind(']').unwrap()];
    list.split(',')
        .map(|m| m.trim().trim_matches('"').to_owned())
        .filter(|m| !m.is_empty())
        .collect()
}

/// Whether a `.containerignore` pattern (the subset this repository uses: a path, or
/// `**/name`) excludes `path`.
fn excludes(pattern: &str, path: &str) -> bool {
    match pattern.strip_prefix("**/") {
        Some(name) => path.split('/').any(|part| part == name),
        None => path == pattern || path.starts_with(&format!("{pattern}/")),
    }
}

#[test]
fn every_workspace_member_is_in_the_build_context() {
    let ignore = std::fs::read_to_string(repo().join(".containerignore")).unwrap();
    let patterns: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let members = members();
    assert!(members.len() >= 8, "{members:?}");
    let needed = members.iter().map(String::as_str).chain([
        "Cargo.toml",
        "Cargo.lock",
        "rust-toolchain.toml",
        "policy/requirements.yaml",
    ]);
    for path in needed {
        assert!(repo().join(path).exists(), "{path} does not exist");
        for pattern in &patterns {
            assert!(
                !excludes(pattern, path),
                ".containerignore's {pattern:?} keeps {path} out of the image's build context"
            );
        }
    }
    assert!(excludes("**/target", "policy/target") && excludes("fuzz", "fuzz/corpus/x"));
}

#[test]
fn the_containerfile_copies_the_context_not_a_list_of_members() {
    let containerfile = std::fs::read_to_string(repo().join("Containerfile")).unwrap();
    let copies: Vec<&str> = containerfile
        .lines()
        .filter(|l| l.starts_with("COPY") && !l.contains("--from="))
        .collect();
    assert_eq!(
        copies,
        ["COPY . .", "COPY prebuilt/ /out/"],
        "{containerfile}"
    );
    for member in members() {
        assert!(
            containerfile.contains("-p podguard-server")
                && !containerfile.contains(&format!("COPY {member} ")),
            "the Containerfile copies {member} by name"
        );
    }
}
