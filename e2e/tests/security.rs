//! Security properties of the real server: TLS 1.0 and 1.1 are refused at the handshake,
//! nothing secret (request bodies, the private key, settings) reaches the log at info
//! level, and a private key other users can read stops the server at start-up.
//!
//! Mutual TLS refusing a client without a certificate (`certificate_required`) or with one
//! from another CA is tested in `tls.rs`
//! (`mutual_tls_refuses_clients_without_a_trusted_certificate`).

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use podguard_e2e::{
    HttpVersion, Policy, READY_TIMEOUT, ServeConfig, Server, StatusCode, Transport,
    admission_response, fixture, gen_certs, review_with_object, review_with_uid,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

// ---------------------------------------------------------------------------------------
// Protocol versions
// ---------------------------------------------------------------------------------------

/// A ClientHello as a TLS 1.0/1.1/1.2 client sends it: `version` as the legacy version
/// and no `supported_versions` extension (so it cannot mean TLS 1.3), cipher suites that
/// TLS 1.2 servers accept (ECDHE with AES-GCM, ChaCha20 and the old CBC ones), and the
/// extensions an ECDHE handshake needs. rustls clients cannot speak TLS 1.0 or 1.1, so
/// the test writes the bytes itself.
fn client_hello(version: u16) -> Vec<u8> {
    fn with_u16_length(bytes: &[u8]) -> Vec<u8> {
        let mut out = u16::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
        out.extend_from_slice(bytes);
        out
    }
    fn extension(kind: u16, data: &[u8]) -> Vec<u8> {
        let mut out = kind.to_be_bytes().to_vec();
        out.extend(with_u16_length(data));
        out
    }
    let u16s = |values: &[u16]| {
        values
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect::<Vec<_>>()
    };

    let mut hello = version.to_be_bytes().to_vec();
    hello.extend_from_slice(&[0x42; 32]); // random
    hello.push(0); // no session id
    hello.extend(with_u16_length(&u16s(&[
        0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc009, 0xc013, 0xc00a, 0xc014, 0x002f,
        0x0035,
    ])));
    hello.extend_from_slice(&[1, 0]); // compression: null only
    let mut server_name = vec![0]; // host_name
    server_name.extend(with_u16_length(b"localhost"));
    let mut extensions = extension(0x0000, &with_u16_length(&server_name));
    extensions.extend(extension(
        0x000a,
        &with_u16_length(&u16s(&[0x001d, 0x0017, 0x0018])),
    )); // supported_groups
    extensions.extend(extension(0x000b, &[1, 0])); // ec_point_formats: uncompressed
    extensions.extend(extension(
        0x000d,
        &with_u16_length(&u16s(&[
            0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601, 0x0201, 0x0203,
        ])),
    )); // signature_algorithms
    extensions.extend(extension(0x0017, &[])); // extended_master_secret
    extensions.extend(extension(0xff01, &[0])); // renegotiation_info
    hello.extend(with_u16_length(&extensions));

    let mut handshake = vec![1]; // client_hello
    handshake.extend_from_slice(&u32::try_from(hello.len()).unwrap().to_be_bytes()[1..]);
    handshake.extend(hello);
    let mut record = vec![0x16, 0x03, 0x01]; // handshake, record version TLS 1.0
    record.extend(with_u16_length(&handshake));
    record
}

/// What the server sent back for a hand-built ClientHello, read until it closes the
/// connection or 5 s pass (a server that goes on with the handshake waits for us).
async fn answer_to(addr: std::net::SocketAddr, hello: &[u8]) -> Vec<u8> {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(hello).await.unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        received.extend_from_slice(&buf[..n]);
    }
    received
}

/// The TLS records in `bytes`: content type and payload (a cut-off last record as far as
/// it goes).
fn records(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut records = Vec::new();
    while bytes.len() >= 5 {
        let length = usize::from(u16::from_be_bytes([bytes[3], bytes[4]]));
        let end = (5 + length).min(bytes.len());
        records.push((bytes[0], bytes[5..end].to_vec()));
        bytes = &bytes[end..];
    }
    records
}

const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const FATAL: u8 = 2;
const PROTOCOL_VERSION: u8 = 70;
const SERVER_HELLO: u8 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tls_1_0_and_1_1_are_refused_at_the_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let certs = gen_certs(dir.path(), &["localhost"], false).unwrap();
    let server = Server::start(ServeConfig::new(Transport::tls(&certs)))
        .await
        .expect("podguard serve starts");

    // The same hello as TLS 1.2 gets a ServerHello: the refusals below are about the
    // version, not about a malformed hello.
    let answer = answer_to(server.addr, &client_hello(0x0303)).await;
    assert!(
        answer.len() >= 6 && answer[0] == HANDSHAKE && answer[5] == SERVER_HELLO,
        "a TLS 1.2 ClientHello should get a ServerHello, got {answer:02x?}"
    );

    for (name, version) in [("TLS 1.0", 0x0301), ("TLS 1.1", 0x0302)] {
        let answer = answer_to(server.addr, &client_hello(version)).await;
        assert_eq!(
            records(&answer),
            vec![(ALERT, vec![FATAL, PROTOCOL_VERSION])],
            "{name}: expected one fatal protocol_version alert and nothing else, got {answer:02x?}"
        );
    }
    server
        .assert_still_serving("/validate", "TLS 1.0 and 1.1 hellos")
        .await;
}

// ---------------------------------------------------------------------------------------
// Logs
// ---------------------------------------------------------------------------------------

const BODY_SECRET: &str = "body-secret-5d1c77e0";
const SETTINGS_SECRET: &str = "settings-secret-7f3a9c";

/// At info level (the default) the log says what was decided about which object, and
/// never repeats a request body, the private key or a settings value, whatever the
/// request: allowed, denied, mutated, malformed, or failing in the policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_body_key_or_settings_value_reaches_the_log_at_info_level() {
    let dir = tempfile::tempdir().unwrap();
    let certs = gen_certs(dir.path(), &["localhost"], false).unwrap();
    let settings = dir.path().join("settings.yaml");
    std::fs::write(
        &settings,
        format!("exemptions:\n  images: [\"registry.internal/{SETTINGS_SECRET}/*\"]\n"),
    )
    .unwrap();
    let config = ServeConfig {
        policies: vec![Policy::default_module("podguard").with_settings(&settings)],
        transport: Transport::tls(&certs),
        args: Vec::new(),
        launcher: Vec::new(),
    };
    let server = Server::start_with_env(config, &[("PODGUARD_LOG", "info")])
        .await
        .expect("podguard serve starts");

    let with_secret = |name: &str| {
        let review = fixture(name).review;
        let mut object = review["request"]["object"].clone();
        object["metadata"]["annotations"]["podguard.test/token"] = json!(BODY_SECRET);
        let containers = object["spec"]["containers"].as_array_mut().unwrap();
        containers[0]["env"] = json!([{"name": "TOKEN", "value": BODY_SECRET}]);
        let body = review_with_object(&review, object);
        serde_json::from_slice::<Value>(&body).unwrap()
    };
    let mut client = server
        .client(HttpVersion::Http1)
        .unwrap()
        .connect()
        .await
        .unwrap();
    for (name, path) in [
        ("pod-compliant", "/validate"),
        ("pod-noncompliant", "/validate"),
        ("pod-mutate", "/mutate"),
    ] {
        let uid = format!("log-{name}");
        let reply = client
            .post(path, review_with_uid(&with_secret(name), &uid))
            .await
            .unwrap();
        admission_response(&reply, &uid).unwrap();
    }
    // Malformed: truncated after the secret, and a kind that carries it past its start.
    let truncated = serde_json::to_string(&with_secret("pod-compliant")).unwrap();
    let cut = truncated.find(BODY_SECRET).unwrap() + BODY_SECRET.len() + 10;
    let long_kind = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": format!("{}{BODY_SECRET}", "K".repeat(100)),
        "request": {"uid": "k"},
    });
    for body in [truncated[..cut].to_owned(), long_kind.to_string()] {
        let reply = client.post("/validate", body).await.unwrap();
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
    }
    // A request the policy cannot evaluate (memory cap): the failure is logged at warn.
    let containers: Vec<Value> = (0..100_000)
        .map(|i| json!({"name": format!("c{i}"), "image": "registry.example/app:1.0"}))
        .collect();
    let mut huge = with_secret("pod-compliant");
    huge["request"]["object"]["spec"]["containers"] = Value::Array(containers);
    let reply = client
        .post("/validate", review_with_uid(&huge, "log-huge"))
        .await
        .unwrap();
    let response = admission_response(&reply, "log-huge").unwrap();
    assert_eq!(response["status"]["code"], 500, "{response}");

    let log = server.log();
    // The log did record these requests, at info and warn.
    for expected in [
        "\"admission review answered\"",
        "\"uid\":\"log-pod-noncompliant\"",
        "\"request refused\"",
        "\"policy failed; answered by the failure mode\"",
    ] {
        assert!(log.contains(expected), "the log lacks {expected}:\n{log}");
    }
    let mut secrets = vec![BODY_SECRET.to_owned(), SETTINGS_SECRET.to_owned()];
    // Every base64 line of the private key (the PEM armour lines are not secret).
    let key = std::fs::read_to_string(&certs.key).unwrap();
    secrets.extend(
        key.lines()
            .filter(|line| !line.starts_with("-----") && line.len() >= 16)
            .map(str::to_owned),
    );
    assert!(secrets.len() > 2, "the key file has no base64 body: {key}");
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "the log contains {secret:?}:\n{log}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Key permissions
// ---------------------------------------------------------------------------------------

/// A private key that every user can read stops the server at start-up (exit 2) with a
/// message saying how to fix it; the same files with the key's mode fixed start. podguard
/// refuses rather than warns: a warning scrolls by, and a key others could read may already
/// be copied, which no later fix undoes. Group access stays allowed for the fsGroup a
/// Kubernetes Secret volume uses.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_readable_by_others_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let certs = gen_certs(dir.path(), &["localhost"], false).unwrap();
    std::fs::set_permissions(&certs.key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut refused = Server::spawn(ServeConfig::new(Transport::tls(&certs)), &[]).unwrap();
    let status = refused.wait_exit(READY_TIMEOUT).await.unwrap();
    let log = refused.log();
    assert_eq!(status.code(), Some(2), "exit status {status}; log:\n{log}");
    let key = certs.key.display().to_string();
    assert!(
        log.contains(&format!("{key} is readable by every user (mode 644)"))
            && log.contains("chmod o-r")
            && log.contains("defaultMode to 0440"),
        "the message should name the key, its mode and the fix:\n{log}"
    );
    assert!(
        !log.contains("listening"),
        "the server listened before refusing its key:\n{log}"
    );

    std::fs::set_permissions(&certs.key, std::fs::Permissions::from_mode(0o440)).unwrap();
    let server = Server::start(ServeConfig::new(Transport::tls(&certs)))
        .await
        .expect("with the key group-readable only, podguard serve starts");
    server
        .assert_still_serving("/validate", "fixing the key's mode")
        .await;
}
