//! The ways a client once took the webhook down, each run against the real server over
//! TLS with a bounded load on loopback while legitimate reviews keep flowing: each test
//! asserts that those reviews are all answered with a p99 under a second, that memory
//! stays under the shipped Deployment's 256 MiB limit, and what the defence did.
//! RELIABILITY.md lists the attacks, the defences and the figures.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper_util::rt::{TokioExecutor, TokioIo};
use podguard_e2e::{
    HttpVersion, LegitimateTraffic, Method, Policy, ResourceSampler, ServeConfig, Server,
    StatusCode, Transport, channel_body, fixture, full, gen_certs, metric, process_status,
    review_with_object, review_with_uid,
};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;

/// The memory limit of the shipped Deployment (deploy/base/deployment.yaml).
const SHIPPED_LIMIT_KIB: u64 = 256 * 1024;

/// What a legitimate review may take at worst while an attack runs.
const LEGITIMATE_P99: Duration = Duration::from_secs(1);

async fn start(dir: &std::path::Path, config: impl FnOnce(ServeConfig) -> ServeConfig) -> Server {
    let certs = gen_certs(dir, &["localhost"], false).expect("gen-certs");
    Server::start(config(ServeConfig::new(Transport::tls(&certs))))
        .await
        .expect("podguard serve starts")
}

/// A Pod review of `n` containers carrying only a name and an image: every container
/// breaks several checks.
fn bare_pod_review(n: usize) -> Value {
    let review = fixture("pod-compliant").review;
    let mut object = review["request"]["object"].clone();
    object["spec"]["containers"] = (0..n)
        .map(|i| json!({"name": format!("c{i}"), "image": format!("registry.example/app:{i}")}))
        .collect();
    serde_json::from_slice(&review_with_object(&review, object)).unwrap()
}

async fn metrics(server: &Server) -> String {
    let client = server.client(HttpVersion::Http1).unwrap();
    client.get("/metrics").await.expect("/metrics").text()
}

/// Evaluations stay within `--max-concurrent-evaluations` however often clients give up
/// on their requests, and costly objects (2,000 bare containers) cost time linear in
/// their findings: six senders that cancel each request once it is being evaluated leave
/// the legitimate reviews answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelled_requests_keep_their_evaluation_slot() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |c| {
        c.args(["--max-concurrent-evaluations", "2"])
    })
    .await;
    server.assert_still_serving("/validate", "start-up").await;
    let (_, threads_before) = process_status(server.pid()).unwrap();
    let costly = Bytes::from(review_with_uid(&bare_pod_review(2_000), "costly"));

    let sampler = ResourceSampler::start(server.pid());
    let legitimate = LegitimateTraffic::start(&server, HttpVersion::Http2, "/validate");
    let attack_until = Instant::now() + Duration::from_secs(6);
    let sent = Arc::new(AtomicU64::new(0));
    let mut attackers = Vec::new();
    for _ in 0..6 {
        let client = server.client(HttpVersion::Http2).unwrap();
        let costly = costly.clone();
        let sent = Arc::clone(&sent);
        attackers.push(tokio::spawn(async move {
            while Instant::now() < attack_until {
                let Ok(mut connection) = client.connect().await else {
                    continue;
                };
                let request = connection.build(Method::POST, "/validate", full(costly.clone()));
                // Long enough for the body to arrive and the evaluation to start, then
                // the connection is dropped with the request unanswered.
                let _ =
                    tokio::time::timeout(Duration::from_millis(15), connection.send(request)).await;
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let mut most_running = 0f64;
    while Instant::now() < attack_until {
        if let Ok(running) = metric(&metrics(&server).await, "podguard_evaluations_running") {
            most_running = most_running.max(running);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for attacker in attackers {
        attacker.await.unwrap();
    }
    let traffic = legitimate.finish().await;
    let (peak_rss, peak_threads) = sampler.finish().await;

    eprintln!(
        "figures: cancelled costly requests: {} sent; at most {most_running} evaluations running; threads {threads_before} -> {peak_threads}; peak RSS {peak_rss} KiB; legitimate: {} answered, p99 {:?}",
        sent.load(Ordering::Relaxed),
        traffic.answered,
        traffic.p99()
    );
    traffic.assert_served(LEGITIMATE_P99, "cancelled costly requests");
    assert!(
        sent.load(Ordering::Relaxed) > 30,
        "the attack sent only {} requests",
        sent.load(Ordering::Relaxed)
    );
    assert!(
        most_running <= 2.0,
        "{most_running} evaluations ran at once, above --max-concurrent-evaluations 2"
    );
    // Evaluations run on blocking threads: more of them at once would need more threads.
    assert!(
        peak_threads <= threads_before + 4,
        "threads grew from {threads_before} to {peak_threads}: evaluations escaped their limit"
    );
    assert!(peak_rss < SHIPPED_LIMIT_KIB, "peak RSS {peak_rss} KiB");
    server
        .assert_still_serving("/validate", "cancelled costly requests")
        .await;
}

/// Forty HTTP/1.1 connections and a hundred HTTP/2 streams each sending a body one byte
/// short of the 7 MiB limit, never finishing it: together they get no more than the
/// 64 MiB body budget less the eighth kept for ordinary reviews, the rest are refused at
/// once with 503, legitimate reviews go on, and the memory is given back afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bodies_near_the_limit_share_a_bounded_budget() {
    const LIMIT: u64 = 7 * 1024 * 1024;
    const CHUNK: usize = 64 * 1024;
    // 120 of the bodies declare their length and at most 8 fit the budget.
    const EXPECTED_REFUSALS: u64 = 60;
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |c| c.args(["--request-timeout", "30s"])).await;
    server.assert_still_serving("/validate", "start-up").await;
    let (baseline, _) = process_status(server.pid()).unwrap();

    let sampler = ResourceSampler::start(server.pid());
    let legitimate = LegitimateTraffic::start(&server, HttpVersion::Http1, "/validate");
    let refused = Arc::new(AtomicU64::new(0));
    let mut attackers = Vec::new();
    let feed = |mut connection: podguard_e2e::Connection, declared: bool| {
        let (sender, body) = channel_body(declared.then_some(LIMIT - 1));
        let request = connection.build(Method::POST, "/validate", body);
        let refused = Arc::clone(&refused);
        let answer = async move {
            if let Ok(reply) = connection.send(request).await
                && reply.status == StatusCode::SERVICE_UNAVAILABLE
            {
                assert!(
                    reply.text().contains("--max-buffered-bytes"),
                    "{}",
                    reply.text()
                );
                refused.fetch_add(1, Ordering::Relaxed);
            }
        };
        let feeder = async move {
            let block = Bytes::from(vec![b' '; CHUNK]);
            let mut sent = 0u64;
            while sent + (CHUNK as u64) < LIMIT - 2 {
                if sender.send(block.clone()).await.is_err() {
                    return;
                }
                sent += CHUNK as u64;
            }
            // One byte short: the body never completes.
            std::future::pending::<()>().await;
        };
        tokio::spawn(async move {
            tokio::select! {
                () = answer => {}
                () = feeder => {}
            }
        })
    };
    for i in 0..40 {
        let connection = server
            .client(HttpVersion::Http1)
            .unwrap()
            .connect()
            .await
            .unwrap();
        attackers.push(feed(connection, i % 2 == 0));
    }
    let h2 = server
        .client(HttpVersion::Http2)
        .unwrap()
        .connect()
        .await
        .unwrap();
    for _ in 0..100 {
        attackers.push(feed(h2.try_clone().unwrap(), true));
    }

    // The attack is held for five seconds at least, and longer while fewer bodies than
    // expected have had their answer: on a loaded machine the 140 bodies' headers reach
    // the server later, and a refusal counts only once its answer is back.
    let mut most_buffered = 0f64;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5)
        || (refused.load(Ordering::Relaxed) < EXPECTED_REFUSALS
            && started.elapsed() < Duration::from_secs(30))
    {
        if let Ok(bytes) = metric(&metrics(&server).await, "podguard_buffered_body_bytes") {
            most_buffered = most_buffered.max(bytes);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let traffic = legitimate.finish().await;
    let (peak_rss, _) = sampler.finish().await;
    for attacker in &attackers {
        attacker.abort();
    }
    drop(h2);

    traffic.assert_served(LEGITIMATE_P99, "140 bodies near the size limit");
    // The rest hold the budget, or wait for HTTP/2 flow control behind those that do.
    assert!(
        refused.load(Ordering::Relaxed) >= EXPECTED_REFUSALS,
        "only {} of 140 bodies were refused for the budget",
        refused.load(Ordering::Relaxed)
    );
    assert!(
        most_buffered <= (64 * 1024 * 1024) as f64,
        "{most_buffered} bytes buffered, above the 64 MiB budget"
    );
    assert!(
        peak_rss < SHIPPED_LIMIT_KIB && peak_rss < baseline + 160 * 1024,
        "peak RSS {peak_rss} KiB (baseline {baseline} KiB)"
    );
    // The bodies' memory goes back once they are gone.
    let mut settled = u64::MAX;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        settled = process_status(server.pid()).unwrap().0;
        if settled < baseline + 48 * 1024 {
            break;
        }
    }
    assert!(
        settled < baseline + 48 * 1024,
        "RSS stayed at {settled} KiB after the bodies were dropped (baseline {baseline} KiB, peak {peak_rss} KiB)"
    );
    eprintln!(
        "figures: bodies near the limit: {} of 140 refused at once; at most {most_buffered} bytes buffered; RSS baseline {baseline} KiB, peak {peak_rss} KiB, after {settled} KiB; legitimate: {} answered, p99 {:?}",
        refused.load(Ordering::Relaxed),
        traffic.answered,
        traffic.p99()
    );
    let buffered = metric(&metrics(&server).await, "podguard_buffered_body_bytes").unwrap();
    assert_eq!(buffered, 0.0, "every body's budget was given back");
    server
        .assert_still_serving("/validate", "bodies near the size limit")
        .await;
}

/// Started on one CPU of a larger machine (as under a Pod's cpuset or CPU limit), the
/// server sizes its async workers and evaluation slots by that one CPU, not the host's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_and_evaluation_slots_follow_the_cpus_the_process_may_use() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |c| c.launched_by(["taskset", "-c", "0"])).await;
    server.assert_still_serving("/validate", "one CPU").await;
    let listening = server
        .log()
        .lines()
        .find(|line| line.contains("listening"))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no 'listening' line in the log\n{}", server.log()));
    let line: serde_json::Value = serde_json::from_str(&listening).unwrap();
    assert_eq!(line["workers"], 1, "{listening}");
    assert_eq!(line["evaluation_slots"], 2, "{listening}");
}

/// Started with a soft open-file limit of 256 (a hard one of 1,024), the server raises the
/// soft limit and serves at most what it allows; 1,011 idle HTTP/2 connections then fill
/// it, and idle connections make room within a fraction of a second, so no client is
/// locked out and no accept ever fails for want of descriptors.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_connections_cannot_lock_clients_out() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |c| {
        c.launched_by(["prlimit", "--nofile=256:1024"])
    })
    .await;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid())).unwrap();
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .skip(3)
        .take(2)
        .collect::<Vec<_>>();
    assert_eq!(
        open_files,
        ["1024", "1024"],
        "soft limit raised to the hard one\n{limits}"
    );
    assert!(
        server.log().contains("serving fewer connections"),
        "the log says the connection limit was lowered to fit\n{}",
        server.log()
    );

    let legitimate = LegitimateTraffic::start(&server, HttpVersion::Http2, "/validate");
    let sampler = ResourceSampler::start(server.pid());
    let started = Instant::now();
    let idle = Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let mut openers = Vec::new();
    for task in 0..16 {
        let client = server.client(HttpVersion::Http2).unwrap();
        let idle = Arc::clone(&idle);
        openers.push(tokio::spawn(async move {
            for i in (task..1011).step_by(16) {
                // Half of them send one request first, as a client would before idling.
                let opened = tokio::time::timeout(Duration::from_secs(3), client.connect()).await;
                if let Ok(Ok(mut connection)) = opened {
                    if i % 2 == 0 {
                        let _ = connection.get("/livez").await;
                    }
                    idle.lock().await.push(connection);
                }
            }
        }));
    }
    for opener in openers {
        opener.await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let traffic = legitimate.finish().await;
    let (peak_rss, _) = sampler.finish().await;
    let opened = idle.lock().await.len();
    drop(idle);

    let closed_idle = metric(
        &metrics(&server).await,
        "podguard_idle_connections_closed_total",
    )
    .unwrap();
    eprintln!(
        "figures: idle connections: {opened} opened, {closed_idle} closed idle; peak RSS {peak_rss} KiB; legitimate: {} answered, p99 {:?}",
        traffic.answered,
        traffic.p99()
    );
    traffic.assert_served(LEGITIMATE_P99, "1,011 idle HTTP/2 connections");
    assert!(opened > 900, "only {opened} attacking connections opened");
    assert!(peak_rss < SHIPPED_LIMIT_KIB, "peak RSS {peak_rss} KiB");
    let text = metrics(&server).await;
    assert!(
        metric(&text, "podguard_idle_connections_closed_total").unwrap() > 50.0,
        "idle connections were closed to make room\n{text}"
    );
    let log = server.log();
    assert!(!log.contains("accept failed"), "an accept failed:\n{log}");
    // Idle connections make room from 90% of the limit on, so the limit itself may never
    // be reached; when it is, the log says so at most once a second.
    let limit_lines = log.matches("connection limit reached").count();
    let seconds = started.elapsed().as_secs() + 1;
    assert!(
        limit_lines <= seconds as usize + 1,
        "{limit_lines} connection-limit lines in {seconds} s: at most one a second\n{log}"
    );
    server
        .assert_still_serving("/validate", "1,011 idle connections")
        .await;
}

/// An oversized uid is refused, not echoed; a client that never reads its answers (an
/// HTTP/2 stream window of zero, and HTTP/1.1 requests pipelined without reading) loses
/// its connection at the write timeout, and holds up neither other clients nor SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unread_responses_are_dropped_at_the_write_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let settings = dir.path().join("settings.yaml");
    std::fs::write(
        &settings,
        "checks:\n  run-as-non-root: {mode: mutate}\n  drop-capabilities: {mode: mutate}\n  resource-limits: {mode: mutate}\n  no-privilege-escalation: {mode: mutate}\n  read-only-root-filesystem: {mode: mutate}\n  prometheus-annotations: {mode: \"off\"}\n",
    )
    .unwrap();
    let server = start(dir.path(), |mut c| {
        c.policies = vec![Policy::default_module("podguard").with_settings(&settings)];
        c.args(["--write-timeout", "2s", "--shutdown-grace", "25s"])
    })
    .await;

    // A 7 MiB uid: refused with a short answer, not echoed back.
    let mut review = fixture("pod-compliant").review;
    review["request"]["uid"] = json!("u".repeat(6 * 1024 * 1024));
    let reply = server
        .client(HttpVersion::Http1)
        .unwrap()
        .post("/validate", serde_json::to_vec(&review).unwrap())
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
    assert!(
        reply.body.len() < 300,
        "{} bytes: {}",
        reply.body.len(),
        reply.text()
    );
    assert!(
        reply.text().contains("request.uid is 6291456 bytes long"),
        "{}",
        reply.text()
    );

    // A mutate answer of about 120 kB (a JSON Patch for 300 containers).
    let mutate = Bytes::from(review_with_uid(&bare_pod_review(300), "unread"));
    let legitimate = LegitimateTraffic::start(&server, HttpVersion::Http1, "/validate");
    let sampler = ResourceSampler::start(server.pid());

    // HTTP/2 with a stream window of zero: no answer can be sent.
    let tls = server.raw_tls(HttpVersion::Http2).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(0)
        .adaptive_window(false)
        .handshake::<_, http_body_util::Full<Bytes>>(TokioIo::new(tls))
        .await
        .unwrap();
    let h2_started = Instant::now();
    let h2_closed = tokio::spawn(async move {
        let _ = connection.await;
        h2_started.elapsed()
    });
    let mut held = Vec::new();
    for _ in 0..20 {
        let request = hyper::Request::builder()
            .method(Method::POST)
            .uri(format!("https://localhost:{}/mutate", server.addr.port()))
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(http_body_util::Full::new(mutate.clone()))
            .unwrap();
        sender.ready().await.unwrap();
        let response = sender.send_request(request);
        // The headers come; the body never can. Keep the response unread.
        held.push(tokio::spawn(async move {
            if let Ok(response) = response.await {
                std::future::pending::<()>().await;
                drop(response);
            }
        }));
    }

    // HTTP/1.1: a hundred pipelined mutate requests (12 MB of answers, more than the
    // socket buffers hold), answers never read.
    let mut raw = server.raw_tls(HttpVersion::Http1).await.unwrap();
    let head = format!(
        "POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        mutate.len()
    );
    let writer = tokio::spawn(async move {
        // Writing stops making progress once the server stops reading (its answers are
        // not read), and fails once the server drops the connection.
        for _ in 0..100 {
            if raw.write_all(head.as_bytes()).await.is_err()
                || raw.write_all(&mutate).await.is_err()
            {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_secs(4)).await;
        raw.write_all(head.as_bytes()).await.is_err() || raw.flush().await.is_err()
    });

    let h2_lasted = tokio::time::timeout(Duration::from_secs(15), h2_closed)
        .await
        .expect("the HTTP/2 connection was dropped")
        .unwrap();
    assert!(
        h2_lasted < Duration::from_secs(6),
        "the unread HTTP/2 connection lasted {h2_lasted:?} with --write-timeout 2s"
    );
    for task in held {
        task.abort();
    }
    let h1_dropped = tokio::time::timeout(Duration::from_secs(15), writer)
        .await
        .expect("the HTTP/1.1 connection was dropped within 15 s")
        .unwrap();
    assert!(
        h1_dropped,
        "the HTTP/1.1 connection with unread answers is still open"
    );
    let traffic = legitimate.finish().await;
    let (peak_rss, _) = sampler.finish().await;
    eprintln!(
        "figures: unread answers: HTTP/2 connection dropped after {h2_lasted:?}; peak RSS {peak_rss} KiB; legitimate: {} answered, p99 {:?}",
        traffic.answered,
        traffic.p99()
    );
    traffic.assert_served(LEGITIMATE_P99, "clients that never read their answers");
    assert!(peak_rss < SHIPPED_LIMIT_KIB, "peak RSS {peak_rss} KiB");
    let text = metrics(&server).await;
    assert!(
        metric(&text, "podguard_stalled_connections_dropped_total").unwrap() >= 2.0,
        "{text}"
    );
    assert!(
        server.log().contains("did not read its response"),
        "{}",
        server.log()
    );
}

/// A client that never reads its answer does not hold up shutdown: SIGTERM drains within
/// the write timeout, not the 25 s grace.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unread_answer_does_not_hold_up_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path(), |c| {
        c.args(["--write-timeout", "2s", "--shutdown-grace", "25s"])
    })
    .await;
    let tls = server.raw_tls(HttpVersion::Http2).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(0)
        .adaptive_window(false)
        .handshake::<_, http_body_util::Full<Bytes>>(TokioIo::new(tls))
        .await
        .unwrap();
    let driver = tokio::spawn(connection);
    let review = review_with_uid(&fixture("pod-noncompliant").review, "unread-at-shutdown");
    let request = hyper::Request::builder()
        .method(Method::POST)
        .uri(format!("https://localhost:{}/validate", server.addr.port()))
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .body(http_body_util::Full::new(Bytes::from(review)))
        .unwrap();
    sender.ready().await.unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // The answer's body waits for a window the client never opens.
    server.terminate().unwrap();
    let stopped = Instant::now();
    let status = server.wait_exit(Duration::from_secs(20)).await.unwrap();
    assert!(status.success(), "{status}");
    eprintln!(
        "figures: SIGTERM with an unread answer: exited after {:?}",
        stopped.elapsed()
    );
    assert!(
        stopped.elapsed() < Duration::from_secs(6),
        "SIGTERM took {:?} with an unread answer (--write-timeout 2s)",
        stopped.elapsed()
    );
    drop(response);
    driver.abort();
}

/// Every request field a log line repeats is cut, however long the sender made it;
/// refusals are logged with their cause at most once a second per status; a certificate
/// that stays broken is logged once per cause; SIGHUP reloads instead of killing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logs_stay_bounded_whatever_the_requests() {
    let dir = tempfile::tempdir().unwrap();
    let certs = gen_certs(dir.path(), &["localhost"], false).expect("gen-certs");
    let mut server = Server::start(
        ServeConfig::new(Transport::tls(&certs)).args(["--cert-reload-interval", "200ms"]),
    )
    .await
    .unwrap();
    let client = server.client(HttpVersion::Http1).unwrap();
    let mut connection = client.connect().await.unwrap();

    // Names and namespaces of 100 kB: answered, logged cut.
    let long = "n".repeat(100_000);
    let log_before = server.log().len();
    for i in 0..50 {
        let mut review = fixture("pod-compliant").review;
        review["request"]["name"] = json!(long);
        review["request"]["namespace"] = json!(long);
        review["request"]["operation"] = json!("CREATE");
        let uid = format!("long-{i}");
        let reply = connection
            .post("/validate", review_with_uid(&review, &uid))
            .await
            .unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    }
    let grown = server.log().len() - log_before;
    eprintln!("figures: 50 answers with 100 kB names and namespaces grew the log by {grown} bytes");
    assert!(
        grown < 50 * 1024,
        "50 answers with 100 kB names grew the log by {grown} bytes"
    );
    for line in server.log().lines() {
        assert!(
            line.len() < 2048,
            "a {} byte log line: {}…",
            line.len(),
            &line[..200]
        );
    }

    // A burst of 300 refusals: a few lines, each with its cause and the count left out.
    for _ in 0..300 {
        let request = connection.build(Method::POST, "/validate", full("{}"));
        let mut request = request;
        request
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let reply = connection.send(request).await.unwrap();
        assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let request = {
        let mut request = connection.build(Method::POST, "/validate", full("{}"));
        request
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        request
    };
    connection.send(request).await.unwrap();
    let log = server.log();
    let refusals: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"request refused\"") && l.contains("\"status\":415"))
        .collect();
    assert!(
        (2..=6).contains(&refusals.len()),
        "{} refusal lines for 301 refusals:\n{}",
        refusals.len(),
        refusals.join("\n")
    );
    assert!(
        refusals[0].contains("Content-Type is \\\"text/plain\\\""),
        "{}",
        refusals[0]
    );
    assert!(
        refusals
            .iter()
            .any(|l| !l.contains("\"similar_refusals_not_logged\":0")),
        "the lines count what they left out:\n{}",
        refusals.join("\n")
    );

    // A certificate that breaks one way, then another: each cause once.
    let good_cert = std::fs::read(&certs.cert).unwrap();
    let good_key = std::fs::read(&certs.key).unwrap();
    std::fs::write(&certs.cert, b"not a certificate\n").unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let other = gen_certs(&dir.path().join("other"), &["localhost"], false).unwrap();
    std::fs::write(&certs.cert, std::fs::read(&other.cert).unwrap()).unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let failures: Vec<String> = server
        .log()
        .lines()
        .filter(|l| l.contains("TLS certificate not reloaded"))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        failures.len(),
        2,
        "one line per cause, two causes:\n{}",
        failures.join("\n")
    );
    assert_ne!(failures[0], failures[1]);
    std::fs::write(&certs.cert, &good_cert).unwrap();
    std::fs::write(&certs.key, &good_key).unwrap();

    // SIGHUP: a reload check, not an exit.
    let status = std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        server.is_running(),
        "SIGHUP stopped the server:\n{}",
        server.log()
    );
    assert!(server.log().contains("SIGHUP received"), "{}", server.log());
    server.assert_still_serving("/validate", "SIGHUP").await;
}
