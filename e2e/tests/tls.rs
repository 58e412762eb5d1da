//! TLS as kube-apiserver sees it: the server certificate verifies against the CA bundle
//! and nothing else, ALPN picks the version, mutual TLS refuses clients without a
//! certificate from the client CA, and a rotated certificate is picked up with requests in
//! flight, none of them failing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use podguard_e2e::{
    Client, HttpVersion, Issued, Method, ServeConfig, Server, TestCa, TlsOptions, Transport,
    admission_response, channel_body, fixture, gen_certs, poll_until, read_certs,
    received_tls_alert, rejected_server_certificate, review_with_uid, write_atomically,
    write_with_mode,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_server_is_verified_against_the_ca_bundle_only() {
    let dir = tempfile::tempdir().unwrap();
    let certs = gen_certs(
        dir.path(),
        &["localhost", "podguard.podguard-system.svc"],
        false,
    )
    .unwrap();
    let server = Server::start(ServeConfig::new(Transport::tls(&certs)))
        .await
        .expect("podguard serve starts");
    let served = read_certs(&certs.cert).unwrap();

    let foreign = TestCa::new("some other CA").unwrap();
    let foreign_ca = dir.path().join("foreign-ca.crt");
    std::fs::write(&foreign_ca, foreign.cert_pem()).unwrap();

    for version in HttpVersion::ALL {
        for name in ["localhost", "podguard.podguard-system.svc", "127.0.0.1"] {
            let client = Client::https(
                server.addr,
                version,
                &TlsOptions::new(&certs.ca).server_name(name),
            )
            .unwrap();
            let mut connection = client
                .connect()
                .await
                .unwrap_or_else(|e| panic!("{version:?} as {name}: {e:#}"));
            let tls = connection.tls.clone().unwrap();
            assert_eq!(tls.alpn.as_deref(), Some(version.alpn()));
            assert_eq!(
                tls.peer_certificates.first(),
                served.first(),
                "the server presents tls.crt"
            );
            let reply = connection.get("/livez").await.unwrap();
            assert_eq!(reply.status, 200, "{version:?} /livez: {}", reply.text());
            assert_eq!(reply.version, version.hyper());
        }

        // A CA that did not sign the server certificate: the handshake fails on our side.
        let client = Client::https(server.addr, version, &TlsOptions::new(&foreign_ca)).unwrap();
        let err = client.connect().await.err().unwrap_or_else(|| {
            panic!("{version:?}: a client trusting another CA accepted the server")
        });
        assert!(rejected_server_certificate(&err), "{version:?}: {err:#}");

        // The right CA but a name the certificate does not carry.
        let client = Client::https(
            server.addr,
            version,
            &TlsOptions::new(&certs.ca).server_name("elsewhere.example"),
        )
        .unwrap();
        let err = client.connect().await.err().unwrap_or_else(|| {
            panic!("{version:?}: the certificate was accepted for a name it does not carry")
        });
        assert!(rejected_server_certificate(&err), "{version:?}: {err:#}");
    }
}

/// The alert a refused client gets, from the handshake or the first read after it.
async fn refusal(client: &Client) -> String {
    match client.tls_outcome().await {
        Ok(outcome) => panic!("a client that should be refused was kept: {outcome}"),
        Err(err) => received_tls_alert(&err)
            .unwrap_or_else(|| panic!("refused without a TLS alert: {err:#}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mutual_tls_refuses_clients_without_a_trusted_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certs = gen_certs(dir.path(), &["localhost"], true).unwrap();
    let with_identity = TlsOptions::new(&certs.ca).identity(&certs.client_cert, &certs.client_key);
    let transport = Transport::Tls {
        cert: certs.cert.clone(),
        key: certs.key.clone(),
        client_ca: Some(certs.ca.clone()),
        access: with_identity.clone(),
    };
    let server = Server::start(ServeConfig::new(transport))
        .await
        .expect("podguard serve starts");

    // A client certificate from a CA the server does not trust.
    let foreign = TestCa::new("untrusted client CA").unwrap();
    let stranger = foreign.client_cert("stranger", 7).unwrap();
    let stranger_cert = dir.path().join("stranger.crt");
    let stranger_key = dir.path().join("stranger.key");
    std::fs::write(&stranger_cert, &stranger.cert_pem).unwrap();
    std::fs::write(&stranger_key, &stranger.key_pem).unwrap();

    let review = fixture("pod-compliant").review;
    for version in HttpVersion::ALL {
        let anonymous = Client::https(server.addr, version, &TlsOptions::new(&certs.ca)).unwrap();
        let alert = refusal(&anonymous).await;
        assert_eq!(
            alert, "CertificateRequired",
            "{version:?}: a client without a certificate is refused with certificate_required"
        );

        let strange = Client::https(
            server.addr,
            version,
            &TlsOptions::new(&certs.ca).identity(&stranger_cert, &stranger_key),
        )
        .unwrap();
        let alert = refusal(&strange).await;
        assert!(
            ["UnknownCA", "BadCertificate", "DecryptError"].contains(&alert.as_str()),
            "{version:?}: a client certificate from another CA is refused with unknown_ca or bad_certificate, got {alert}"
        );
        // And an ordinary request with it gets no HTTP answer.
        let result = async { strange.connect().await?.get("/livez").await }.await;
        assert!(
            result.is_err(),
            "{version:?}: {:?}",
            result.map(|r| r.status)
        );

        let trusted = Client::https(server.addr, version, &with_identity).unwrap();
        let mut connection = trusted
            .connect()
            .await
            .unwrap_or_else(|e| panic!("{version:?} with a client certificate: {e:#}"));
        let uid = format!("mtls-{version:?}");
        let reply = connection
            .post("/validate", review_with_uid(&review, &uid))
            .await
            .unwrap_or_else(|e| panic!("{version:?} with a client certificate: {e:#}"));
        let response = admission_response(&reply, &uid).unwrap();
        assert_eq!(response["allowed"], true, "{response}");
    }
}

// ---------------------------------------------------------------------------------------
// Rotation
// ---------------------------------------------------------------------------------------

/// How the certificate files change on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Each file written to a temporary name and renamed over the old one.
    RenamedFiles,
    /// A Kubernetes Secret volume: `tls.crt -> ..data/tls.crt`, `..data -> ..<generation>`,
    /// and the kubelet swaps `..data` in one rename, so both files change at once.
    SecretVolume,
    /// The key is renamed into place, and the certificate only a few reload intervals later:
    /// in between, the pair on disk does not match and the server must keep the old one.
    KeyFirstThenCertificate,
}

const RELOAD_INTERVAL: &str = "250ms";

fn install(layout: Layout, dir: &Path, issued: &Issued, generation: u32) {
    match layout {
        Layout::RenamedFiles | Layout::KeyFirstThenCertificate => {
            write_atomically(&dir.join("tls.key"), issued.key_pem.as_bytes(), 0o600).unwrap();
            write_atomically(&dir.join("tls.crt"), issued.cert_pem.as_bytes(), 0o644).unwrap();
        }
        Layout::SecretVolume => {
            let data = dir.join(format!("..gen{generation}"));
            std::fs::create_dir(&data).unwrap();
            write_with_mode(&data.join("tls.crt"), issued.cert_pem.as_bytes(), 0o644).unwrap();
            // defaultMode 0440 (with the pod's fsGroup), as the server asks of a Secret volume.
            write_with_mode(&data.join("tls.key"), issued.key_pem.as_bytes(), 0o440).unwrap();
            let tmp = dir.join("..data_tmp");
            std::os::unix::fs::symlink(format!("..gen{generation}"), &tmp).unwrap();
            std::fs::rename(&tmp, dir.join("..data")).unwrap();
            if generation == 1 {
                std::os::unix::fs::symlink("..data/tls.crt", dir.join("tls.crt")).unwrap();
                std::os::unix::fs::symlink("..data/tls.key", dir.join("tls.key")).unwrap();
            } else {
                std::fs::remove_dir_all(dir.join(format!("..gen{}", generation - 1))).unwrap();
            }
        }
    }
}

#[derive(Default)]
struct Load {
    stop: AtomicBool,
    done: AtomicUsize,
    failures: std::sync::Mutex<Vec<String>>,
}

/// Sends reviews until told to stop: on one kept connection, or on a fresh connection
/// each time.
async fn worker(load: Arc<Load>, client: Client, fresh: bool, id: String, started: Instant) {
    let review = fixture("pod-compliant").review;
    let mut connection = None;
    let mut n = 0u64;
    while !load.stop.load(Ordering::Relaxed) {
        n += 1;
        let uid = format!("{id}-{n}");
        let result = async {
            if fresh || connection.is_none() {
                connection = Some(client.connect().await?);
            }
            let reply = connection
                .as_mut()
                .expect("connected")
                .post("/validate", review_with_uid(&review, &uid))
                .await?;
            let response = admission_response(&reply, &uid)?;
            anyhow::ensure!(response["allowed"] == true, "not allowed: {response}");
            anyhow::Ok(())
        }
        .await;
        match result {
            Ok(()) => {
                load.done.fetch_add(1, Ordering::Relaxed);
            }
            Err(err) => {
                connection = None;
                load.failures
                    .lock()
                    .unwrap()
                    .push(format!("{uid} at {:?}: {err:#}", started.elapsed()));
            }
        }
    }
}

async fn rotation(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("podguard e2e CA").unwrap();
    let ca_path: PathBuf = dir.path().join("ca.crt");
    std::fs::write(&ca_path, ca.cert_pem()).unwrap();
    let volume = dir.path().join("tls");
    std::fs::create_dir(&volume).unwrap();
    let first = ca.server_cert(&["localhost", "127.0.0.1"], 1001).unwrap();
    let second = ca
        .server_cert(&["localhost", "127.0.0.1", "rotated.podguard.test"], 1002)
        .unwrap();
    install(layout, &volume, &first, 1);

    let access = TlsOptions::new(&ca_path);
    let transport = Transport::Tls {
        cert: volume.join("tls.crt"),
        key: volume.join("tls.key"),
        client_ca: None,
        access: access.clone(),
    };
    let server = Server::start(ServeConfig::new(transport).args([
        "--cert-reload-interval",
        RELOAD_INTERVAL,
        "--request-timeout",
        "60s",
    ]))
    .await
    .expect("podguard serve starts");

    let presented = |version: HttpVersion| {
        let client = server.client(version).unwrap();
        async move {
            let connection = client.connect().await?;
            let tls = connection.tls.clone().expect("TLS");
            anyhow::Ok(tls.peer_certificates.first().cloned())
        }
    };
    for version in HttpVersion::ALL {
        assert_eq!(
            presented(version).await.unwrap().as_ref(),
            Some(&first.der),
            "before rotation"
        );
    }

    // Load: a kept connection and a fresh-connection loop per version, two of each.
    let load = Arc::new(Load::default());
    let started = Instant::now();
    let mut workers = Vec::new();
    for version in HttpVersion::ALL {
        for (i, fresh) in [false, false, true, true].into_iter().enumerate() {
            let client = server.client(version).unwrap();
            let id = format!("{version:?}-{}-{i}", if fresh { "fresh" } else { "kept" });
            workers.push(tokio::spawn(worker(
                load.clone(),
                client,
                fresh,
                id,
                started,
            )));
        }
    }
    // And requests held open across the rotation: headers and half the body sent before
    // it, the rest after the new certificate is served.
    let review = fixture("pod-compliant").review;
    let mut held = Vec::new();
    for version in HttpVersion::ALL {
        for i in 0..4 {
            let uid = format!("held-{version:?}-{i}");
            let body = review_with_uid(&review, &uid);
            let (sender, request_body) = channel_body(Some(body.len() as u64));
            let mut connection = server.client(version).unwrap().connect().await.unwrap();
            let request = connection.build(Method::POST, "/validate", request_body);
            let reply = tokio::spawn(async move { connection.send(request).await });
            let half = body.len() / 2;
            sender.send(body[..half].to_vec()).await.unwrap();
            held.push((uid, sender, body[half..].to_vec(), reply));
        }
    }

    poll_until(
        Duration::from_secs(30),
        "100 requests before the rotation",
        || {
            let done = load.done.load(Ordering::Relaxed);
            async move { (done >= 100).then_some(()) }
        },
    )
    .await
    .unwrap();

    // Rotate.
    let rotated_at = Instant::now();
    if layout == Layout::KeyFirstThenCertificate {
        write_atomically(&volume.join("tls.key"), second.key_pem.as_bytes(), 0o600).unwrap();
        // Several reload intervals with a mismatched pair on disk: every new connection
        // must still get the old, matching pair.
        let until = Instant::now() + Duration::from_secs(1);
        while Instant::now() < until {
            for version in HttpVersion::ALL {
                let seen = presented(version).await.unwrap_or_else(|e| {
                    panic!("{version:?} with a half-written pair on disk: {e:#}")
                });
                assert_eq!(seen.as_ref(), Some(&first.der), "the old pair stays in use");
            }
        }
        write_atomically(&volume.join("tls.crt"), second.cert_pem.as_bytes(), 0o644).unwrap();
    } else {
        install(layout, &volume, &second, 2);
    }

    for version in HttpVersion::ALL {
        poll_until(
            Duration::from_secs(15),
            "a new connection to present the new certificate",
            || {
                let seen = presented(version);
                let wanted = second.der.clone();
                async move { (seen.await.ok()?? == wanted).then_some(()) }
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{version:?}: {e:#}"));
    }
    let picked_up = rotated_at.elapsed();
    // From now on every new connection sees it, and it verifies for its new name.
    for version in HttpVersion::ALL {
        for _ in 0..5 {
            assert_eq!(
                presented(version).await.unwrap().as_ref(),
                Some(&second.der)
            );
        }
        let client = Client::https(
            server.addr,
            version,
            &access.clone().server_name("rotated.podguard.test"),
        )
        .unwrap();
        let mut connection = client
            .connect()
            .await
            .unwrap_or_else(|e| panic!("{version:?} as rotated.podguard.test: {e:#}"));
        let reply = connection.get("/livez").await.unwrap();
        assert_eq!(reply.status, 200);
    }

    // Finish the held requests: each is answered.
    for (uid, sender, rest, reply) in held {
        sender.send(rest).await.unwrap();
        drop(sender);
        let reply = reply
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("held request {uid}: {e:#}"));
        let response = admission_response(&reply, &uid)
            .unwrap_or_else(|e| panic!("held request {uid}: {e:#}"));
        assert_eq!(response["allowed"], true, "{response}");
    }

    let before = load.done.load(Ordering::Relaxed);
    poll_until(
        Duration::from_secs(30),
        "100 more requests after the rotation",
        || {
            let done = load.done.load(Ordering::Relaxed);
            async move { (done >= before + 100).then_some(()) }
        },
    )
    .await
    .unwrap();
    load.stop.store(true, Ordering::Relaxed);
    for worker in workers {
        tokio::time::timeout(Duration::from_secs(60), worker)
            .await
            .expect("workers stop")
            .unwrap();
    }
    let failures = load.failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed around the rotation ({layout:?}; rotated at {:?}, picked up after {picked_up:?}):\n{}",
        failures.len(),
        failures.len() + load.done.load(Ordering::Relaxed),
        rotated_at.duration_since(started),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_by_renaming_files_fails_no_request() {
    rotation(Layout::RenamedFiles).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_of_a_secret_volume_fails_no_request() {
    rotation(Layout::SecretVolume).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_keeps_the_old_pair_while_the_files_do_not_match() {
    rotation(Layout::KeyFirstThenCertificate).await;
}
