//! Every conformance fixture sent to the real server's `/validate` and `/mutate` over
//! HTTPS, HTTP/1.1 and HTTP/2, as kube-apiserver sends it: the verdicts, messages,
//! warnings and audit annotations are the fixture's expectation, `/validate` never patches,
//! and the patch `/mutate` returns, applied to the object, gives an object the same
//! policy admits without further changes.

use std::collections::BTreeMap;

use podguard_e2e::{
    Client, Fixture, HttpVersion, Policy, ServeConfig, Server, TlsOptions, Transport,
    admission_response, apply_patch, decode_patch, fixtures, gen_certs, policy_module,
    review_with_object, review_with_uid,
};
use serde_json::Value;

/// The name the certificate is verified as: the Service a webhook configuration names.
const SERVICE_NAME: &str = "podguard.podguard-system.svc";

/// One server for every fixture: `default` with the module's own requirements, plus one
/// policy per fixture that carries runtime settings, named after the fixture.
async fn fixture_server(dir: &std::path::Path) -> (Server, Vec<(Fixture, String)>) {
    let certs = gen_certs(dir, &["localhost", SERVICE_NAME], false).expect("gen-certs");
    let mut policies = vec![Policy::default_module("default")];
    let mut cases = Vec::new();
    for fixture in fixtures() {
        let settings = fixture.dir.join("settings.json");
        if settings.is_file() {
            policies.push(Policy::default_module(&fixture.name).with_settings(&settings));
            let name = fixture.name.clone();
            cases.push((fixture, name));
        } else {
            cases.push((fixture, "default".to_owned()));
        }
    }
    let mut transport = Transport::tls(&certs);
    if let Transport::Tls { access, .. } = &mut transport {
        *access = TlsOptions::new(&certs.ca).server_name(SERVICE_NAME);
    }
    let config = ServeConfig {
        policies,
        transport,
        args: Vec::new(),
        launcher: Vec::new(),
    };
    let server = Server::start(config).await.expect("podguard serve starts");
    (server, cases)
}

fn warnings(response: &Value) -> Vec<String> {
    match &response["warnings"] {
        Value::Null => Vec::new(),
        other => serde_json::from_value(other.clone()).unwrap_or_else(|_| vec![other.to_string()]),
    }
}

fn audit_annotations(response: &Value) -> BTreeMap<String, String> {
    match &response["auditAnnotations"] {
        Value::Null => BTreeMap::new(),
        other => serde_json::from_value(other.clone())
            .unwrap_or_else(|_| BTreeMap::from([("<unparsable>".to_owned(), other.to_string())])),
    }
}

/// Compares one answer with the fixture's expectation; returns the differences.
fn compare(
    fixture: &Fixture,
    endpoint: &str,
    response: &Value,
    patch: Option<&Value>,
) -> Vec<String> {
    let expected = fixture
        .expected()
        .unwrap_or_else(|| panic!("{} has no expected.json", fixture.name));
    let mut problems = Vec::new();
    if response["allowed"] != expected.allowed {
        problems.push(format!(
            "allowed: expected {}, got {}",
            expected.allowed, response["allowed"]
        ));
    }
    if !expected.allowed {
        let message = expected.message.clone().unwrap_or_default();
        if response["status"]["message"] != message.as_str() {
            problems.push(format!(
                "status.message: expected {message:?}, got {}",
                response["status"]["message"]
            ));
        }
        if !response["status"]["code"].is_u64() {
            problems.push(format!(
                "status.code is not a number: {}",
                response["status"]["code"]
            ));
        }
    }
    if warnings(response) != expected.warnings {
        problems.push(format!(
            "warnings: expected {:?}, got {}",
            expected.warnings, response["warnings"]
        ));
    }
    if audit_annotations(response) != expected.audit_annotations {
        problems.push(format!(
            "auditAnnotations: expected {:?}, got {}",
            expected.audit_annotations, response["auditAnnotations"]
        ));
    }
    let expected_patch = if endpoint == "mutate" {
        expected.patch.as_ref()
    } else {
        None
    };
    if patch != expected_patch {
        problems.push(format!(
            "patch: expected {}, got {}",
            expected_patch.map_or("none".to_owned(), Value::to_string),
            patch.map_or("none".to_owned(), Value::to_string)
        ));
    }
    problems
}

async fn every_fixture(version: HttpVersion) {
    assert!(policy_module().is_file(), "the policy module was not built");
    let dir = tempfile::tempdir().unwrap();
    let (server, cases) = fixture_server(dir.path()).await;
    let client: Client = server.client(version).unwrap();
    // One keep-alive connection for everything, as kube-apiserver reuses its connections.
    let mut connection = client.connect().await.expect("connects");
    let mut failures = Vec::new();
    let mut patched = 0;
    for (fixture, policy) in &cases {
        for endpoint in ["validate", "mutate"] {
            let path = format!("/{endpoint}/{policy}");
            let uid = format!("{}-{endpoint}", fixture.name);
            let reply = match connection
                .post(&path, review_with_uid(&fixture.review, &uid))
                .await
            {
                Ok(reply) => reply,
                Err(err) => {
                    failures.push(format!("{} POST {path}: {err:#}", fixture.name));
                    connection = client.connect().await.expect("reconnects");
                    continue;
                }
            };
            if reply.version != version.hyper() {
                failures.push(format!(
                    "{} POST {path}: answered over {:?}",
                    fixture.name, reply.version
                ));
            }
            let checked = admission_response(&reply, &uid).and_then(|response| {
                let patch = decode_patch(&response)?;
                Ok((response, patch))
            });
            let (response, patch) = match checked {
                Ok(ok) => ok,
                Err(err) => {
                    failures.push(format!("{} POST {path}: {err:#}", fixture.name));
                    continue;
                }
            };
            for problem in compare(fixture, endpoint, &response, patch.as_ref()) {
                failures.push(format!("{} POST {path}: {problem}", fixture.name));
            }
            let Some(patch) = patch else { continue };
            if endpoint != "mutate" {
                continue;
            }
            patched += 1;
            // kube-apiserver applies the patch; the result must come back clean.
            let object = match apply_patch(fixture.object(), &patch) {
                Ok(object) => object,
                Err(err) => {
                    failures.push(format!("{} POST {path}: {err:#}", fixture.name));
                    continue;
                }
            };
            for again in ["mutate", "validate"] {
                let path = format!("/{again}/{policy}");
                let uid = format!("{}-patched-{again}", fixture.name);
                let mut review = fixture.review.clone();
                review["request"]["uid"] = Value::String(uid.clone());
                let body = review_with_object(&review, object.clone());
                let result = connection.post(&path, body).await.and_then(|reply| {
                    let response = admission_response(&reply, &uid)?;
                    Ok((decode_patch(&response)?, response))
                });
                match result {
                    Ok((None, response)) if response["allowed"] == true => {}
                    Ok((_, response)) => failures.push(format!(
                        "{}: the patched object is not clean on {path}: {response}",
                        fixture.name
                    )),
                    Err(err) => failures.push(format!(
                        "{}: the patched object on {path}: {err:#}",
                        fixture.name
                    )),
                }
            }
        }
    }
    assert!(
        patched > 0,
        "no fixture produced a patch on /mutate; the mutate fixtures should"
    );
    assert!(
        failures.is_empty(),
        "{} problem(s) over {version:?}:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_fixture_over_http1() {
    every_fixture(HttpVersion::Http1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_fixture_over_http2() {
    every_fixture(HttpVersion::Http2).await;
}

/// With one policy, `/validate` and `/mutate` without a name serve it, as do the named
/// paths; an unknown name is a client error, not a verdict.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_single_policy_is_served_at_the_unnamed_paths() {
    let dir = tempfile::tempdir().unwrap();
    let certs = gen_certs(dir.path(), &["localhost"], false).unwrap();
    let fixture = podguard_e2e::fixture("pod-mutate");
    let config = ServeConfig {
        policies: vec![
            Policy::default_module("hardening").with_settings(&fixture.dir.join("settings.json")),
        ],
        transport: Transport::tls(&certs),
        args: Vec::new(),
        launcher: Vec::new(),
    };
    let server = Server::start(config).await.expect("podguard serve starts");
    let expected_patch = fixture
        .expected()
        .unwrap()
        .patch
        .expect("pod-mutate patches");
    for version in HttpVersion::ALL {
        let mut connection = server.client(version).unwrap().connect().await.unwrap();
        for path in [
            "/mutate",
            "/mutate/hardening",
            "/validate",
            "/validate/hardening",
        ] {
            let uid = format!("single-{version:?}-{}", path.replace('/', "-"));
            let reply = connection
                .post(path, review_with_uid(&fixture.review, &uid))
                .await
                .unwrap_or_else(|e| panic!("POST {path} over {version:?}: {e:#}"));
            let response = admission_response(&reply, &uid)
                .unwrap_or_else(|e| panic!("POST {path} over {version:?}: {e:#}"));
            assert_eq!(response["allowed"], true, "POST {path}: {response}");
            let patch = decode_patch(&response).unwrap();
            if path.starts_with("/mutate") {
                assert_eq!(
                    patch.as_ref(),
                    Some(&expected_patch),
                    "POST {path} over {version:?}"
                );
            } else {
                assert_eq!(patch, None, "POST {path} over {version:?} must not patch");
            }
        }
        let reply = connection
            .post(
                "/validate/no-such-policy",
                review_with_uid(&fixture.review, "unknown"),
            )
            .await
            .unwrap();
        assert!(
            reply.status.is_client_error(),
            "POST /validate/no-such-policy over {version:?}: expected a 4xx, got {}: {}",
            reply.status,
            reply.text()
        );
    }
}
