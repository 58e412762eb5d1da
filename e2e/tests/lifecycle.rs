//! The server's life and its edges: health and metrics endpoints, SIGTERM with requests in
//! flight, oversized and malformed bodies, and `--insecure`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use podguard_e2e::{
    Client, HttpVersion, Method, ServeConfig, Server, StatusCode, Transport, admission_response,
    channel_body, fixture, full, gen_certs, parse_prometheus, poll_until, received_tls_alert,
    rejected_server_certificate, review_with_uid,
};

async fn tls_server(dir: &std::path::Path, args: &[&str]) -> Server {
    let certs = gen_certs(dir, &["localhost"], false).expect("gen-certs");
    Server::start(ServeConfig::new(Transport::tls(&certs)).args(args.iter().copied()))
        .await
        .expect("podguard serve starts")
}

/// The sum of the `podguard_` counters (`_total`) and histogram/summary counts (`_count`).
fn podguard_counts(text: &str) -> f64 {
    parse_prometheus(text)
        .unwrap()
        .iter()
        .filter(|s| {
            s.name.starts_with("podguard_")
                && (s.name.ends_with("_total") || s.name.ends_with("_count"))
        })
        .map(|s| s.value)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_and_metrics_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let server = tls_server(dir.path(), &[]).await;
    let review = fixture("pod-noncompliant").review;
    for version in HttpVersion::ALL {
        let mut connection = server.client(version).unwrap().connect().await.unwrap();
        for path in ["/livez", "/readyz"] {
            let reply = connection.get(path).await.unwrap();
            assert_eq!(
                reply.status,
                StatusCode::OK,
                "{version:?} GET {path}: {}",
                reply.text()
            );
        }

        let before = connection.get("/metrics").await.unwrap();
        assert_eq!(before.status, StatusCode::OK, "{version:?} GET /metrics");
        assert!(
            before
                .content_type()
                .starts_with("application/openmetrics-text; version=1.0.0"),
            "{version:?} /metrics Content-Type is {:?}, not the OpenMetrics text format",
            before.content_type()
        );
        let text = before.text();
        let samples = parse_prometheus(&text).unwrap_or_else(|e| {
            panic!("{version:?} /metrics is not Prometheus text: {e:#}\n{text}")
        });
        assert!(
            samples.iter().any(|s| s.name.starts_with("podguard_")),
            "{version:?} /metrics has no podguard_ metric:\n{text}"
        );
        assert!(
            text.lines().any(|l| l.starts_with("# TYPE podguard_")),
            "{version:?} /metrics has no # TYPE line for a podguard_ metric:\n{text}"
        );

        for i in 0..3 {
            let uid = format!("metrics-{version:?}-{i}");
            let reply = connection
                .post("/validate", review_with_uid(&review, &uid))
                .await
                .unwrap();
            let response = admission_response(&reply, &uid).unwrap();
            assert_eq!(response["allowed"], false);
        }
        let after = connection.get("/metrics").await.unwrap().text();
        assert!(
            podguard_counts(&after) > podguard_counts(&text),
            "{version:?}: no podguard_ counter moved after 3 admission requests:\nbefore:\n{text}\nafter:\n{after}"
        );
    }
}

/// SIGTERM with 32 requests in flight (headers and half of each body sent): every one of
/// them is answered with its AdmissionReview, and the process exits 0 within the grace
/// period.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_answers_every_request_in_flight() {
    const GRACE: Duration = Duration::from_secs(10);
    let dir = tempfile::tempdir().unwrap();
    let mut server = tls_server(
        dir.path(),
        &["--shutdown-grace", "10s", "--request-timeout", "60s"],
    )
    .await;
    let review = fixture("pod-noncompliant").review;

    // 16 HTTP/1.1 connections with one request each, 2 HTTP/2 connections with 8 streams.
    let mut connections = Vec::new();
    for _ in 0..16 {
        connections.push(
            server
                .client(HttpVersion::Http1)
                .unwrap()
                .connect()
                .await
                .unwrap(),
        );
    }
    for _ in 0..2 {
        let first = server
            .client(HttpVersion::Http2)
            .unwrap()
            .connect()
            .await
            .unwrap();
        for _ in 0..7 {
            connections.push(first.try_clone().unwrap());
        }
        connections.push(first);
    }
    // Each connection is live: one complete request first.
    for (i, connection) in connections.iter_mut().enumerate() {
        let uid = format!("warm-{i}");
        let reply = connection
            .post("/validate", review_with_uid(&review, &uid))
            .await
            .unwrap();
        admission_response(&reply, &uid).unwrap();
    }

    let mut in_flight = Vec::new();
    for (i, mut connection) in connections.into_iter().enumerate() {
        let uid = format!("in-flight-{i}");
        let body = review_with_uid(&review, &uid);
        let (sender, request_body) = channel_body(Some(body.len() as u64));
        let request = connection.build(Method::POST, "/validate", request_body);
        let reply = tokio::spawn(async move { connection.send(request).await });
        let half = body.len() / 2;
        sender.send(body[..half].to_vec()).await.unwrap();
        in_flight.push((uid, sender, Bytes::from(body).slice(half..), reply));
    }
    // The halves have been written out; wait until the server counts every request as
    // being handled (its handler is running and reading the body).
    let metrics = server.client(HttpVersion::Http1).unwrap();
    poll_until(
        Duration::from_secs(10),
        "podguard_in_flight_requests to reach 32",
        || {
            let metrics = metrics.clone();
            async move {
                let text = metrics.get("/metrics").await.ok()?.text();
                let in_flight = parse_prometheus(&text)
                    .ok()?
                    .into_iter()
                    .find(|s| s.name == "podguard_in_flight_requests")?
                    .value;
                (in_flight >= 32.0).then_some(())
            }
        },
    )
    .await
    .unwrap();

    let terminated = Instant::now();
    server.terminate().unwrap();
    for (_, sender, rest, _) in &in_flight {
        sender.send(rest.clone()).await.unwrap();
    }
    let mut failures = Vec::new();
    let n = in_flight.len();
    for (uid, sender, _, reply) in in_flight {
        drop(sender);
        let outcome = match tokio::time::timeout(GRACE + Duration::from_secs(5), reply).await {
            Err(_) => Err(anyhow::anyhow!("no answer within the grace period")),
            Ok(joined) => joined.unwrap().and_then(|reply| {
                let response = admission_response(&reply, &uid)?;
                anyhow::ensure!(response["allowed"] == false, "{response}");
                Ok(())
            }),
        };
        if let Err(err) = outcome {
            failures.push(format!("{uid}: {err:#}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {n} requests in flight at SIGTERM were not answered:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let status = server
        .wait_exit(GRACE + Duration::from_secs(5))
        .await
        .expect("podguard serve exits after SIGTERM");
    let took = terminated.elapsed();
    assert!(
        status.success(),
        "podguard serve exited with {status} after SIGTERM"
    );
    assert!(
        took <= GRACE + Duration::from_secs(2),
        "podguard serve took {took:?} to exit, more than the {GRACE:?} grace period"
    );
}

/// A 9 MiB AdmissionReview-shaped body (the default limit is 8 MiB).
fn nine_mib() -> Bytes {
    let size = 9 * 1024 * 1024;
    let mut big = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"big","operation":"CREATE","kind":{"group":"","version":"v1","kind":"ConfigMap"},"object":{"data":{"blob":""#.to_vec();
    big.resize(size - 6, b'a');
    big.extend_from_slice(br#""}}}}"#);
    Bytes::from(big)
}

/// Sends `body` through a channel body (with or without a Content-Length), feeding it in
/// 64 KiB chunks from another task, and returns the response as soon as it comes: a
/// server may answer before it has read the whole body. With `stop_after`, feeding stops
/// after that many bytes.
async fn send_fed(
    server: &Server,
    version: HttpVersion,
    body: Bytes,
    declare_length: bool,
    stop_after: Option<usize>,
) -> anyhow::Result<podguard_e2e::Reply> {
    let mut connection = server.client(version)?.connect().await?;
    let (sender, request_body) = channel_body(declare_length.then_some(body.len() as u64));
    let request = connection.build(Method::POST, "/validate", request_body);
    let reply = tokio::spawn(async move { connection.send(request).await });
    let limit = stop_after.unwrap_or(body.len()).min(body.len());
    let feeder = tokio::spawn(async move {
        for start in (0..limit).step_by(64 * 1024) {
            let end = (start + 64 * 1024).min(limit);
            if sender.send(body.slice(start..end)).await.is_err() {
                break;
            }
        }
        // Keep the body open (not ended) until the response is in.
        std::future::pending::<()>().await;
    });
    let reply = reply.await?;
    feeder.abort();
    reply
}

/// A request that declares a 9 MiB Content-Length gets 413 from its headers alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_body_declared_over_the_limit_gets_413() {
    let dir = tempfile::tempdir().unwrap();
    let server = tls_server(dir.path(), &[]).await;
    for version in HttpVersion::ALL {
        let reply = send_fed(&server, version, nine_mib(), true, Some(64 * 1024))
            .await
            .unwrap_or_else(|e| panic!("{version:?}: 9 MiB declared: no response: {e:#}"));
        assert_eq!(
            reply.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{version:?}: 9 MiB declared: {}",
            reply.text()
        );
    }
}

/// A 9 MiB body streamed without a length (chunked over HTTP/1.1) gets 413 once it passes
/// the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_body_streamed_over_the_limit_gets_413() {
    let dir = tempfile::tempdir().unwrap();
    let server = tls_server(dir.path(), &[]).await;
    for version in HttpVersion::ALL {
        let reply = send_fed(&server, version, nine_mib(), false, None)
            .await
            .unwrap_or_else(|e| panic!("{version:?}: 9 MiB streamed: no response: {e:#}"));
        assert_eq!(
            reply.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{version:?}: 9 MiB streamed without a length: {}",
            reply.text()
        );
    }
}

/// A 9 MiB body written out whole with its Content-Length, as a plain client (and
/// kube-apiserver) sends it, still gets to read the 413.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_9_mib_body_sent_whole_gets_413() {
    let dir = tempfile::tempdir().unwrap();
    let server = tls_server(dir.path(), &[]).await;
    let big = nine_mib();
    for version in HttpVersion::ALL {
        let reply = server
            .client(version)
            .unwrap()
            .request(Method::POST, "/validate", full(big.clone()))
            .await
            .unwrap_or_else(|e| {
                panic!("{version:?}: 9 MiB with Content-Length: no response: {e:#}")
            });
        assert_eq!(
            reply.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{version:?}: 9 MiB with Content-Length: {}",
            reply.text()
        );
    }
}

/// Bodies that are not an `admission.k8s.io/v1` AdmissionReview get 400 with a JSON body
/// that names the problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_body_that_is_not_an_admission_review_gets_400() {
    let dir = tempfile::tempdir().unwrap();
    let server = tls_server(dir.path(), &[]).await;
    let cases: [(&str, &str); 5] = [
        ("this is not JSON", "json"),
        (
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web"},"spec":{"containers":[]}}"#,
            "apiversion",
        ),
        (
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod"}"#,
            "kind",
        ),
        (
            r#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x","operation":"CREATE","kind":{"kind":"Pod"}}}"#,
            "v1beta1",
        ),
        (
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
            "request",
        ),
    ];
    for version in HttpVersion::ALL {
        let mut connection = server.client(version).unwrap().connect().await.unwrap();
        for (body, names) in cases {
            for path in ["/validate", "/mutate"] {
                let reply = connection.post(path, body).await.unwrap();
                assert_eq!(
                    reply.status,
                    StatusCode::BAD_REQUEST,
                    "{version:?} POST {path} {body}: {}",
                    reply.text()
                );
                assert!(
                    reply.content_type().starts_with("application/json"),
                    "{version:?} POST {path} {body}: Content-Type {:?}",
                    reply.content_type()
                );
                let json = reply
                    .json()
                    .unwrap_or_else(|e| panic!("{version:?} POST {path} {body}: {e:#}"));
                assert!(
                    json.to_string().to_lowercase().contains(names),
                    "{version:?} POST {path} {body}: the message should name {names:?}: {json}"
                );
            }
        }
    }
}

/// `--insecure` serves plain HTTP, and no TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn insecure_serves_plain_http() {
    let server = Server::start(ServeConfig::new(Transport::Insecure))
        .await
        .expect("podguard serve --insecure starts");
    let review = fixture("pod-noncompliant").review;
    let expected = fixture("pod-noncompliant").expected().unwrap();
    let client = Client::plain(server.addr, HttpVersion::Http1);
    let reply = client
        .post("/validate", review_with_uid(&review, "plain"))
        .await
        .unwrap();
    assert_eq!(reply.version, HttpVersion::Http1.hyper());
    let response = admission_response(&reply, "plain").unwrap();
    assert_eq!(response["allowed"], false);
    assert_eq!(
        response["status"]["message"],
        expected.message.unwrap().as_str()
    );

    // A TLS client gets no TLS server there.
    let dir = tempfile::tempdir().unwrap();
    let certs = gen_certs(dir.path(), &["localhost"], false).unwrap();
    let tls = Client::https(
        server.addr,
        HttpVersion::Http1,
        &podguard_e2e::TlsOptions::new(&certs.ca),
    )
    .unwrap();
    let err = tls
        .connect()
        .await
        .err()
        .expect("a TLS handshake with an --insecure server must fail");
    assert!(
        received_tls_alert(&err).is_none() && !rejected_server_certificate(&err),
        "expected a non-TLS answer, got: {err:#}"
    );
}

/// `--insecure` also speaks HTTP/2 with prior knowledge (h2c), as hyper's auto server does.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn insecure_speaks_http2_with_prior_knowledge() {
    let server = Server::start(ServeConfig::new(Transport::Insecure))
        .await
        .expect("podguard serve --insecure starts");
    let review = fixture("pod-compliant").review;
    let client = Client::plain(server.addr, HttpVersion::Http2);
    let reply = client
        .post("/validate", review_with_uid(&review, "h2c"))
        .await
        .unwrap();
    let response = admission_response(&reply, "h2c").unwrap();
    assert_eq!(response["allowed"], true);
}
