//! Embeds the requirements document as the module's default settings.
//!
//! The YAML is converted to JSON here so the module carries no YAML parser: it only ever
//! reads JSON (Kubewarden hands settings over as JSON too).

use std::{env, fs, path::PathBuf};

// The settings module is compiled here too, with the checks (which own their options) and
// what they read, so an organisation's requirements file that does not validate fails the
// build with the field named, instead of failing at admission.
#[allow(
    dead_code,
    unused_imports,
    reason = "the build script uses only the validation entry points"
)]
#[path = "src/checks/mod.rs"]
mod checks;
#[allow(
    dead_code,
    reason = "the build script uses only the validation entry points"
)]
#[path = "src/glob.rs"]
mod glob;
#[allow(
    dead_code,
    reason = "the build script uses only the validation entry points"
)]
#[path = "src/object.rs"]
mod object;
#[allow(
    dead_code,
    reason = "the build script uses only the validation entry points"
)]
#[path = "src/quantity.rs"]
mod quantity;
#[allow(
    dead_code,
    reason = "the build script uses only the validation entry points"
)]
#[path = "src/settings.rs"]
mod settings;
#[allow(
    dead_code,
    reason = "the build script uses only the validation entry points"
)]
#[path = "src/view.rs"]
mod view;

fn main() {
    println!("cargo::rerun-if-env-changed=PODGUARD_REQUIREMENTS");
    let path = env::var_os("PODGUARD_REQUIREMENTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("requirements.yaml"));
    println!("cargo::rerun-if-changed={}", path.display());
    for module in [
        "src/settings.rs",
        "src/quantity.rs",
        "src/glob.rs",
        "src/object.rs",
        "src/view.rs",
        "src/checks",
    ] {
        println!("cargo::rerun-if-changed={module}");
    }

    let text = fs::read_to_string(&path).unwrap_or_else(|err| {
        panic!(
            "cannot read the requirements file {}: {err} (set PODGUARD_REQUIREMENTS to an existing file)",
            path.display()
        )
    });
    let document: serde_json::Value = serde_saphyr::from_str(&text)
        .unwrap_or_else(|err| panic!("{} is not valid YAML: {err}", path.display()));
    if !document.is_object() {
        panic!(
            "{} must be a mapping with `checks` and `exemptions`, not {document}",
            path.display()
        );
    }

    if let Err(err) = settings::Settings::from_value(document.clone()).and_then(|s| s.compile()) {
        panic!(
            "{} is not a valid requirements document: {err}",
            path.display()
        );
    }

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(out.join("requirements.json"), document.to_string()).expect("OUT_DIR is writable");
}
