//! `/metrics` scraped from the real server after real reviews: the labels operators slice
//! admission by (policy, endpoint, operation, kind, verdict, mutation) and the per-check
//! violations counter; and every metric and label the PrometheusRule and the Grafana
//! dashboard in deploy/ query is one the server exposes.

use std::collections::{BTreeMap, BTreeSet};

use podguard_e2e::{
    HttpVersion, Policy, Sample, ServeConfig, Server, Transport, admission_response, fixture,
    gen_certs, parse_prometheus, review_with_uid, workspace_root,
};

/// A sample's labels as a map.
fn labels(sample: &Sample) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = sample.labels.as_str();
    while let Some((name, value)) = rest.split_once("=\"") {
        let end = value.find('"').expect("a closing quote");
        labels.insert(
            name.trim_start_matches(',').to_owned(),
            value[..end].to_owned(),
        );
        rest = &value[end + 1..];
    }
    labels
}

/// The value of the sample `name` whose labels include every pair of `want`.
fn value(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .filter(|s| s.name == name)
        .find(|s| {
            let have = labels(s);
            want.iter()
                .all(|(k, v)| have.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_carry_the_labels_operators_slice_by() {
    let dir = tempfile::tempdir().unwrap();
    let certs = gen_certs(dir.path(), &["localhost"], false).expect("gen-certs");
    let fixer = fixture("deployment-mutate");
    let config = ServeConfig {
        policies: vec![
            Policy::default_module("podguard"),
            Policy::default_module("fixer").with_settings(&fixer.dir.join("settings.json")),
        ],
        ..ServeConfig::new(Transport::tls(&certs))
    };
    let server = Server::start(config).await.expect("podguard serve starts");
    let mut connection = server
        .client(HttpVersion::Http2)
        .unwrap()
        .connect()
        .await
        .unwrap();

    let denied = fixture("pod-noncompliant").review;
    let reply = connection
        .post("/validate/podguard", review_with_uid(&denied, "denied-pod"))
        .await
        .unwrap();
    assert_eq!(
        admission_response(&reply, "denied-pod").unwrap()["allowed"],
        false
    );
    let reply = connection
        .post(
            "/mutate/fixer",
            review_with_uid(&fixer.review, "fixed-deployment"),
        )
        .await
        .unwrap();
    let response = admission_response(&reply, "fixed-deployment").unwrap();
    assert_eq!(response["allowed"], true);
    assert!(response["patch"].is_string(), "{response}");
    // A kind podguard does not judge, under a name a client made up: counted as `other`.
    let mut secret = denied.clone();
    secret["request"]["kind"]["kind"] = "Secret-0123456789".into();
    secret["request"]["operation"] = "SHRED".into();
    let reply = connection
        .post("/validate/podguard", review_with_uid(&secret, "other-kind"))
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());

    // Refused before evaluation: counted by status.
    let reply = connection
        .post("/validate/podguard", b"not a review".to_vec())
        .await
        .unwrap();
    assert_eq!(reply.status, 400, "{}", reply.text());

    let scraped = connection.get("/metrics").await.unwrap();
    assert!(
        scraped
            .content_type()
            .starts_with("application/openmetrics-text"),
        "{}",
        scraped.content_type()
    );
    let text = scraped.text();
    let samples = parse_prometheus(&text).unwrap();
    let requests = "podguard_admission_requests_total";
    assert_eq!(
        value(
            &samples,
            requests,
            &[
                ("policy", "podguard"),
                ("endpoint", "validate"),
                ("operation", "CREATE"),
                ("kind", "Pod"),
                ("verdict", "denied"),
                ("mutated", "false"),
            ]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &samples,
            requests,
            &[
                ("policy", "fixer"),
                ("endpoint", "mutate"),
                ("kind", "Deployment"),
                ("verdict", "allowed"),
                ("mutated", "true"),
            ]
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        value(
            &samples,
            requests,
            &[("kind", "other"), ("operation", "other")]
        )
        .is_some(),
        "{text}"
    );
    assert!(
        !text.contains("Secret-0123456789") && !text.contains("SHRED"),
        "{text}"
    );
    assert_eq!(
        value(
            &samples,
            "podguard_admission_duration_seconds_count",
            &[
                ("policy", "fixer"),
                ("kind", "Deployment"),
                ("verdict", "allowed")
            ]
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        value(
            &samples,
            "podguard_evaluation_duration_seconds_count",
            &[("policy", "podguard")]
        )
        .is_some_and(|n| n >= 2.0),
        "{text}"
    );
    let violations = "podguard_check_violations_total";
    assert_eq!(
        value(
            &samples,
            violations,
            &[
                ("policy", "podguard"),
                ("check", "run-as-non-root"),
                ("disposition", "rejected")
            ]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &samples,
            violations,
            &[
                ("policy", "fixer"),
                ("check", "resource-limits"),
                ("disposition", "fixed")
            ]
        ),
        Some(1.0),
        "{text}"
    );

    // What deploy/ queries exists: each podguard_ metric, and each label it is selected
    // or grouped by (Prometheus adds `namespace`, `pod` and the histogram's `le`).
    let exposed: BTreeMap<&str, BTreeSet<String>> =
        samples.iter().fold(BTreeMap::new(), |mut exposed, sample| {
            exposed
                .entry(sample.name.as_str())
                .or_default()
                .extend(labels(sample).into_keys());
            exposed
        });
    for file in [
        "deploy/base/prometheusrule.yaml",
        "deploy/base/grafana-dashboard.json",
    ] {
        let text = std::fs::read_to_string(workspace_root().join(file)).unwrap();
        let queried = queried_metrics(&text);
        assert!(
            queried
                .keys()
                .any(|name| name.ends_with("check_violations_total")),
            "{file} does not use the per-check violations"
        );
        for (name, used) in queried {
            // A histogram is named by its family too (its samples are _bucket, _sum, _count).
            let have = exposed
                .get(name.as_str())
                .or_else(|| exposed.get(format!("{name}_count").as_str()))
                .unwrap_or_else(|| panic!("{file} queries {name}, which /metrics lacks"));
            for label in used {
                assert!(
                    have.contains(&label) || ["namespace", "pod", "le"].contains(&label.as_str()),
                    "{file} uses label {label} of {name}, which it does not carry ({have:?})"
                );
            }
        }
    }
}

/// Every `podguard_` metric a PromQL text names, with the labels its selectors match on and
/// the labels of a `by (...)` that groups it.
fn queried_metrics(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut queried: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut grouping: Vec<String> = Vec::new();
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < text.len() {
        if text[at..].starts_with("by (") {
            let close = text[at..].find(')').map_or(text.len(), |end| at + end);
            grouping = text[at + 4..close]
                .split(',')
                .map(|l| l.trim().to_owned())
                .filter(|l| !l.is_empty())
                .collect();
            at = close;
            continue;
        }
        if text[at..].starts_with("podguard_") {
            let end = text[at..]
                .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                .map_or(text.len(), |n| at + n);
            let name = text[at..end].to_owned();
            let entry = queried.entry(name).or_default();
            entry.extend(grouping.drain(..));
            if bytes.get(end) == Some(&b'{') {
                let close = text[end..].find('}').map_or(text.len(), |n| end + n);
                for matcher in text[end + 1..close].split(',') {
                    let label = matcher.split(['=', '!']).next().unwrap_or("").trim();
                    if !label.is_empty() {
                        entry.insert(label.to_owned());
                    }
                }
                at = close;
            } else {
                at = end;
            }
            continue;
        }
        at += text[at..].chars().next().map_or(1, char::len_utf8);
    }
    queried
}
