//! The hostile-request catalogue, against the real server over TLS: bodies that are not
//! what kube-apiserver sends (malformed, truncated, huge, deeply nested, invalid UTF-8,
//! nulls and duplicate keys where objects belong), and connections that abuse the
//! transport (headers one byte a second, garbage instead of a ClientHello, HTTP/2 streams
//! opened and reset in a loop). Each case asserts the status code and the message, then
//! that the server still answers a good request.

use std::time::{Duration, Instant};

use bytes::Bytes;
use podguard_e2e::{
    HttpVersion, Method, ServeConfig, Server, StatusCode, Transport, admission_response, fixture,
    full, gen_certs, post_generated, review_with_object,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// `--header-timeout` for these servers: short, so the slow-client cases end soon, yet
/// far above a TLS handshake on a loaded machine.
const HEADER_TIMEOUT: Duration = Duration::from_secs(3);

async fn server(dir: &std::path::Path) -> Server {
    let certs = gen_certs(dir, &["localhost"], false).expect("gen-certs");
    Server::start(ServeConfig::new(Transport::tls(&certs)).args([
        "--header-timeout",
        &format!("{}s", HEADER_TIMEOUT.as_secs()),
    ]))
    .await
    .expect("podguard serve starts")
}

/// What a case must get back.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// An HTTP error with a JSON `{code, message}` body whose message contains this.
    Refused(u16, &'static str),
    /// HTTP 200, an AdmissionReview denying with this `status.code` and a message that
    /// contains this.
    Denied(u16, &'static str),
    /// HTTP 200, an AdmissionReview allowing it.
    Allowed,
}

struct Case {
    name: &'static str,
    content_type: &'static str,
    body: Bytes,
    expect: Expect,
}

fn review() -> Value {
    let mut review = fixture("pod-compliant").review;
    review["request"]["uid"] = json!("hostile");
    review
}

fn bytes(value: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(value).unwrap())
}

/// The compliant Pod with `edit` applied to its object.
fn pod(edit: impl FnOnce(&mut Value)) -> Bytes {
    let review = review();
    let mut object = review["request"]["object"].clone();
    edit(&mut object);
    Bytes::from(review_with_object(&review, object))
}

/// The compliant review's JSON text with the first `from` replaced by `to` (for what
/// `serde_json::Value` cannot hold: duplicate keys, invalid UTF-8).
fn edited_text(from: &str, to: &[u8]) -> Bytes {
    let text = serde_json::to_vec(&review()).unwrap();
    let at = text
        .windows(from.len())
        .position(|w| w == from.as_bytes())
        .unwrap_or_else(|| panic!("{from:?} is not in the review"));
    let mut edited = text[..at].to_vec();
    edited.extend_from_slice(to);
    edited.extend_from_slice(&text[at + from.len()..]);
    Bytes::from(edited)
}

fn cases() -> Vec<Case> {
    let json = "application/json";
    let whole = serde_json::to_vec(&review()).unwrap();
    let without = |field: &str| {
        let mut review = review();
        review["request"].as_object_mut().unwrap().remove(field);
        bytes(&review)
    };
    let deep = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    vec![
        Case {
            name: "malformed JSON",
            content_type: json,
            body: Bytes::from_static(b"{\"apiVersion\": \"admission.k8s.io/v1\", kind: }"),
            expect: Expect::Refused(400, "the body is not a JSON AdmissionReview: key must be a string"),
        },
        Case {
            name: "truncated JSON",
            content_type: json,
            body: Bytes::from(whole[..whole.len() / 2].to_vec()),
            expect: Expect::Refused(400, "the body is not a JSON AdmissionReview: EOF while parsing"),
        },
        Case {
            name: "an empty body",
            content_type: json,
            body: Bytes::new(),
            expect: Expect::Refused(400, "the body is not a JSON AdmissionReview: EOF while parsing"),
        },
        Case {
            name: "Content-Type text/plain",
            content_type: "text/plain",
            body: Bytes::from(whole.clone()),
            expect: Expect::Refused(415, "Content-Type is \"text/plain\"; send the AdmissionReview as application/json"),
        },
        Case {
            name: "Content-Type application/yaml",
            content_type: "application/yaml",
            body: Bytes::from(whole.clone()),
            expect: Expect::Refused(415, "Content-Type is \"application/yaml\""),
        },
        Case {
            name: "no request",
            content_type: json,
            body: Bytes::from_static(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#),
            expect: Expect::Refused(400, "the AdmissionReview has no request"),
        },
        Case {
            name: "request: null",
            content_type: json,
            body: Bytes::from_static(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":null}"#),
            expect: Expect::Refused(400, "the AdmissionReview has no request"),
        },
        Case {
            name: "request is a string",
            content_type: json,
            body: Bytes::from_static(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":"CREATE"}"#),
            expect: Expect::Refused(400, "request is invalid: it is not an object"),
        },
        Case {
            name: "no request.uid",
            content_type: json,
            body: without("uid"),
            expect: Expect::Refused(400, "request.uid is missing or not a non-empty string"),
        },
        Case {
            name: "request.uid is a number",
            content_type: json,
            body: {
                let mut review = review();
                review["request"]["uid"] = json!(42);
                bytes(&review)
            },
            expect: Expect::Refused(400, "request.uid is missing or not a non-empty string"),
        },
        Case {
            name: "no request.operation",
            content_type: json,
            body: without("operation"),
            expect: Expect::Refused(400, "request.operation is missing or not a string"),
        },
        Case {
            name: "request.object is a string",
            content_type: json,
            body: Bytes::from(review_with_object(&review(), json!("a Pod"))),
            expect: Expect::Denied(403, "podguard cannot judge this Pod request: request.object is missing or not an object"),
        },
        Case {
            name: "request.object is an array",
            content_type: json,
            body: Bytes::from(review_with_object(&review(), json!([{"kind": "Pod"}]))),
            expect: Expect::Denied(403, "request.object is missing or not an object"),
        },
        Case {
            name: "request.object is null on CREATE",
            content_type: json,
            body: Bytes::from(review_with_object(&review(), Value::Null)),
            expect: Expect::Denied(403, "request.object is missing or not an object"),
        },
        Case {
            name: "spec.securityContext and the container's securityContext are null",
            content_type: json,
            body: pod(|o| {
                o["spec"]["securityContext"] = Value::Null;
                o["spec"]["containers"][0]["securityContext"] = Value::Null;
            }),
            expect: Expect::Denied(403, "run-as-non-root: container \"web\" (spec.containers[0].securityContext.runAsNonRoot) must be true"),
        },
        Case {
            name: "spec.containers is null",
            content_type: json,
            body: pod(|o| o["spec"]["containers"] = Value::Null),
            // No containers at all: nothing declares the scrape port the annotations name.
            expect: Expect::Denied(403, "prometheus.io/port\"]) is 9090, which no container declares as a TCP port"),
        },
        Case {
            name: "spec is null",
            content_type: json,
            body: pod(|o| o["spec"] = Value::Null),
            expect: Expect::Denied(403, "which no container declares as a TCP port"),
        },
        Case {
            name: "invalid quantities",
            content_type: json,
            body: pod(|o| {
                let resources = &mut o["spec"]["containers"][0]["resources"];
                resources["limits"]["cpu"] = json!("1gi");
                resources["limits"]["memory"] = json!("lots");
                resources["requests"]["cpu"] = json!("1e999999999");
            }),
            expect: Expect::Denied(403, "(spec.containers[0].resources.limits.cpu) \"1gi\" is not a valid quantity: unknown suffix \"gi\""),
        },
        Case {
            name: "a 100,000-digit quantity",
            content_type: json,
            body: pod(|o| {
                o["spec"]["containers"][0]["resources"]["limits"]["memory"] =
                    json!(format!("1{}x", "0".repeat(100_000)));
            }),
            // The message repeats the start of the value and its length, not 100 kB of it.
            expect: Expect::Denied(403, "(spec.containers[0].resources.limits.memory) \"1000000000000000000000000000000000000000... (100002 characters)\" is not a valid quantity"),
        },
        Case {
            name: "a quantity that is a number, not a string",
            content_type: json,
            body: pod(|o| o["spec"]["containers"][0]["resources"]["limits"]["memory"] = json!(1.5e300)),
            expect: Expect::Denied(403, "(spec.containers[0].resources.limits.memory) \"1.5e+300\" is out of range"),
        },
        Case {
            name: "invalid UTF-8 in a string",
            content_type: json,
            body: edited_text("web-canary", b"web-\xff\xfe-canary"),
            expect: Expect::Refused(400, "the body is not a JSON AdmissionReview: invalid unicode code point"),
        },
        Case {
            name: "an unknown kind",
            content_type: json,
            body: {
                let mut review = review();
                review["request"]["kind"] = json!({"group": "example.com", "version": "v1", "kind": "Widget"});
                review["request"]["object"]["kind"] = json!("Widget");
                review["request"]["object"]["spec"] = json!({"hostNetwork": true, "containers": "none"});
                bytes(&review)
            },
            expect: Expect::Allowed,
        },
        Case {
            name: "a duplicate request.uid",
            content_type: json,
            body: edited_text("\"uid\":\"hostile\"", b"\"uid\":\"first\",\"uid\":\"hostile\""),
            expect: Expect::Refused(400, "request is invalid: duplicate field `uid`"),
        },
        // The last of duplicate keys counts, as in kube-apiserver's decoder, so podguard
        // judges what the API server would store, whichever order the values come in.
        Case {
            name: "duplicate runAsNonRoot, true then false",
            content_type: json,
            body: edited_text("\"runAsNonRoot\":true", b"\"runAsNonRoot\":true,\"runAsNonRoot\":false"),
            expect: Expect::Denied(403, "run-as-non-root: container \"web\" (spec.securityContext.runAsNonRoot) is false: set it to true"),
        },
        Case {
            name: "duplicate runAsNonRoot, false then true",
            content_type: json,
            body: edited_text("\"runAsNonRoot\":true", b"\"runAsNonRoot\":false,\"runAsNonRoot\":true"),
            expect: Expect::Allowed,
        },
        Case {
            name: "JSON nested 100,000 deep as the body",
            content_type: json,
            body: Bytes::from(deep(100_000)),
            expect: Expect::Refused(400, "the body is not a JSON AdmissionReview: invalid type: sequence"),
        },
        Case {
            name: "JSON nested 100,000 deep in a field the checks read",
            content_type: json,
            body: {
                let body = pod(|o| {
                    o["spec"]["containers"][0]["securityContext"]["privileged"] = json!("DEEP")
                });
                let text = String::from_utf8(body.to_vec()).unwrap();
                Bytes::from(text.replacen("\"DEEP\"", &deep(100_000), 1))
            },
            expect: Expect::Denied(400, "podguard cannot read the admission request: recursion limit exceeded"),
        },
        Case {
            // The checks skip what they do not read without building it, as they skip the
            // request fields above.
            name: "JSON nested 100,000 deep in an object field the checks do not read",
            content_type: json,
            body: {
                let body = pod(|o| o["spec"]["containers"][0]["args"] = json!("DEEP"));
                let text = String::from_utf8(body.to_vec()).unwrap();
                Bytes::from(text.replacen("\"DEEP\"", &deep(100_000), 1))
            },
            expect: Expect::Allowed,
        },
        Case {
            name: "JSON nested 100,000 deep in a request field podguard does not read",
            content_type: json,
            body: {
                let text = serde_json::to_string(&review()).unwrap();
                let extra = format!("\"request\":{{\"extra\":{},", deep(100_000));
                Bytes::from(text.replacen("\"request\":{", &extra, 1))
            },
            expect: Expect::Allowed,
        },
        Case {
            name: "an apiVersion of 1 MiB",
            content_type: json,
            body: bytes(&json!({"apiVersion": "v".repeat(1 << 20), "kind": "AdmissionReview"})),
            expect: Expect::Refused(400, "apiVersion is \"vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv… (1048576 bytes)\""),
        },
    ]
}

fn check(expect: Expect, reply: &podguard_e2e::Reply) -> anyhow::Result<()> {
    match expect {
        Expect::Refused(status, needle) => {
            anyhow::ensure!(
                reply.status == status,
                "expected HTTP {status}, got {}: {}",
                reply.status,
                reply.text()
            );
            anyhow::ensure!(
                reply.content_type().starts_with("application/json"),
                "Content-Type {:?}",
                reply.content_type()
            );
            let body = reply.json()?;
            anyhow::ensure!(body["code"] == status, "code in the body: {body}");
            let message = body["message"].as_str().unwrap_or_default();
            anyhow::ensure!(
                message.contains(needle),
                "the message should contain {needle:?}: {message:?}"
            );
            anyhow::ensure!(
                message.len() < 1024,
                "a {} byte message repeats the request back",
                message.len()
            );
        }
        Expect::Denied(code, needle) => {
            let response = admission_response(reply, "hostile")?;
            anyhow::ensure!(response["allowed"] == false, "not denied: {response}");
            anyhow::ensure!(
                response["status"]["code"] == code,
                "status.code should be {code}: {response}"
            );
            let message = response["status"]["message"].as_str().unwrap_or_default();
            anyhow::ensure!(
                message.contains(needle),
                "the message should contain {needle:?}: {message:?}"
            );
        }
        Expect::Allowed => {
            let response = admission_response(reply, "hostile")?;
            anyhow::ensure!(response["allowed"] == true, "not allowed: {response}");
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_bodies_get_a_precise_answer_and_the_server_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let mut failures = Vec::new();
    for version in HttpVersion::ALL {
        // One kept connection for every case, as kube-apiserver keeps its connections:
        // none of these answers may cost it the connection.
        let mut kept = server.client(version).unwrap().connect().await.unwrap();
        for case in cases() {
            let mut request = kept.build(Method::POST, "/validate", full(case.body.clone()));
            request.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                case.content_type.parse().unwrap(),
            );
            let started = Instant::now();
            let outcome = match kept.send(request).await {
                Ok(reply) => check(case.expect, &reply),
                Err(err) => Err(err),
            };
            if let Err(err) = outcome {
                failures.push(format!(
                    "{version:?} {} (after {:?}): {err:#}",
                    case.name,
                    started.elapsed()
                ));
            }
            server
                .assert_still_serving("/validate", &format!("{} over {version:?}", case.name))
                .await;
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) answered wrongly:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A Pod with 100,000 containers (3 MiB of JSON, under the body limit): the policy runs
/// out of its memory allowance (64 MiB) or its time before it can judge it, and the
/// request is denied saying which, well within kube-apiserver's 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pod_with_100000_containers_is_denied_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let containers: Vec<Value> = (0..100_000)
        .map(|i| json!({"name": format!("c{i}"), "image": "registry.example/app:1.0"}))
        .collect();
    let body = pod(|o| o["spec"]["containers"] = Value::Array(containers));
    for version in HttpVersion::ALL {
        let started = Instant::now();
        let reply = server
            .client(version)
            .unwrap()
            .post("/validate", body.clone())
            .await
            .unwrap_or_else(|e| panic!("{version:?}: {e:#}"));
        let took = started.elapsed();
        let response = admission_response(&reply, "hostile").unwrap();
        assert!(took < Duration::from_secs(10), "{version:?}: took {took:?}");
        assert_eq!(response["allowed"], false, "{version:?}: {response}");
        assert_eq!(response["status"]["code"], 500, "{version:?}: {response}");
        let message = response["status"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("podguard could not evaluate policy podguard: ")
                && (message.contains("more than 64 MiB of memory")
                    || message.contains("ran longer than its 2s deadline")),
            "{version:?}: {message}"
        );
        server
            .assert_still_serving("/validate", "a Pod with 100,000 containers")
            .await;
    }
}

/// 100 MiB bodies, declared up front and streamed without a length: 413 naming the limit,
/// without the server reading (or holding) the whole body.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_100_mib_body_gets_413() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let head = Bytes::from_static(
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"hostile","operation":"CREATE","kind":{"group":"","version":"v1","kind":"ConfigMap"},"object":{"data":{"blob":""#,
    );
    let tail = Bytes::from_static(br#""}}}}"#);
    let filler = 100 * 1024 * 1024 - head.len() - tail.len();
    for version in HttpVersion::ALL {
        for declare_length in [true, false] {
            let what = format!(
                "{version:?}, {}",
                if declare_length {
                    "Content-Length: 104857600"
                } else {
                    "no length"
                }
            );
            let client = server.client(version).unwrap();
            let reply = post_generated(
                &client,
                "/validate",
                head.clone(),
                b'a',
                filler,
                tail.clone(),
                declare_length,
            )
            .await
            .unwrap_or_else(|e| panic!("{what}: no answer: {e:#}"));
            assert_eq!(
                reply.status,
                StatusCode::PAYLOAD_TOO_LARGE,
                "{what}: {}",
                reply.text()
            );
            let body = reply.json().unwrap();
            assert_eq!(
                body["message"],
                "the body is larger than the 7340032-byte limit (--max-body-bytes)",
                "{what}"
            );
            server.assert_still_serving("/validate", &what).await;
        }
    }
}

/// Reads until the server closes the connection (or `limit` passes); returns what it sent
/// and whether it closed.
async fn read_until_closed<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut R,
    limit: Duration,
) -> (Vec<u8>, bool) {
    let mut received = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, reader.read(&mut buf)).await {
            Err(_) => return (received, false),
            Ok(Ok(0)) | Ok(Err(_)) => return (received, true),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
}

/// Request headers one byte a second (HTTP/1.1), and an HTTP/2 preface one byte a
/// second: each connection is closed once `--header-timeout` has passed, with no
/// response, while other clients are answered meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn headers_sent_one_byte_a_second_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let http1: &[u8] = b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
    let http2: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    for (version, bytes) in [(HttpVersion::Http1, http1), (HttpVersion::Http2, http2)] {
        // The server's clock starts when it accepts the connection, before the handshake.
        let started = Instant::now();
        let stream = server.raw_tls(version).await.unwrap();
        let (mut reader, mut writer) = tokio::io::split(stream);
        let trickle = tokio::spawn(async move {
            let mut sent = 0;
            for byte in bytes {
                if writer.write_all(&[*byte]).await.is_err() || writer.flush().await.is_err() {
                    break;
                }
                sent += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            sent
        });
        // Others are served while the slow client holds its connection.
        server
            .assert_still_serving("/validate", &format!("a slow {version:?} client connected"))
            .await;
        let (received, closed) = read_until_closed(&mut reader, HEADER_TIMEOUT * 10).await;
        let took = started.elapsed();
        trickle.abort();
        let sent = trickle.await.unwrap_or_default();
        assert!(
            closed,
            "{version:?}: the server kept a connection sending one byte a second open for {took:?}"
        );
        assert!(
            took >= HEADER_TIMEOUT - Duration::from_millis(500),
            "{version:?}: closed after {took:?}, before the {HEADER_TIMEOUT:?} header timeout"
        );
        assert!(
            sent < bytes.len(),
            "{version:?}: the whole request went out ({sent} bytes) before the server closed"
        );
        assert!(
            received.is_empty(),
            "{version:?}: expected no response, got {:?}",
            String::from_utf8_lossy(&received)
        );
        server
            .assert_still_serving(
                "/validate",
                &format!("a slow {version:?} client was cut off"),
            )
            .await;
    }
}

/// A client that completes the TLS handshake and then sends nothing at all is closed at
/// the header timeout too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_silent_connection_is_closed_at_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    for version in HttpVersion::ALL {
        let mut stream = server.raw_tls(version).await.unwrap();
        let started = Instant::now();
        let (received, closed) = read_until_closed(&mut stream, HEADER_TIMEOUT * 10).await;
        assert!(
            closed,
            "{version:?}: a silent connection was kept for {:?}",
            started.elapsed()
        );
        assert!(received.is_empty(), "{version:?}: got {received:?}");
        server
            .assert_still_serving("/validate", &format!("a silent {version:?} connection"))
            .await;
    }
}

/// Plain HTTP and random bytes where the ClientHello belongs: the server ends the
/// connection (with at most a TLS alert), never hangs, never answers in plain text.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn garbage_instead_of_a_client_hello_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let mut noise = Vec::with_capacity(4096);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    while noise.len() < 4096 {
        // xorshift: arbitrary bytes, the same on every run.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        noise.extend_from_slice(&state.to_le_bytes());
    }
    let garbage: [(&str, Vec<u8>); 3] = [
        (
            "plain HTTP",
            b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}".to_vec(),
        ),
        ("4 KiB of random bytes", noise),
        (
            "a handshake record holding no ClientHello",
            vec![0x16, 0x03, 0x01, 0x00, 0x04, 0x0e, 0x00, 0x00, 0x00],
        ),
    ];
    for (what, bytes) in garbage {
        let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        // The server may close before it has read everything; that is its answer.
        let _ = tcp.write_all(&bytes).await;
        let (received, closed) = read_until_closed(&mut tcp, Duration::from_secs(30)).await;
        assert!(closed, "{what}: the connection was kept open");
        // Nothing, or TLS alert records (content type 21) only.
        let mut rest = received.as_slice();
        while !rest.is_empty() {
            assert!(
                rest.len() >= 5 && rest[0] == 21,
                "{what}: the server answered something other than a TLS alert: {received:?}"
            );
            let length = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
            rest = &rest[(5 + length).min(rest.len())..];
        }
        server.assert_still_serving("/validate", what).await;
    }
}

// ---------------------------------------------------------------------------------------
// HTTP/2 rapid reset
// ---------------------------------------------------------------------------------------

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).unwrap();
    let mut frame = length.to_be_bytes()[1..].to_vec();
    frame.extend_from_slice(&[kind, flags]);
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// An HPACK header block for `POST https://localhost/validate`, JSON, using only the
/// static table and literals without indexing, so every stream can reuse it.
fn request_headers() -> Vec<u8> {
    let mut block = vec![0x83, 0x87]; // :method POST, :scheme https
    for (index, value) in [(4u8, "/validate"), (1, "localhost")] {
        block.push(index); // literal without indexing, name from the static table
        block.push(u8::try_from(value.len()).unwrap());
        block.extend_from_slice(value.as_bytes());
    }
    block.extend_from_slice(&[0x0f, 0x10]); // content-type (static index 31)
    block.push(16);
    block.extend_from_slice(b"application/json");
    block
}

const GOAWAY: u8 = 0x7;
const ENHANCE_YOUR_CALM: u32 = 0xb;

/// An HTTP/2 client that opens streams and resets them at once, in a loop (CVE-2023-44487).
/// The server cuts the abuse short with GOAWAY ENHANCE_YOUR_CALM, and answers other
/// clients meanwhile and afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_http2_rapid_reset_loop_is_cut_off() {
    const STREAMS: u32 = 20_000;
    const BATCH: u32 = 100;
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let rss_before = server.rss_kib().unwrap();
    let stream = server.raw_tls(HttpVersion::Http2).await.unwrap();
    let (mut reader, mut writer) = tokio::io::split(stream);

    // Reads frames; returns the GOAWAY error code once one arrives.
    let goaway = tokio::spawn(async move {
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            while buffer.len() >= 9 {
                let length = usize::from(buffer[0]) << 16
                    | usize::from(buffer[1]) << 8
                    | usize::from(buffer[2]);
                if buffer.len() < 9 + length {
                    break;
                }
                if buffer[3] == GOAWAY && length >= 8 {
                    let code = u32::from_be_bytes(buffer[13..17].try_into().unwrap());
                    return Some(code);
                }
                buffer.drain(..9 + length);
            }
            match reader.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
    });

    // A well-behaved client at the same time.
    let other_client = {
        let client = server.client(HttpVersion::Http2).unwrap();
        let review = fixture("pod-compliant").review;
        tokio::spawn(async move {
            client
                .post(
                    "/validate",
                    podguard_e2e::review_with_uid(&review, "during-reset"),
                )
                .await
        })
    };
    let abuse_started = Instant::now();
    let mut preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    preface.extend(frame(0x4, 0, 0, &[])); // SETTINGS
    writer.write_all(&preface).await.unwrap();
    let headers = request_headers();
    let mut opened = 0u32;
    while opened < STREAMS {
        let mut batch = Vec::new();
        for _ in 0..BATCH {
            let id = 2 * opened + 1;
            batch.extend(frame(0x1, 0x4, id, &headers)); // HEADERS, END_HEADERS
            batch.extend(frame(0x3, 0, id, &0x8u32.to_be_bytes())); // RST_STREAM CANCEL
            opened += 1;
        }
        if writer.write_all(&batch).await.is_err() || goaway.is_finished() {
            break;
        }
    }
    let code = tokio::time::timeout(Duration::from_secs(30), goaway)
        .await
        .expect("the abusive connection neither got GOAWAY nor closed within 30 s")
        .unwrap();
    let took = abuse_started.elapsed();
    assert_eq!(
        code,
        Some(ENHANCE_YOUR_CALM),
        "the server should end a rapid-reset connection with GOAWAY ENHANCE_YOUR_CALM; it sent {code:?} after {opened} streams in {took:?}"
    );
    assert!(
        opened < STREAMS,
        "the server took all {STREAMS} opened-and-reset streams before its GOAWAY"
    );

    let reply = other_client
        .await
        .unwrap()
        .expect("a client during the abuse is answered");
    let response = admission_response(&reply, "during-reset").unwrap();
    assert_eq!(response["allowed"], true, "{response}");
    server
        .assert_still_serving("/validate", "an HTTP/2 rapid-reset loop")
        .await;
    let rss_after = server.rss_kib().unwrap();
    assert!(
        rss_after < rss_before + 64 * 1024,
        "the server's RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    eprintln!(
        "rapid reset: GOAWAY ENHANCE_YOUR_CALM after {opened} streams written in {took:?}; RSS {rss_before} -> {rss_after} KiB"
    );
}
