//! The Wasm host against small hand-written waPC guests: protocol, host calls, and every
//! way a guest can fail (trap, endless loop, memory growth, garbage output). Each failure
//! is reported as what it is, the failed instance is discarded, and the next call works.

use std::time::{Duration, Instant};

use podguard_host::admission::{self, Endpoint, FailureMode};
use podguard_host::{CallError, HostConfig, HostError, PolicyModule, Runtime, Unfinished};

/// A waPC guest whose `__guest_call` copies the operation to offset 0 and the payload to
/// offset 1024, then runs `body` (which must leave the call's i32 result on the stack).
fn guest(body: &str) -> String {
    format!(
        r#"(module
  (import "wapc" "__guest_request" (func $guest_request (param i32 i32)))
  (import "wapc" "__guest_response" (func $guest_response (param i32 i32)))
  (import "wapc" "__guest_error" (func $guest_error (param i32 i32)))
  (import "wapc" "__host_call" (func $host_call (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wapc" "__host_error_len" (func $host_error_len (result i32)))
  (import "wapc" "__host_error" (func $host_error (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 512) "kubernetesv1list_resources_by_namespace")
  (data (i32.const 600) "kubewardentracinglog")
  (data (i32.const 640) "{{\"valid\":false,\"message\":\"checks.x: nope\"}}")
  (data (i32.const 700) "this is not json")
  (data (i32.const 720) "{{\"level\":\"info\",\"message\":\"hello from the guest\"}}")
  (func (export "__guest_call") (param $op_len i32) (param $msg_len i32) (result i32)
    (call $guest_request (i32.const 0) (i32.const 1024))
    {body}))"#
    )
}

const ECHO: &str = "(call $guest_response (i32.const 1024) (local.get $msg_len)) (i32.const 1)";
const TRAP: &str = "unreachable";
const LOOP: &str = "(loop $forever (br $forever)) (i32.const 0)";
const GROW: &str =
    "(loop $more (br_if $more (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) (i32.const 0)";
const NOT_JSON: &str = "(call $guest_response (i32.const 700) (i32.const 16)) (i32.const 1)";
const REFUSE_SETTINGS: &str = "(call $guest_response (i32.const 640) (i32.const 42)) (i32.const 1)";
/// Asks for a Kubernetes host capability and returns the host's error as its own.
const ASK_KUBERNETES: &str = r#"
    (if (i32.eqz (call $host_call (i32.const 512) (i32.const 10) (i32.const 522) (i32.const 2)
                                  (i32.const 524) (i32.const 27) (i32.const 1024) (local.get $msg_len)))
      (then
        (call $host_error (i32.const 4096))
        (call $guest_error (i32.const 4096) (call $host_error_len))
        (return (i32.const 0))))
    (i32.const 1)"#;
/// Logs through Kubewarden's tracing host call, then echoes.
const LOG_THEN_ECHO: &str = r#"
    (drop (call $host_call (i32.const 600) (i32.const 10) (i32.const 610) (i32.const 7)
                           (i32.const 617) (i32.const 3) (i32.const 720) (i32.const 50)))
    (call $guest_response (i32.const 1024) (local.get $msg_len)) (i32.const 1)"#;

fn config() -> HostConfig {
    HostConfig {
        deadline: Duration::from_millis(300),
        memory_limit: 8 * 1024 * 1024,
        ..HostConfig::default()
    }
}

fn load(runtime: &Runtime, body: &str) -> PolicyModule {
    runtime
        .load("test", guest(body).as_bytes())
        .expect("the test guest loads")
}

/// Whatever went wrong, the module answers the next call with a fresh instance.
fn assert_recovers(runtime: &Runtime, failing: &str) {
    let module = load(runtime, failing);
    let _ = module.call("validate", b"{}");
    assert_eq!(
        module.instance_restarts(),
        1,
        "the failed instance is discarded"
    );
    let echo = load(runtime, ECHO);
    assert_eq!(echo.call("validate", b"again").unwrap(), b"again");
}

#[test]
fn echo_round_trips_operation_and_payload() {
    let runtime = Runtime::new(config()).unwrap();
    let module = load(&runtime, ECHO);
    for payload in [&b"{}"[..], b"", &vec![b'x'; 60_000]] {
        assert_eq!(module.call("validate", payload).unwrap(), payload);
    }
    assert_eq!(module.instance_restarts(), 0);
}

#[test]
fn a_trap_is_reported_and_the_instance_discarded() {
    let runtime = Runtime::new(config()).unwrap();
    let module = load(&runtime, TRAP);
    match module.call("validate", b"{}") {
        Err(err @ CallError::Trap(_)) => {
            let message = podguard_host::chain(&err);
            assert!(message.contains("unreachable"), "{message}")
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert_eq!(module.instance_restarts(), 1);
    assert_recovers(&runtime, TRAP);
}

#[test]
fn an_endless_loop_is_stopped_at_the_deadline() {
    let runtime = Runtime::new(config()).unwrap();
    let module = load(&runtime, LOOP);
    let started = Instant::now();
    let result = module.call("validate", b"{}");
    let elapsed = started.elapsed();
    assert!(
        matches!(result, Err(CallError::Deadline(d)) if d == Duration::from_millis(300)),
        "{result:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(300),
        "stopped early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(3),
        "stopped late: {elapsed:?}"
    );
    assert!(result.unwrap_err().to_string().contains("deadline"));
    assert_recovers(&runtime, LOOP);
}

/// The brief first attempt a server makes on its async worker: a quick call answers, an
/// endless loop gives up within a tick or two (not the deadline), and the full call after
/// it still runs to the deadline.
#[test]
fn a_brief_call_answers_quick_calls_and_gives_up_on_long_ones() {
    let runtime = Runtime::new(config()).unwrap();
    let echo = load(&runtime, ECHO);
    assert_eq!(
        echo.call_briefly("validate", b"quick").unwrap().unwrap(),
        b"quick"
    );
    let looping = load(&runtime, LOOP);
    let started = Instant::now();
    assert!(matches!(
        looping.call_briefly("validate", b"{}"),
        Err(Unfinished)
    ));
    let gave_up_after = started.elapsed();
    assert!(
        gave_up_after < Duration::from_millis(100),
        "a brief call ran {gave_up_after:?}, near the 300 ms deadline"
    );
    assert_eq!(
        looping.instance_restarts(),
        0,
        "giving up early is not a failure of the module"
    );
    assert!(matches!(
        looping.call("validate", b"{}"),
        Err(CallError::Deadline(_))
    ));
    assert_eq!(looping.instance_restarts(), 1);
    assert_eq!(echo.call("validate", b"again").unwrap(), b"again");
}

#[test]
fn unbounded_memory_growth_hits_the_cap() {
    let runtime = Runtime::new(config()).unwrap();
    let module = load(&runtime, GROW);
    let result = module.call("validate", b"{}");
    assert!(
        matches!(result, Err(CallError::MemoryCap(cap)) if cap == 8 * 1024 * 1024),
        "{result:?}"
    );
    assert!(result.unwrap_err().to_string().contains("8 MiB"));
    assert_recovers(&runtime, GROW);
}

#[test]
fn an_unoffered_host_capability_is_an_error_returned_to_the_guest() {
    let runtime = Runtime::new(config()).unwrap();
    let module = load(&runtime, ASK_KUBERNETES);
    match module.call("validate", b"{}") {
        Err(CallError::Guest(message)) => {
            assert!(
                message.contains("does not offer kubernetes/v1/list_resources_by_namespace"),
                "{message}"
            )
        }
        other => panic!("expected the host's refusal passed back by the guest, got {other:?}"),
    }
    // The guest handled the error itself: the instance is healthy and reused.
    assert_eq!(module.instance_restarts(), 0);
}

#[test]
fn kubewarden_sdk_logging_is_served() {
    let runtime = Runtime::new(config()).unwrap();
    let module = load(&runtime, LOG_THEN_ECHO);
    assert_eq!(module.call("validate", b"ok").unwrap(), b"ok");
}

#[test]
fn a_settings_refusal_carries_the_policys_message() {
    let runtime = Runtime::new(config()).unwrap();
    let module = load(&runtime, REFUSE_SETTINGS);
    match module.validate_settings(b"{}") {
        Err(HostError::SettingsRefused { message, .. }) => assert_eq!(message, "checks.x: nope"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn modules_that_are_not_wapc_policies_are_refused_at_load() {
    let runtime = Runtime::new(config()).unwrap();
    let no_guest_call = r#"(module (memory (export "memory") 1))"#;
    match runtime.load("plain", no_guest_call.as_bytes()) {
        Err(err @ HostError::NotWaPC { .. }) => assert!(err.to_string().contains("__guest_call")),
        other => panic!("expected NotWaPC, got {other:?}"),
    }
    match runtime.load("garbage", b"\0asm garbage") {
        Err(HostError::Compile { .. }) => {}
        other => panic!("expected a compile error, got {other:?}"),
    }
    let unknown_import = r#"(module (import "env" "mystery" (func)) (memory (export "memory") 1)
        (func (export "__guest_call") (param i32 i32) (result i32) (i32.const 1)))"#;
    match runtime.load("imports", unknown_import.as_bytes()) {
        Err(err @ HostError::Link { .. }) => {
            let message = podguard_host::chain(&err);
            assert!(message.contains("mystery"), "{message}")
        }
        other => panic!("expected a link error, got {other:?}"),
    }
}

const REVIEW: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-1","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","namespace":"n","object":{"metadata":{"name":"p"}}}}"#;

#[test]
fn a_failing_policy_is_answered_by_the_failure_mode() {
    let runtime = Runtime::new(config()).unwrap();
    for (body, what) in [
        (TRAP, "crashed"),
        (LOOP, "deadline"),
        (GROW, "memory"),
        (NOT_JSON, "not a ValidationResponse"),
    ] {
        let module = load(&runtime, body);
        let denied = admission::review(
            &module,
            "{}",
            REVIEW.as_bytes(),
            Endpoint::Mutate,
            FailureMode::Deny,
        )
        .unwrap();
        let response = &denied.review["response"];
        assert_eq!(response["uid"], "u-1");
        assert_eq!(response["allowed"], false, "{what}: {response}");
        assert_eq!(response["status"]["code"], 500);
        let message = response["status"]["message"].as_str().unwrap();
        assert!(
            message.contains("could not evaluate policy test") && message.contains(what),
            "{message}"
        );
        assert!(denied.failure.is_some());

        let allowed = admission::review(
            &module,
            "{}",
            REVIEW.as_bytes(),
            Endpoint::Mutate,
            FailureMode::Allow,
        )
        .unwrap();
        let response = &allowed.review["response"];
        assert_eq!(response["allowed"], true, "{what}: {response}");
        let warning = response["warnings"][0].as_str().unwrap();
        assert!(
            warning.contains(what) && warning.contains("failure mode is allow"),
            "{warning}"
        );
    }
}

#[test]
fn precompiled_modules_are_cached_by_digest() {
    let cache = tempfile::tempdir().unwrap();
    let config = HostConfig {
        cache_dir: Some(cache.path().to_owned()),
        ..config()
    };
    let wat = guest(ECHO);
    let runtime = Runtime::new(config.clone()).unwrap();
    let first = runtime.load("a", wat.as_bytes()).unwrap();
    let files: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].to_string_lossy().into_owned();
    assert!(
        name.starts_with(first.digest()) && name.ends_with(".cwasm"),
        "{name}"
    );

    // A second runtime (a restart) loads the artifact instead of compiling, and it works.
    let again = Runtime::new(config)
        .unwrap()
        .load("a", wat.as_bytes())
        .unwrap();
    assert_eq!(again.call("validate", b"cached").unwrap(), b"cached");
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 1);
}

#[test]
fn threads_loading_one_module_into_one_cache_all_succeed() {
    let cache = tempfile::tempdir().unwrap();
    let config = HostConfig {
        cache_dir: Some(cache.path().to_owned()),
        ..config()
    };
    let wat = guest(ECHO);
    std::thread::scope(|scope| {
        let loads: Vec<_> = (0..8)
            .map(|_| {
                let config = config.clone();
                let wat = &wat;
                scope.spawn(move || -> Result<Vec<u8>, String> {
                    let runtime = Runtime::new(config).map_err(|err| err.to_string())?;
                    let module = runtime
                        .load("a", wat.as_bytes())
                        .map_err(|err| podguard_host::chain(&err))?;
                    module.call("validate", b"x").map_err(|err| err.to_string())
                })
            })
            .collect();
        for load in loads {
            assert_eq!(load.join().unwrap().unwrap(), b"x");
        }
    });
    let names: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names.len(),
        1,
        "one artifact, no temporary files left: {names:?}"
    );
}
