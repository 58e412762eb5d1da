//! `podguard eval`: one AdmissionReview in, the response out, like `kwctl run`.

use std::io::Read as _;

use anyhow::Context as _;

use podguard_host::Runtime;
use podguard_host::admission::{self, Endpoint, FailureMode};
use podguard_host::policy_file::{load_policy, read_settings};

use crate::cli::EvalCommand;

/// What the request would get, as the exit code says it (0 allowed, 1 denied, 2 error),
/// so scripts can branch on it.
pub(super) fn run(cmd: &EvalCommand) -> std::process::ExitCode {
    match evaluate(cmd, &mut std::io::stdout().lock()) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(err) => {
            eprintln!("podguard eval: {err:#}");
            std::process::ExitCode::from(2)
        }
    }
}

/// The largest AdmissionReview `eval` reads: the server's default body limit, with room.
/// An input with no end (`/dev/zero`) would otherwise be read into memory until it ran out.
pub(crate) const MAX_REVIEW_BYTES: u64 = 64 * 1024 * 1024;

/// Evaluates one review and writes the AdmissionReview response to `out`; whether the
/// request would be allowed.
fn evaluate(args: &EvalCommand, out: &mut dyn std::io::Write) -> anyhow::Result<bool> {
    let (body, source) = match args.review.as_deref() {
        Some(path) if path.as_os_str() != "-" => {
            let file = std::fs::File::open(path)
                .with_context(|| format!("while reading the AdmissionReview {}", path.display()))?;
            let source = path.display().to_string();
            (read_capped(file, &source)?, source)
        }
        _ => (
            read_capped(std::io::stdin().lock(), "stdin")?,
            "stdin".to_owned(),
        ),
    };
    let body = as_review(body, &source)?;
    let host = crate::config::command_host_config(&args.host);
    let module = crate::config::command_module(&args.policy, &host)?;
    let runtime = Runtime::new(host)?;
    let policy = load_policy(
        &runtime,
        &module.default_name(),
        &module,
        read_settings(args.policy.settings.as_deref())?,
    )?;
    let answer = admission::review(
        &policy.module,
        &policy.settings,
        &body,
        Endpoint::Mutate,
        FailureMode::Deny,
    )
    .context("while reading the AdmissionReview")?;
    serde_json::to_writer_pretty(&mut *out, &answer.review)?;
    writeln!(out)?;
    Ok(answer.allowed)
}

/// The input as an AdmissionReview: a review is taken as it is; a bare AdmissionRequest
/// (what Kubewarden policies' test data and `kwctl run --request-path` hold) is wrapped in
/// one; a plain manifest is refused with the command that judges manifests.
fn as_review(body: Vec<u8>, source: &str) -> anyhow::Result<Vec<u8>> {
    #[derive(serde::Deserialize)]
    struct Head {
        kind: Option<serde_json::Value>,
        #[serde(rename = "apiVersion")]
        api_version: Option<String>,
        uid: Option<serde_json::Value>,
    }
    // Anything that does not parse goes on, and the review parser names what is wrong.
    let Ok(head) = serde_json::from_slice::<Head>(&body) else {
        return Ok(body);
    };
    match (&head.kind, &head.uid) {
        (Some(serde_json::Value::String(kind)), _) if kind == "AdmissionReview" => Ok(body),
        // An AdmissionRequest's `kind` is a {group, version, kind} object.
        (Some(serde_json::Value::Object(_)), Some(_)) => {
            let mut review =
                br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":"#
                    .to_vec();
            review.extend_from_slice(&body);
            review.push(b'}');
            Ok(review)
        }
        (Some(serde_json::Value::String(kind)), _) => anyhow::bail!(
            "{source} is a {kind} manifest{}, not an AdmissionReview: judge manifests with `podguard audit {}`",
            head.api_version
                .map(|v| format!(" ({v})"))
                .unwrap_or_default(),
            if source == "stdin" { "-" } else { source }
        ),
        _ => Ok(body),
    }
}

fn read_capped(reader: impl std::io::Read, name: &str) -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    reader
        .take(MAX_REVIEW_BYTES + 1)
        .read_to_end(&mut body)
        .with_context(|| format!("while reading the AdmissionReview from {name}"))?;
    if body.len() as u64 > MAX_REVIEW_BYTES {
        anyhow::bail!(
            "{name} holds more than {MAX_REVIEW_BYTES} bytes; an AdmissionReview is a few kilobytes (kube-apiserver sends at most a few megabytes): pass the review file"
        );
    }
    Ok(body)
}
