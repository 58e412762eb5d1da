//! Routes and the admission handler. Errors are values: a malformed review is a 400 with
//! a JSON message, a policy denial is a 200 with `allowed: false`.

use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::Body;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::App;
use super::limits::{BodyBudget, Charge};
use super::metrics::RequestLabels;
use podguard_host::Unfinished;
use podguard_host::admission::{self, Endpoint};

/// An answer, body and all: admission answers are small and complete when produced. The
/// connection streams it out through a [`super::limits::TrackedBody`].
pub(crate) type Reply = Response<Bytes>;

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn json_error(status: StatusCode, message: impl Into<String>) -> Reply {
    let body = serde_json::json!({ "code": status.as_u16(), "message": message.into() });
    reply(status, "application/json", body.to_string())
}

/// Serves one HTTP request; never fails, so a connection never drops a request's answer.
/// Generic over the request body, so the router is tested in-process with a plain body.
pub(crate) async fn handle<B>(app: Arc<App>, request: Request<B>) -> Result<Reply, Infallible>
where
    B: RequestBody,
{
    let path = request.uri().path().to_owned();
    let route = match path.as_str() {
        "/livez" | "/readyz" | "/metrics" => None,
        _ => admission_route(&path),
    };
    let response = match (request.method(), path.as_str(), route) {
        (&Method::GET, "/livez", _) => reply(StatusCode::OK, "text/plain", "ok\n"),
        (&Method::GET, "/readyz", _) if app.is_ready() => {
            reply(StatusCode::OK, "text/plain", "ready\n")
        }
        (&Method::GET, "/readyz", _) => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "not ready: policies are loading or the server is shutting down\n",
        ),
        (&Method::GET, "/metrics", _) => {
            let restarts = app
                .policies
                .get()
                .map(|policies| {
                    policies
                        .iter()
                        .map(|(name, p)| (name.clone(), p.module.instance_restarts()))
                        .collect()
                })
                .unwrap_or_default();
            reply(
                StatusCode::OK,
                super::metrics::CONTENT_TYPE,
                app.metrics.render(&super::metrics::Live {
                    open_connections: app.connections.open(),
                    buffered_body_bytes: app.body_budget.used(),
                    closed_idle: app.connections.closed_idle.load(Ordering::Relaxed),
                    closed_stalled: app.connections.closed_stalled.load(Ordering::Relaxed),
                    restarts,
                }),
            )
        }
        (&Method::POST, _, Some((endpoint, name))) => {
            let name = name.map(str::to_owned);
            admit(&app, request, endpoint, name.as_deref()).await
        }
        (_, _, Some(_)) => json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{path} takes POST with an AdmissionReview"),
        ),
        _ => json_error(
            StatusCode::NOT_FOUND,
            format!(
                "no route {path}: podguard serves POST /validate[/NAME], POST /mutate[/NAME], GET /livez, /readyz and /metrics"
            ),
        ),
    };
    Ok(response)
}

fn admission_route(path: &str) -> Option<(Endpoint, Option<&str>)> {
    let (endpoint, rest) = if let Some(rest) = path.strip_prefix("/validate") {
        (Endpoint::Validate, rest)
    } else {
        (Endpoint::Mutate, path.strip_prefix("/mutate")?)
    };
    match rest {
        "" | "/" => Some((endpoint, None)),
        _ => {
            let name = rest.strip_prefix('/')?;
            (!name.is_empty() && !name.contains('/')).then_some((endpoint, Some(name)))
        }
    }
}

/// How much of an oversized body is read and thrown away.
fn drain_cap(limit: usize) -> usize {
    limit.saturating_mul(4).max(32 * 1024 * 1024)
}

/// Answers 413 at once while the rest of an oversized body is read and dropped, up to a
/// cap and a deadline: a client that writes its whole body before reading (as most do)
/// then reads the 413 instead of a reset connection, and one that waits gets it early.
fn drain_in_background<B: RequestBody>(mut body: B, limit: usize, deadline: std::time::Duration) {
    tokio::spawn(async move {
        let drain = async {
            let mut drained = 0usize;
            while let Some(Ok(frame)) = body.frame().await {
                drained = drained.saturating_add(frame.data_ref().map_or(0, Bytes::len));
                if drained > drain_cap(limit) {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(deadline, drain).await;
    });
}

/// What a request body must be: hyper's own, or any body of bytes in tests.
pub(crate) trait RequestBody:
    Body<Data = Bytes, Error: std::fmt::Display> + Send + Unpin + 'static
{
}

impl<B> RequestBody for B where
    B: Body<Data = Bytes, Error: std::fmt::Display> + Send + Unpin + 'static
{
}

enum BodyError<B> {
    /// Over the limit; the unread rest of the body.
    TooLarge(B),
    /// Every body being read together would pass the body budget.
    OverBudget,
    Read(String),
}

/// Reads the body, stopping as soon as it passes `limit` or the shared budget refuses
/// more. `declared` (Content-Length) is charged up front, so a body that cannot fit is
/// refused before any of it is read.
async fn read_body<B: RequestBody>(
    mut body: B,
    limit: usize,
    declared: Option<usize>,
    budget: &Arc<BodyBudget>,
) -> Result<(Bytes, Charge), BodyError<B>> {
    let mut charge = Charge::none(budget);
    if let Some(length) = declared {
        charge.absorb(budget.charge(length, length).ok_or(BodyError::OverBudget)?);
    }
    // Frames are kept as they arrive and joined once at the end: growing one buffer
    // would hold up to twice the body while it doubles.
    let mut frames: Vec<Bytes> = Vec::new();
    let mut received = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| BodyError::Read(err.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if received + data.len() > limit {
            return Err(BodyError::TooLarge(body));
        }
        received += data.len();
        if received > charge.amount() {
            let more = received - charge.amount();
            charge.absorb(budget.charge(more, received).ok_or(BodyError::OverBudget)?);
        }
        frames.push(data);
    }
    let bytes = match frames.len() {
        0 => Bytes::new(),
        1 => frames.pop().expect("one frame"),
        _ => {
            let mut joined = Vec::with_capacity(received);
            for frame in &frames {
                joined.extend_from_slice(frame);
            }
            Bytes::from(joined)
        }
    };
    Ok((bytes, charge))
}

/// Counts a gauge up for as long as it lives.
struct Gauge<'a>(&'a prometheus_client::metrics::gauge::Gauge);

impl<'a> Gauge<'a> {
    fn up(gauge: &'a prometheus_client::metrics::gauge::Gauge) -> Gauge<'a> {
        gauge.inc();
        Gauge(gauge)
    }
}

impl Drop for Gauge<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Logs why a request was refused, at most once a second per status: a client can send
/// refusals as fast as it likes, and each would otherwise cost a log line.
fn log_refusal(app: &App, status: StatusCode, message: &str) {
    let kind = match status.as_u16() {
        400 => "400",
        404 => "404",
        405 => "405",
        408 => "408",
        413 => "413",
        415 => "415",
        503 => "503",
        _ => "other",
    };
    if let Some(suppressed) = app.log_gate.admit(kind) {
        tracing::info!(
            status = status.as_u16(),
            cause = %cut_message(message),
            similar_refusals_not_logged = suppressed,
            "request refused"
        );
    }
}

/// The start of a refusal message, for the log: messages name sender-chosen values only
/// cut, but stay bounded here whatever a future message says.
fn cut_message(message: &str) -> &str {
    const MAX: usize = 300;
    match message.char_indices().nth(MAX) {
        None => message,
        Some((end, _)) => &message[..end],
    }
}

async fn admit<B: RequestBody>(
    app: &Arc<App>,
    request: Request<B>,
    endpoint: Endpoint,
    name: Option<&str>,
) -> Reply {
    let started = Instant::now();
    let _in_flight = Gauge::up(&app.metrics.in_flight);
    let refuse = |status: StatusCode, message: String| {
        app.metrics.count_rejected(status.as_u16());
        log_refusal(app, status, &message);
        json_error(status, message)
    };

    let Some(policies) = app.policies.get().filter(|_| app.is_ready()) else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "podguard is not ready: its policies are still loading, or it is shutting down"
                .to_owned(),
        );
    };
    let policy = match name {
        Some(name) => policies.get(name),
        None if policies.len() == 1 => policies.values().next(),
        None => None,
    };
    let Some(policy) = policy.cloned() else {
        let loaded = policies.keys().cloned().collect::<Vec<_>>().join(", ");
        let message = match name {
            Some(name) => format!("no policy named {name:?}; loaded: {loaded}"),
            None => format!(
                "several policies are loaded ({loaded}): name one in the path, e.g. /validate/NAME"
            ),
        };
        return refuse(StatusCode::NOT_FOUND, message);
    };
    let policy_name = name.map_or_else(
        || policies.keys().next().cloned().unwrap_or_default(),
        str::to_owned,
    );

    if let Some(content_type) = request.headers().get(CONTENT_TYPE) {
        let json = content_type.to_str().is_ok_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
        if !json {
            return refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "Content-Type is {content_type:?}; send the AdmissionReview as application/json"
                ),
            );
        }
    }
    let limit = app.config.max_body_bytes;
    let too_large = || format!("the body is larger than the {limit}-byte limit (--max-body-bytes)");
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body = request.into_body();
    if declared.is_some_and(|length| length > limit as u64) {
        drain_in_background(body, limit, app.config.request_timeout);
        return refuse(StatusCode::PAYLOAD_TOO_LARGE, too_large());
    }
    let declared = declared.map(|length| length as usize);
    let read = read_body(body, limit, declared, &app.body_budget);
    let (body, body_charge) = match tokio::time::timeout(app.config.request_timeout, read).await {
        Ok(Ok(read)) => read,
        Ok(Err(BodyError::TooLarge(rest))) => {
            drain_in_background(rest, limit, app.config.request_timeout);
            return refuse(StatusCode::PAYLOAD_TOO_LARGE, too_large());
        }
        Ok(Err(BodyError::OverBudget)) => {
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "podguard is busy: request bodies being read already take its {}-byte budget (--max-buffered-bytes); retry",
                    app.body_budget.total()
                ),
            );
        }
        Ok(Err(BodyError::Read(err))) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("the body could not be read: {err}"),
            );
        }
        Err(_) => {
            return refuse(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the body did not arrive within {:?} (--request-timeout)",
                    app.config.request_timeout
                ),
            );
        }
    };

    let slots = Arc::clone(&app.evaluations);
    let permit = match tokio::time::timeout(app.config.queue_timeout, slots.acquire_owned()).await {
        Ok(Ok(permit)) => permit,
        _ => {
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "podguard is busy: {} evaluations are running and none finished within {:?}; retry",
                    app.config.max_concurrent_evaluations, app.config.queue_timeout
                ),
            );
        }
    };
    let failure_mode = app.config.failure_mode;
    // First on this worker, until the engine's next epoch tick: nearly every review ends
    // well within it, and answering here saves two thread hand-offs per request. This
    // part cannot be cancelled (it does not await), so the slot is held throughout.
    let running = Gauge::up(&app.metrics.evaluations_running);
    let started_evaluation = Instant::now();
    let briefly = std::panic::catch_unwind(AssertUnwindSafe(|| {
        admission::review_briefly(
            &policy.module,
            &policy.settings,
            &body,
            endpoint,
            failure_mode,
        )
    }));
    drop(running);
    let evaluated = match briefly {
        Err(_) => Err("the evaluation panicked".to_owned()),
        Ok(Ok(result)) => {
            drop((permit, body, body_charge));
            Ok((result, started_evaluation.elapsed()))
        }
        // A review that needs longer goes where blocking is allowed, so a module running
        // to its deadline never holds an async worker (and with it health checks and
        // other connections). The slot, the body and its budget go with the evaluation,
        // not with this handler: a client that resets the stream or closes the
        // connection drops the handler, and the evaluation must still count against the
        // limit until it ends.
        Ok(Err(Unfinished)) => {
            let evaluating = Arc::clone(app);
            tokio::task::spawn_blocking(move || {
                let running = Gauge::up(&evaluating.metrics.evaluations_running);
                let result = admission::review(
                    &policy.module,
                    &policy.settings,
                    &body,
                    endpoint,
                    failure_mode,
                );
                // The gauge goes down before the slot is free, so it never counts more
                // evaluations than there are slots.
                drop(running);
                drop((permit, body, body_charge));
                (result, started_evaluation.elapsed())
            })
            .await
            .map_err(|join| join.to_string())
        }
    };

    let (result, evaluation_time) = match evaluated {
        Ok(done) => done,
        Err(error) => {
            tracing::error!(%error, "evaluation panicked");
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "podguard failed while evaluating this request; it is logged, please report it"
                    .to_owned(),
            );
        }
    };
    app.metrics
        .observe_evaluation(&policy_name, evaluation_time);
    let endpoint_name = match endpoint {
        Endpoint::Validate => "validate",
        Endpoint::Mutate => "mutate",
    };
    match result {
        Ok(answer) => {
            let verdict = match (&answer.failure, answer.allowed) {
                (Some(_), _) => "error",
                (None, true) => "allowed",
                (None, false) => "denied",
            };
            let summary = &answer.summary;
            let elapsed = started.elapsed();
            app.metrics.count_request(
                RequestLabels {
                    policy: policy_name.clone(),
                    endpoint: endpoint_name,
                    operation: RequestLabels::operation_label(&summary.operation),
                    kind: RequestLabels::kind_label(&summary.kind),
                    verdict,
                    mutated: answer.patched,
                },
                elapsed,
                answer.review["response"]["auditAnnotations"]
                    [podguard_policy::VIOLATIONS_ANNOTATION]
                    .as_str(),
            );
            match &answer.failure {
                Some(failure) => tracing::warn!(
                    uid = %answer.uid, policy = %policy_name, endpoint = endpoint_name,
                    operation = %summary.operation, kind = %summary.kind,
                    namespace = %summary.namespace, name = %summary.name,
                    verdict, error = %podguard_host::chain(failure),
                    duration_ms = elapsed.as_secs_f64() * 1000.0,
                    "policy failed; answered by the failure mode"
                ),
                None => tracing::info!(
                    uid = %answer.uid, policy = %policy_name, endpoint = endpoint_name,
                    operation = %summary.operation, kind = %summary.kind,
                    namespace = %summary.namespace, name = %summary.name,
                    verdict, mutated = answer.patched,
                    duration_ms = elapsed.as_secs_f64() * 1000.0,
                    "admission review answered"
                ),
            }
            reply(
                StatusCode::OK,
                "application/json",
                answer.review.to_string(),
            )
        }
        Err(err) => refuse(StatusCode::BAD_REQUEST, podguard_host::chain(&err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_routes() {
        assert_eq!(
            admission_route("/validate"),
            Some((Endpoint::Validate, None))
        );
        assert_eq!(admission_route("/mutate/"), Some((Endpoint::Mutate, None)));
        assert_eq!(
            admission_route("/mutate/podguard"),
            Some((Endpoint::Mutate, Some("podguard")))
        );
        assert_eq!(admission_route("/validate/a/b"), None);
        assert_eq!(admission_route("/validatex"), None);
        assert_eq!(admission_route("/other"), None);
    }

    /// The router in-process, as policy-server tests its own: the same `handle` the
    /// connections call, a plain body, the real policy module.
    mod router {
        use std::sync::atomic::Ordering;

        use http_body_util::Full;
        use hyper::{Method, Request, StatusCode};
        use serde_json::Value;

        use super::super::super::{App, PolicySource, ServeConfig};
        use super::*;

        fn config(max_body_bytes: usize) -> ServeConfig {
            ServeConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                policies: Vec::new(),
                tls: None,
                failure_mode: podguard_host::admission::FailureMode::Deny,
                max_body_bytes,
                fetch: Default::default(),
                max_buffered_bytes: 64 * 1024 * 1024,
                max_connections: 16,
                idle_timeout: std::time::Duration::from_secs(60),
                write_timeout: std::time::Duration::from_secs(10),
                max_concurrent_evaluations: 2,
                queue_timeout: std::time::Duration::from_secs(1),
                header_timeout: std::time::Duration::from_secs(5),
                request_timeout: std::time::Duration::from_secs(10),
                shutdown_grace: std::time::Duration::from_secs(5),
                workers: 2,
                host: podguard_host::HostConfig {
                    cache_dir: Some(std::env::temp_dir().join("podguard-router-test-cache")),
                    ..podguard_host::HostConfig::default()
                },
            }
        }

        /// An app serving the policy module as `podguard`, ready unless `ready` is false.
        fn serving(max_body_bytes: usize, ready: bool) -> Arc<App> {
            let app = Arc::new(App::new(config(max_body_bytes)));
            let runtime = podguard_host::Runtime::new(app.config.host.clone()).unwrap();
            let source = PolicySource {
                name: "podguard".to_owned(),
                module: podguard_server::policy_ref::PolicyRef::BuiltIn,
                settings: "{}".to_owned(),
            };
            let module = source.module.resolve_blocking(&app.config.fetch).unwrap();
            let policy = podguard_host::policy_file::load_policy(
                &runtime,
                "podguard",
                &module,
                source.settings.clone(),
            )
            .unwrap();
            let _ = app.policies.set(
                [(source.name.clone(), Arc::new(policy))]
                    .into_iter()
                    .collect(),
            );
            app.ready.store(ready, Ordering::Release);
            app
        }

        async fn call(
            app: &Arc<App>,
            method: Method,
            path: &str,
            content_type: &str,
            body: Vec<u8>,
        ) -> (StatusCode, Value) {
            let request = Request::builder()
                .method(method)
                .uri(path)
                .header(CONTENT_TYPE, content_type)
                .body(Full::new(Bytes::from(body)))
                .unwrap();
            let reply = handle(Arc::clone(app), request).await.unwrap();
            let status = reply.status();
            let body = reply.into_body();
            let value = serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
            (status, value)
        }

        fn review(name: &str) -> Vec<u8> {
            serde_json::to_vec(
                &podguard_conformance::fixtures()
                    .into_iter()
                    .find(|f| f.name == name)
                    .unwrap()
                    .review,
            )
            .unwrap()
        }

        #[tokio::test]
        async fn routes_answer_as_documented() {
            let app = serving(1024 * 1024, true);
            let json = "application/json";
            type Case<'a> = (Method, &'a str, &'a str, Vec<u8>, StatusCode, &'a str);
            let cases: [Case; 7] = [
                (Method::GET, "/livez", "", Vec::new(), StatusCode::OK, "ok"),
                (
                    Method::GET,
                    "/readyz",
                    "",
                    Vec::new(),
                    StatusCode::OK,
                    "ready",
                ),
                (
                    Method::GET,
                    "/nope",
                    "",
                    Vec::new(),
                    StatusCode::NOT_FOUND,
                    "no route /nope",
                ),
                (
                    Method::GET,
                    "/validate",
                    "",
                    Vec::new(),
                    StatusCode::METHOD_NOT_ALLOWED,
                    "/validate takes POST",
                ),
                (
                    Method::POST,
                    "/validate",
                    "text/plain",
                    review("pod-compliant"),
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "send the AdmissionReview as application/json",
                ),
                (
                    Method::POST,
                    "/validate",
                    json,
                    b"{nope".to_vec(),
                    StatusCode::BAD_REQUEST,
                    "the body is not a JSON AdmissionReview: key must be a string",
                ),
                (
                    Method::POST,
                    "/validate/other",
                    json,
                    review("pod-compliant"),
                    StatusCode::NOT_FOUND,
                    "no policy named \"other\"; loaded: podguard",
                ),
            ];
            for (method, path, content_type, body, status, needle) in cases {
                let (got, answer) = call(&app, method.clone(), path, content_type, body).await;
                assert_eq!(got, status, "{method} {path}: {answer}");
                let text = match &answer {
                    Value::String(text) => text.clone(),
                    other => other["message"].as_str().unwrap_or_default().to_owned(),
                };
                assert!(text.contains(needle), "{method} {path}: {answer}");
            }
        }

        #[tokio::test]
        async fn a_review_is_answered_with_the_policys_verdict() {
            let app = serving(1024 * 1024, true);
            let (status, answer) = call(
                &app,
                Method::POST,
                "/validate",
                "application/json",
                review("pod-noncompliant"),
            )
            .await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(answer["response"]["allowed"], false, "{answer}");
            assert!(
                answer["response"]["status"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("run-as-non-root")
            );
            let (status, answer) = call(
                &app,
                Method::POST,
                "/validate/podguard",
                "application/json",
                review("pod-compliant"),
            )
            .await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(answer["response"]["allowed"], true, "{answer}");
            let (_, metrics) = call(&app, Method::GET, "/metrics", "", Vec::new()).await;
            assert!(
                metrics.as_str().unwrap().contains("podguard_admission_requests_total{policy=\"podguard\",endpoint=\"validate\",operation=\"CREATE\",kind=\"Pod\",verdict=\"denied\",mutated=\"false\"} 1"),
                "{metrics}"
            );
            assert!(
                metrics.as_str().unwrap().contains("podguard_check_violations_total{policy=\"podguard\",check=\"run-as-non-root\",disposition=\"rejected\"} 1"),
                "{metrics}"
            );
        }

        #[tokio::test]
        async fn limits_and_readiness_refuse_before_evaluating() {
            let app = serving(4096, true);
            let (status, answer) = call(
                &app,
                Method::POST,
                "/validate",
                "application/json",
                vec![b' '; 5000],
            )
            .await;
            assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
            assert_eq!(
                answer["message"],
                "the body is larger than the 4096-byte limit (--max-body-bytes)"
            );

            let loading = serving(1024 * 1024, false);
            let (status, _) = call(&loading, Method::GET, "/readyz", "", Vec::new()).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
            let (status, answer) = call(
                &loading,
                Method::POST,
                "/validate",
                "application/json",
                review("pod-compliant"),
            )
            .await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
            assert!(
                answer["message"].as_str().unwrap().contains("not ready"),
                "{answer}"
            );
        }
    }
}
