//! Hostile policy modules served by the real server: small waPC guests written in WAT that
//! behave on ordinary requests (so the server's warm-up evaluation passes and it gets
//! ready) and misbehave on requests carrying a marker string: an endless loop, unbounded
//! memory growth, a trap, output that is not JSON, a call to a host capability podguard
//! does not offer. Each marked request is answered well within kube-apiserver's longest
//! webhook timeout (10 s), denied with a message saying what happened (or allowed with a
//! warning under `--failure-mode allow`), and the server stays ready: the same policy and
//! the real one answer the next requests. A module that refuses its settings, or imports a
//! function the host lacks, stops the server at start-up with a message that says so.
//!
//! The host-level behaviour of the same failures is tested in
//! `webhook-server/tests/host.rs`; these tests are about what the server makes of them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use podguard_e2e::{
    HttpVersion, Policy, READY_TIMEOUT, ServeConfig, Server, Transport, admission_response,
    fixture, gen_certs, review_with_object, review_with_uid,
};
use serde_json::Value;

/// Requests containing this string make the guests misbehave.
const MARKER: &str = "podguard-hostile";
/// The longest `timeoutSeconds` a webhook configuration may set: an answer later than this
/// is no answer at all for kube-apiserver.
const API_SERVER_LIMIT: Duration = Duration::from_secs(10);
const EVAL_TIMEOUT: &str = "500ms";
const MEMORY_LIMIT_MIB: &str = "32";

/// A waPC guest. `__guest_call` copies the operation to 1024 and the payload to 2048
/// (growing memory to fit), answers `validate_settings` with `settings` and `validate`
/// with `{"accepted":true}`, except that a payload containing [`MARKER`] runs `hostile`
/// instead.
fn guest(settings: &str, hostile: &str) -> String {
    format!(
        r#"(module
  (import "wapc" "__guest_request" (func $guest_request (param i32 i32)))
  (import "wapc" "__guest_response" (func $guest_response (param i32 i32)))
  (import "wapc" "__guest_error" (func $guest_error (param i32 i32)))
  (import "wapc" "__host_call"
    (func $host_call (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wapc" "__host_error_len" (func $host_error_len (result i32)))
  (import "wapc" "__host_error" (func $host_error (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{MARKER}")
  (data (i32.const 64) "{accepted}")
  (data (i32.const 128) "{valid}")
  (data (i32.const 192) "kubernetesv1list_resources_by_namespace")
  (data (i32.const 256) "this is not json")
  (data (i32.const 320) "{refused}")
  (func $ensure (param $bytes i32) (local $have i32)
    (local.set $have (i32.mul (memory.size) (i32.const 65536)))
    (if (i32.gt_u (local.get $bytes) (local.get $have))
      (then (drop (memory.grow
        (i32.add (i32.shr_u (i32.sub (local.get $bytes) (local.get $have)) (i32.const 16))
                 (i32.const 1)))))))
  (func $marked (param $len i32) (result i32) (local $i i32) (local $j i32)
    (if (i32.lt_u (local.get $len) (i32.const {marker_len}))
      (then (return (i32.const 0))))
    (block $done
      (loop $outer
        (br_if $done (i32.gt_u (local.get $i) (i32.sub (local.get $len) (i32.const {marker_len}))))
        (local.set $j (i32.const 0))
        (block $mismatch
          (loop $inner
            (br_if $mismatch
              (i32.ne (i32.load8_u (i32.add (i32.const 2048) (i32.add (local.get $i) (local.get $j))))
                      (i32.load8_u (local.get $j))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br_if $inner (i32.lt_u (local.get $j) (i32.const {marker_len})))
            (return (i32.const 1))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $outer)))
    (i32.const 0))
  (func (export "__guest_call") (param $op_len i32) (param $msg_len i32) (result i32)
    (call $ensure (i32.add (i32.const 2048) (local.get $msg_len)))
    (call $guest_request (i32.const 1024) (i32.const 2048))
    ;; "validate_settings" is the only operation of 17 bytes.
    (if (i32.eq (local.get $op_len) (i32.const 17))
      (then {settings}))
    (if (call $marked (local.get $msg_len))
      (then {hostile}))
    (call $guest_response (i32.const 64) (i32.const {accepted_len}))
    (i32.const 1)))"#,
        marker_len = MARKER.len(),
        accepted = wat_string(ACCEPTED),
        accepted_len = ACCEPTED.len(),
        valid = wat_string(VALID),
        refused = wat_string(REFUSED),
    )
}

const ACCEPTED: &str = r#"{"accepted":true}"#;
const VALID: &str = r#"{"valid":true}"#;
const REFUSED: &str =
    r#"{"valid":false,"message":"podguard-e2e: settings.secretRef must name a Secret"}"#;

/// `text` as the inside of a WAT string literal.
fn wat_string(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

fn settings_valid() -> String {
    format!(
        "(call $guest_response (i32.const 128) (i32.const {})) (return (i32.const 1))",
        VALID.len()
    )
}

fn settings_refused() -> String {
    format!(
        "(call $guest_response (i32.const 320) (i32.const {})) (return (i32.const 1))",
        REFUSED.len()
    )
}

/// Each misbehaviour, with the phrase the answer must carry.
const HOSTILE: [(&str, &str, &str); 5] = [
    (
        "endless-loop",
        "(loop $forever (br $forever))",
        "ran longer than its 500ms deadline and was stopped",
    ),
    (
        "memory-growth",
        "(loop $more (br_if $more (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) (return (i32.const 0))",
        "tried to use more than 32 MiB of memory and was stopped",
    ),
    ("trap", "unreachable", "the policy crashed"),
    (
        "not-json",
        "(call $guest_response (i32.const 256) (i32.const 16)) (return (i32.const 1))",
        "validate answered something that is not a ValidationResponse",
    ),
    (
        "host-call",
        "(if (i32.eqz (call $host_call (i32.const 192) (i32.const 10) (i32.const 202) (i32.const 2)
                                      (i32.const 204) (i32.const 27) (i32.const 2048) (local.get $msg_len)))
           (then
             (call $host_error (i32.const 2048))
             (call $guest_error (i32.const 2048) (call $host_error_len))
             (return (i32.const 0))))",
        "does not offer kubernetes/v1/list_resources_by_namespace",
    ),
];

/// Writes `wat` compiled to a binary module as `dir/NAME.wasm`.
fn write_module(dir: &Path, name: &str, wat: &str) -> PathBuf {
    let bytes = wat::parse_str(wat).unwrap_or_else(|e| panic!("the {name} guest: {e}"));
    let path = dir.join(format!("{name}.wasm"));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// One server with every hostile module plus the real policy (`podguard`).
async fn hostile_server(dir: &Path, failure_mode: &str) -> Server {
    let certs = gen_certs(dir, &["localhost"], false).expect("gen-certs");
    let mut policies = vec![Policy::default_module("podguard")];
    for (name, hostile, _) in HOSTILE {
        policies.push(Policy {
            name: name.to_owned(),
            module: write_module(dir, name, &guest(&settings_valid(), hostile)),
            settings: None,
        });
    }
    let config = ServeConfig {
        policies,
        transport: Transport::tls(&certs),
        args: Vec::new(),
        launcher: Vec::new(),
    }
    .args([
        "--failure-mode",
        failure_mode,
        "--eval-timeout",
        EVAL_TIMEOUT,
        "--memory-limit-mib",
        MEMORY_LIMIT_MIB,
    ]);
    Server::start(config)
        .await
        .expect("podguard serve starts with the hostile modules (their warm-up is unmarked)")
}

/// A compliant Pod review whose object carries the marker (in an annotation).
fn marked_review(uid: &str) -> Vec<u8> {
    let review = fixture("pod-compliant").review;
    let mut object = review["request"]["object"].clone();
    object["metadata"]["annotations"]["podguard.test/marker"] = Value::String(MARKER.to_owned());
    let body = review_with_object(&review, object);
    review_with_uid(&serde_json::from_slice(&body).unwrap(), uid)
}

/// Sends a marked review to `/validate/NAME` and returns the response and how long the
/// answer took.
async fn send_marked(server: &Server, version: HttpVersion, name: &str) -> (Value, Duration) {
    let uid = format!("hostile-{name}-{version:?}");
    let client = server.client(version).unwrap();
    let started = Instant::now();
    let reply = client
        .post(&format!("/validate/{name}"), marked_review(&uid))
        .await
        .unwrap_or_else(|e| panic!("{name} over {version:?}: no answer: {e:#}"));
    let took = started.elapsed();
    let response = admission_response(&reply, &uid)
        .unwrap_or_else(|e| panic!("{name} over {version:?}: {e:#}"));
    (response, took)
}

/// After a hostile call: the same policy answers an unmarked review, and the server is
/// still ready and answers the real policy.
async fn assert_recovered(server: &Server, version: HttpVersion, name: &str) {
    let uid = format!("after-{name}-{version:?}");
    let review = fixture("pod-compliant").review;
    let reply = server
        .client(version)
        .unwrap()
        .post(&format!("/validate/{name}"), review_with_uid(&review, &uid))
        .await
        .unwrap_or_else(|e| panic!("an unmarked review to {name} after its failure: {e:#}"));
    let response = admission_response(&reply, &uid).unwrap();
    assert_eq!(
        response["allowed"], true,
        "{name} over {version:?}: an unmarked review after the failure: {response}"
    );
    server
        .assert_still_serving("/validate/podguard", &format!("the {name} module"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_modules_are_denied_by_default_and_the_server_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let server = hostile_server(dir.path(), "deny").await;
    for version in HttpVersion::ALL {
        for (name, _, phrase) in HOSTILE {
            let (response, took) = send_marked(&server, version, name).await;
            assert!(
                took < API_SERVER_LIMIT,
                "{name} over {version:?}: answered after {took:?}"
            );
            assert_eq!(
                response["allowed"], false,
                "{name} over {version:?}: {response}"
            );
            assert_eq!(
                response["status"]["code"], 500,
                "{name} over {version:?}: {response}"
            );
            let message = response["status"]["message"].as_str().unwrap_or_default();
            assert!(
                message.starts_with(&format!("podguard could not evaluate policy {name}: "))
                    && message.contains(phrase),
                "{name} over {version:?}: the message should say {phrase:?}: {message:?}"
            );
            assert_recovered(&server, version, name).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_modules_are_allowed_with_a_warning_when_failing_open() {
    let dir = tempfile::tempdir().unwrap();
    let server = hostile_server(dir.path(), "allow").await;
    for version in HttpVersion::ALL {
        for (name, _, phrase) in HOSTILE {
            let (response, took) = send_marked(&server, version, name).await;
            assert!(
                took < API_SERVER_LIMIT,
                "{name} over {version:?}: answered after {took:?}"
            );
            assert_eq!(
                response["allowed"], true,
                "{name} over {version:?}: {response}"
            );
            assert!(
                response["status"].is_null(),
                "{name} over {version:?}: an allowed answer has no status: {response}"
            );
            let warning = response["warnings"][0].as_str().unwrap_or_default();
            assert!(
                warning.contains(&format!("podguard could not evaluate policy {name}: "))
                    && warning.contains(phrase)
                    && warning.ends_with("allowed because the failure mode is allow"),
                "{name} over {version:?}: the warning should say {phrase:?} and why it was allowed: {response}"
            );
            assert_recovered(&server, version, name).await;
        }
    }
}

/// Several endless loops at once: each is stopped at its deadline, and none of them keeps
/// an evaluation slot from the requests that come after.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_endless_loops_are_each_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let server = hostile_server(dir.path(), "deny").await;
    let mut calls = Vec::new();
    for i in 0..8 {
        let version = HttpVersion::ALL[i % 2];
        let client = server.client(version).unwrap();
        calls.push(tokio::spawn(async move {
            let uid = format!("loop-{i}");
            let started = Instant::now();
            let reply = client
                .post("/validate/endless-loop", marked_review(&uid))
                .await?;
            anyhow::Ok((uid, reply, started.elapsed()))
        }));
    }
    for call in calls {
        let (uid, reply, took) = call.await.unwrap().expect("an answer");
        assert!(took < API_SERVER_LIMIT, "{uid}: answered after {took:?}");
        // More loops than evaluation slots: a request may instead be told the server is
        // busy (503, which kube-apiserver treats as a webhook failure) but is never left
        // unanswered.
        if reply.status == 503 {
            assert!(
                reply.text().contains("podguard is busy"),
                "{uid}: {}",
                reply.text()
            );
            continue;
        }
        let response = admission_response(&reply, &uid).unwrap();
        assert_eq!(response["allowed"], false, "{uid}: {response}");
        assert!(
            response["status"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("deadline"),
            "{uid}: {response}"
        );
    }
    server
        .assert_still_serving("/validate/podguard", "eight endless loops at once")
        .await;
}

/// Starts `podguard serve` with one module and expects it to exit with status 2 before it
/// is ready; returns its log.
async fn refused_start(dir: &Path, name: &str, wat: &str) -> String {
    let certs = gen_certs(dir, &["localhost"], false).expect("gen-certs");
    let config = ServeConfig {
        policies: vec![Policy {
            name: name.to_owned(),
            module: write_module(dir, name, wat),
            settings: None,
        }],
        transport: Transport::tls(&certs),
        args: Vec::new(),
        launcher: Vec::new(),
    };
    let mut server = Server::spawn(config, &[]).unwrap();
    let status = server
        .wait_exit(READY_TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e:#}; log:\n{}", server.log()));
    assert_eq!(
        status.code(),
        Some(2),
        "{name}: podguard serve exited with {status}; log:\n{}",
        server.log()
    );
    server.log()
}

/// `serve` validates each policy's settings with the module's own `validate_settings`
/// while loading it; a refusal is a start-up error (exit 2) that carries the policy's
/// message, never a server that comes up and denies everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_module_refusing_its_settings_stops_the_server_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let log = refused_start(dir.path(), "refusing", &guest(&settings_refused(), "")).await;
    assert!(
        log.contains("while loading policy refusing")
            && log.contains(
                "policy refusing refused its settings: podguard-e2e: settings.secretRef must name a Secret"
            ),
        "the log should carry the policy's refusal:\n{log}"
    );
    assert!(
        !log.contains(r#""message":"ready""#),
        "a server whose policy refused its settings reported ready:\n{log}"
    );
}

/// A module importing a function the host does not provide cannot be instantiated: the
/// server refuses to start and names the import.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_module_importing_an_unknown_host_function_stops_the_server_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let wat = guest(&settings_valid(), "").replacen(
        "(memory (export",
        "(import \"kubewarden\" \"get_secret\" (func $get_secret (param i32) (result i32)))\n  (memory (export",
        1,
    );
    let log = refused_start(dir.path(), "importing", &wat).await;
    assert!(
        log.contains("while loading policy importing")
            && log.contains("cannot instantiate the module")
            && log.contains("get_secret"),
        "the log should name the missing import:\n{log}"
    );
}
