//! Every report format of `podguard audit`: the table (grouping, summaries, colour only
//! when asked), JSON, SARIF 2.1.0 and PolicyReport checked against what their schemas
//! require, and JUnit parsed by an XML parser.

mod audit_support;

use std::collections::BTreeMap;

use audit_support::{audit, fixture};
use quick_xml::events::Event;
use serde_json::{Value, json};

// ---------------------------------------------------------------- schema checking

/// What a schema says of one property's value.
#[derive(Clone, Copy)]
enum Shape {
    Object(&'static str),
    Array(&'static str),
    ArrayOfStrings,
    Str,
    Enum(&'static [&'static str]),
    Int { min: i64 },
    Bool,
    MapOfStrings,
    Any,
}

/// One object definition: its required properties, alternatives of which one set must be
/// present (`anyOf` of `required`), and every property it may have.
struct Definition {
    name: &'static str,
    required: &'static [&'static str],
    any_of: &'static [&'static [&'static str]],
    properties: &'static [(&'static str, Shape)],
    /// `additionalProperties: false`.
    closed: bool,
}

fn check(
    schema: &[Definition],
    definition: &str,
    value: &Value,
    path: &str,
    errors: &mut Vec<String>,
) {
    let def = schema
        .iter()
        .find(|d| d.name == definition)
        .unwrap_or_else(|| panic!("the test's schema lacks {definition}"));
    let Some(object) = value.as_object() else {
        errors.push(format!("{path}: {definition} must be an object"));
        return;
    };
    for required in def.required {
        if !object.contains_key(*required) {
            errors.push(format!("{path}: {definition} requires `{required}`"));
        }
    }
    if !def.any_of.is_empty()
        && !def
            .any_of
            .iter()
            .any(|set| set.iter().all(|p| object.contains_key(*p)))
    {
        errors.push(format!(
            "{path}: {definition} requires one of {:?}",
            def.any_of
        ));
    }
    for (key, child) in object {
        let child_path = format!("{path}.{key}");
        let Some((_, shape)) = def.properties.iter().find(|(name, _)| name == key) else {
            if def.closed {
                errors.push(format!(
                    "{child_path}: {definition} has no property `{key}`"
                ));
            }
            continue;
        };
        check_shape(schema, *shape, child, &child_path, errors);
    }
}

fn check_shape(
    schema: &[Definition],
    shape: Shape,
    value: &Value,
    path: &str,
    errors: &mut Vec<String>,
) {
    match shape {
        Shape::Object(def) => check(schema, def, value, path, errors),
        Shape::Array(def) => match value.as_array() {
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    check(schema, def, item, &format!("{path}[{i}]"), errors);
                }
            }
            None => errors.push(format!("{path}: must be an array")),
        },
        Shape::ArrayOfStrings => {
            if !value
                .as_array()
                .is_some_and(|a| a.iter().all(Value::is_string))
            {
                errors.push(format!("{path}: must be an array of strings"));
            }
        }
        Shape::Str => {
            if !value.is_string() {
                errors.push(format!("{path}: must be a string"));
            }
        }
        Shape::Enum(allowed) => {
            if !value.as_str().is_some_and(|v| allowed.contains(&v)) {
                errors.push(format!("{path}: {value} is not one of {allowed:?}"));
            }
        }
        Shape::Int { min } => {
            if value.as_i64().is_none_or(|v| v < min) {
                errors.push(format!("{path}: must be an integer >= {min}"));
            }
        }
        Shape::Bool => {
            if !value.is_boolean() {
                errors.push(format!("{path}: must be a boolean"));
            }
        }
        Shape::MapOfStrings => {
            if !value
                .as_object()
                .is_some_and(|m| m.values().all(Value::is_string))
            {
                errors.push(format!("{path}: must map to strings"));
            }
        }
        Shape::Any => {}
    }
}

const LEVELS: &[&str] = &["none", "note", "warning", "error"];

/// The parts of the SARIF 2.1.0 schema (OASIS, sarif-schema-2.1.0.json) that podguard's
/// output uses: required properties, `anyOf` requirements, enums, and the properties each
/// definition allows (all of them are `additionalProperties: false` but the property bag).
fn sarif_schema() -> Vec<Definition> {
    use Shape::*;
    vec![
        Definition {
            name: "sarifLog",
            required: &["version", "runs"],
            any_of: &[],
            properties: &[
                ("$schema", Str),
                ("version", Enum(&["2.1.0"])),
                ("runs", Array("run")),
                ("properties", Object("propertyBag")),
            ],
            closed: true,
        },
        Definition {
            name: "run",
            required: &["tool"],
            any_of: &[],
            properties: &[
                ("tool", Object("tool")),
                ("results", Array("result")),
                ("invocations", Array("invocation")),
                ("columnKind", Enum(&["utf16CodeUnits", "unicodeCodePoints"])),
                ("properties", Object("propertyBag")),
            ],
            closed: true,
        },
        Definition {
            name: "tool",
            required: &["driver"],
            any_of: &[],
            properties: &[("driver", Object("toolComponent"))],
            closed: true,
        },
        Definition {
            name: "toolComponent",
            required: &["name"],
            any_of: &[],
            properties: &[
                ("name", Str),
                ("version", Str),
                ("semanticVersion", Str),
                ("informationUri", Str),
                ("rules", Array("reportingDescriptor")),
            ],
            closed: true,
        },
        Definition {
            name: "reportingDescriptor",
            required: &["id"],
            any_of: &[],
            properties: &[
                ("id", Str),
                ("name", Str),
                ("shortDescription", Object("multiformatMessageString")),
                ("fullDescription", Object("multiformatMessageString")),
                ("help", Object("multiformatMessageString")),
                ("helpUri", Str),
                ("defaultConfiguration", Object("reportingConfiguration")),
                ("properties", Object("propertyBag")),
            ],
            closed: true,
        },
        Definition {
            name: "multiformatMessageString",
            required: &["text"],
            any_of: &[],
            properties: &[("text", Str), ("markdown", Str)],
            closed: true,
        },
        Definition {
            name: "reportingConfiguration",
            required: &[],
            any_of: &[],
            properties: &[("enabled", Bool), ("level", Enum(LEVELS)), ("rank", Any)],
            closed: true,
        },
        Definition {
            name: "propertyBag",
            required: &[],
            any_of: &[],
            properties: &[("tags", ArrayOfStrings)],
            closed: false,
        },
        Definition {
            name: "result",
            required: &["message"],
            any_of: &[],
            properties: &[
                ("ruleId", Str),
                ("ruleIndex", Int { min: -1 }),
                (
                    "kind",
                    Enum(&[
                        "notApplicable",
                        "pass",
                        "fail",
                        "review",
                        "open",
                        "informational",
                    ]),
                ),
                ("level", Enum(LEVELS)),
                ("message", Object("message")),
                ("locations", Array("location")),
                ("partialFingerprints", MapOfStrings),
                ("properties", Object("propertyBag")),
            ],
            closed: true,
        },
        Definition {
            name: "message",
            required: &[],
            any_of: &[&["text"], &["id"]],
            properties: &[("text", Str), ("markdown", Str), ("id", Str)],
            closed: true,
        },
        Definition {
            name: "location",
            required: &[],
            any_of: &[],
            properties: &[
                ("physicalLocation", Object("physicalLocation")),
                ("logicalLocations", Array("logicalLocation")),
                ("message", Object("message")),
            ],
            closed: true,
        },
        Definition {
            name: "physicalLocation",
            required: &[],
            any_of: &[&["address"], &["artifactLocation"]],
            properties: &[
                ("artifactLocation", Object("artifactLocation")),
                ("region", Object("region")),
            ],
            closed: true,
        },
        Definition {
            name: "artifactLocation",
            required: &[],
            any_of: &[],
            properties: &[("uri", Str), ("uriBaseId", Str)],
            closed: true,
        },
        Definition {
            name: "region",
            required: &[],
            any_of: &[&["startLine"], &["charOffset"], &["byteOffset"]],
            properties: &[
                ("startLine", Int { min: 1 }),
                ("startColumn", Int { min: 1 }),
            ],
            closed: true,
        },
        Definition {
            name: "logicalLocation",
            required: &[],
            any_of: &[],
            properties: &[("name", Str), ("fullyQualifiedName", Str), ("kind", Str)],
            closed: true,
        },
        Definition {
            name: "invocation",
            required: &["executionSuccessful"],
            any_of: &[],
            properties: &[
                ("executionSuccessful", Bool),
                ("exitCode", Int { min: i64::MIN }),
                ("toolExecutionNotifications", Array("notification")),
            ],
            closed: true,
        },
        Definition {
            name: "notification",
            required: &["message"],
            any_of: &[],
            properties: &[
                ("message", Object("message")),
                ("level", Enum(LEVELS)),
                ("locations", Array("location")),
            ],
            closed: true,
        },
    ]
}

/// The parts of the `wgpolicyk8s.io` v1alpha2 PolicyReport and ClusterPolicyReport CRDs
/// (kubernetes-sigs/wg-policy-prototypes, policy-report/crd/v1alpha2) podguard writes.
/// The report CRDs' schemas: `wgpolicyk8s.io/v1alpha2` (kubernetes-sigs/wg-policy-prototypes)
/// and `openreports.io/v1alpha1` (openreports/reports-api), which differs only in its kinds
/// and a report-level `source`.
fn policy_report_schema(openreports: bool) -> Vec<Definition> {
    use Shape::*;
    let report = if openreports {
        Definition {
            name: "report",
            required: &[],
            any_of: &[],
            properties: &[
                ("apiVersion", Enum(&["openreports.io/v1alpha1"])),
                ("kind", Enum(&["Report", "ClusterReport"])),
                ("metadata", Object("metadata")),
                ("source", Str),
                ("results", Array("result")),
                ("scope", Object("objectReference")),
                ("summary", Object("summary")),
            ],
            closed: true,
        }
    } else {
        Definition {
            name: "report",
            required: &[],
            any_of: &[],
            properties: &[
                ("apiVersion", Enum(&["wgpolicyk8s.io/v1alpha2"])),
                ("kind", Enum(&["PolicyReport", "ClusterPolicyReport"])),
                ("metadata", Object("metadata")),
                ("results", Array("result")),
                ("scope", Object("objectReference")),
                ("summary", Object("summary")),
            ],
            closed: true,
        }
    };
    vec![
        report,
        Definition {
            name: "metadata",
            required: &["name"],
            any_of: &[],
            properties: &[("name", Str), ("namespace", Str), ("labels", MapOfStrings)],
            closed: true,
        },
        Definition {
            name: "result",
            required: &["policy"],
            any_of: &[],
            properties: &[
                ("source", Str),
                ("policy", Str),
                ("rule", Str),
                ("category", Str),
                (
                    "severity",
                    Enum(&["critical", "high", "low", "medium", "info"]),
                ),
                ("result", Enum(&["pass", "fail", "warn", "error", "skip"])),
                ("scored", Bool),
                ("message", Str),
                ("timestamp", Object("timestamp")),
                ("resources", Array("objectReference")),
                ("properties", MapOfStrings),
            ],
            closed: true,
        },
        Definition {
            name: "timestamp",
            required: &["nanos", "seconds"],
            any_of: &[],
            properties: &[("nanos", Int { min: 0 }), ("seconds", Int { min: 0 })],
            closed: true,
        },
        Definition {
            name: "objectReference",
            required: &[],
            any_of: &[],
            properties: &[
                ("apiVersion", Str),
                ("kind", Str),
                ("name", Str),
                ("namespace", Str),
                ("uid", Str),
                ("resourceVersion", Str),
                ("fieldPath", Str),
            ],
            closed: true,
        },
        Definition {
            name: "summary",
            required: &[],
            any_of: &[],
            properties: &[
                ("pass", Int { min: 0 }),
                ("fail", Int { min: 0 }),
                ("warn", Int { min: 0 }),
                ("error", Int { min: 0 }),
                ("skip", Int { min: 0 }),
            ],
            closed: true,
        },
    ]
}

// ---------------------------------------------------------------- the formats

const INPUTS: [&str; 3] = [
    "tests/audit-fixtures/manifests",
    "tests/audit-fixtures/exit/compliant.yaml",
    "tests/audit-fixtures/broken/broken.yaml",
];

fn report(format: &str) -> audit_support::Run {
    let mut args = INPUTS.to_vec();
    args.extend(["-o", format]);
    let run = audit(&args);
    run.expect_code(2);
    run
}

#[test]
fn table_groups_by_workload_and_sums_up_by_check_and_namespace() {
    let run = audit(&INPUTS);
    run.expect_code(2);
    let out = &run.stdout;
    // One heading per workload with findings, its location, then one line per violation.
    let web = out
        .find("Deployment shop/web  tests/audit-fixtures/manifests/app.yaml:")
        .expect("the Deployment's heading");
    let job = out.find("Job shop/migrate").expect("the Job's heading");
    assert!(web < job, "input order");
    assert!(out.contains(
        "  enforce  run-as-non-root: container \"nginx\" (spec.template.spec.containers[0].securityContext.runAsNonRoot) must be true  (mutate mode can fix)"
    ), "{out}");
    assert!(
        out.contains("  warn     read-only-root-filesystem: container \"nginx\""),
        "{out}"
    );
    assert!(
        !out.contains("Deployment shop/api"),
        "compliant workloads are not listed"
    );
    // The summary by check and by namespace.
    assert!(out.contains("CHECK                       MODE     VIOLATIONS  WORKLOADS"));
    assert!(
        out.contains("no-privileged               enforce           1          1"),
        "{out}"
    );
    assert!(out.contains("NAMESPACE                   WORKLOADS  FAILING VIOLATIONS"));
    let shop = out
        .lines()
        .find(|l| l.starts_with("shop "))
        .expect("a shop row");
    let numbers: Vec<&str> = shop.split_whitespace().collect();
    // The Pod whose ReplicaSet is not among the inputs is judged too.
    assert_eq!(&numbers[1..3], ["6", "5"], "{shop}");
    assert!(out.contains("Skipped 2 objects"), "{out}");
    // No colour when stdout is not a terminal, and none asked for.
    assert!(!out.contains('\x1b'));
}

#[test]
fn table_colours_only_when_asked() {
    let mut args = INPUTS.to_vec();
    args.extend(["--color", "always"]);
    let run = audit(&args);
    assert!(run.stdout.contains("\x1b[31m"), "{}", run.stdout);
    assert!(
        !run.stderr.contains('\x1b'),
        "no progress bar off a terminal"
    );
}

#[test]
fn json_report_lists_every_workload_with_its_status() {
    let report = report("json").json();
    assert_eq!(report["kind"], "AuditReport");
    let statuses: BTreeMap<String, String> = report["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["name"].as_str().unwrap().to_owned(),
                w["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(statuses["api"], "pass");
    assert_eq!(statuses["web"], "fail");
    assert_eq!(report["summary"]["workloads"], 7);
    assert_eq!(report["summary"]["compliant"], 1);
    assert_eq!(report["summary"]["exitCode"], 2);
    assert_eq!(
        report["summary"]["byCheck"]["no-privileged"]["workloads"],
        1
    );
    assert_eq!(report["summary"]["byNamespace"]["shop"]["workloads"], 6);
}

#[test]
fn sarif_meets_the_schema_and_points_at_lines() {
    let sarif = report("sarif").json();
    let mut errors = Vec::new();
    check(&sarif_schema(), "sarifLog", &sarif, "$", &mut errors);
    assert!(
        errors.is_empty(),
        "SARIF schema violations:\n{}",
        errors.join("\n")
    );

    let run = &sarif["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let expected: Vec<&str> = podguard_policy::CheckId::ALL
        .iter()
        .map(|c| c.as_str())
        .collect();
    assert_eq!(ids, expected, "one rule per check id");
    for (rule, check) in rules.iter().zip(podguard_policy::CheckId::ALL) {
        assert!(
            rule["help"]["text"]
                .as_str()
                .unwrap()
                .starts_with(check.description()),
            "help text comes from the check's description"
        );
    }
    let health = rules
        .iter()
        .find(|rule| rule["id"] == "health-probes")
        .expect("a rule for health-probes");
    assert_eq!(
        health["defaultConfiguration"]["enabled"], false,
        "health-probes is off"
    );
    // GitHub code scanning ranks rules by security-severity (text, 0.1 to 10).
    let rule = |id: &str| rules.iter().find(|r| r["id"] == id).unwrap();
    for (id, severity, tags) in [
        (
            "no-privileged",
            "9.5",
            vec!["kubernetes", "security", "pss-baseline"],
        ),
        (
            "run-as-non-root",
            "8.0",
            vec!["kubernetes", "security", "pss-restricted"],
        ),
        (
            "volume-types",
            "3.0",
            vec!["kubernetes", "security", "pss-restricted"],
        ),
        ("health-probes", "1.0", vec!["kubernetes"]),
    ] {
        assert_eq!(
            rule(id)["properties"]["security-severity"],
            severity,
            "{id}"
        );
        assert_eq!(rule(id)["properties"]["tags"], json!(tags), "{id}");
    }
    for rule in rules {
        let score: f64 = rule["properties"]["security-severity"]
            .as_str()
            .expect("a number written as text")
            .parse()
            .unwrap();
        assert!((0.1..=10.0).contains(&score), "{rule}");
    }

    let results = run["results"].as_array().unwrap();
    for result in results {
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(
            rules[index]["id"], result["ruleId"],
            "ruleIndex points at ruleId"
        );
    }
    // A violation of a missing field points at the line of its nearest written parent.
    let app = std::fs::read_to_string(fixture("manifests/app.yaml")).unwrap();
    let container_line = app
        .lines()
        .position(|l| l.contains("- name: nginx"))
        .unwrap()
        + 1;
    let non_root = results
        .iter()
        .find(|r| {
            r["ruleId"] == "run-as-non-root"
                && r["message"]["text"].as_str().unwrap().contains("shop/web")
        })
        .unwrap();
    let location = &non_root["locations"][0]["physicalLocation"];
    assert_eq!(
        location["artifactLocation"]["uri"],
        "tests/audit-fixtures/manifests/app.yaml"
    );
    assert_eq!(location["region"]["startLine"], container_line);
    assert_eq!(non_root["level"], "error");
    // The broken document is a tool notification with its file and line.
    let notification = &run["invocations"][0]["toolExecutionNotifications"][0];
    assert_eq!(
        notification["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "tests/audit-fixtures/broken/broken.yaml"
    );
    assert_eq!(run["invocations"][0]["executionSuccessful"], false);
}

#[test]
fn junit_parses_with_a_case_per_workload_and_check() {
    let run = report("junit");
    let mut reader = quick_xml::Reader::from_str(&run.stdout);
    let mut suites = 0;
    let mut cases = 0;
    let mut failures = 0;
    let mut errors = 0;
    let mut declared = (0, 0);
    let mut case_names: Vec<(String, String)> = Vec::new();
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => {
                let attr = |name: &str| {
                    e.attributes()
                        .map(|a| a.unwrap())
                        .find(|a| a.key.as_ref() == name.as_bytes())
                        .map(|a| a.unescape_value().unwrap().into_owned())
                };
                match e.name().as_ref() {
                    b"testsuites" => {
                        declared = (
                            attr("tests").unwrap().parse::<usize>().unwrap(),
                            attr("failures").unwrap().parse::<usize>().unwrap(),
                        )
                    }
                    b"testsuite" => suites += 1,
                    b"testcase" => {
                        cases += 1;
                        case_names.push((attr("classname").unwrap(), attr("name").unwrap()));
                    }
                    b"failure" => failures += 1,
                    b"error" => errors += 1,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    assert_eq!(
        declared,
        (cases, failures),
        "declared counts match the cases"
    );
    assert_eq!(suites, 5, "one suite per file");
    assert_eq!(errors, 1, "the broken document");
    // 7 workloads, one case per check that is on by default, and one for the broken
    // document.
    assert_eq!(cases, 7 * checks_on_by_default() + 1);
    assert!(case_names.contains(&(
        "Deployment shop/web".to_owned(),
        "run-as-non-root".to_owned()
    )));
    assert!(
        !case_names.iter().any(|(_, name)| name == "health-probes"),
        "off checks have no case"
    );
}

/// How many checks the built-in requirements turn on: reports carry a result per check
/// that is on.
fn checks_on_by_default() -> usize {
    podguard_policy::CheckId::ALL
        .iter()
        .filter(|id| id.definition().default_mode != podguard_policy::Mode::Off)
        .count()
}

/// The reports `format` prints, each checked against its CRD's schema.
fn reports_checked_against_their_crd(format: &str) -> Vec<Value> {
    let run = report(format);
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(&run.stdout).expect("a YAML stream kubectl can apply");
    let schema = policy_report_schema(format == "openreports");
    let mut errors = Vec::new();
    for (i, document) in documents.iter().enumerate() {
        check(
            &schema,
            "report",
            document,
            &format!("document {i}"),
            &mut errors,
        );
    }
    assert!(
        errors.is_empty(),
        "{format} schema violations:\n{}",
        errors.join("\n")
    );
    documents
}

#[test]
fn policy_reports_meet_the_crd_schema() {
    let documents = reports_checked_against_their_crd("policyreport");

    let kinds: Vec<(&str, Option<&str>)> = documents
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap(),
                d["metadata"]["namespace"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("PolicyReport", Some("ops")),
            ("PolicyReport", Some("shop")),
            ("ClusterPolicyReport", None)
        ]
    );
    let shop = &documents[1];
    let results = shop["results"].as_array().unwrap();
    for result in results {
        assert_eq!(result["source"], "podguard");
        assert_eq!(result["policy"], "podguard");
        assert_eq!(result["scored"], true);
    }
    let web_non_root = results
        .iter()
        .find(|r| r["rule"] == "run-as-non-root" && r["resources"][0]["name"] == "web")
        .unwrap();
    assert_eq!(web_non_root["result"], "fail");
    assert_eq!(web_non_root["resources"][0]["kind"], "Deployment");
    assert_eq!(web_non_root["properties"]["containers"], "nginx");
    let api_results: Vec<&Value> = results
        .iter()
        .filter(|r| r["resources"][0]["name"] == "api")
        .collect();
    assert_eq!(
        api_results.len(),
        checks_on_by_default(),
        "a pass per check that is on"
    );
    assert!(api_results.iter().all(|r| r["result"] == "pass"));
    // The summary counts the results.
    let fails = results.iter().filter(|r| r["result"] == "fail").count();
    assert_eq!(shop["summary"]["fail"], fails);
    let cluster = &documents[2];
    assert_eq!(cluster["results"][1]["resources"][0]["kind"], "Namespace");
    assert_eq!(cluster["results"][1]["result"], "fail");
}

/// `-o openreports`: the same reports as `openreports.io/v1alpha1` `Report`s and a
/// `ClusterReport`, each naming its source.
#[test]
fn openreports_meet_their_crd_schema() {
    let documents = reports_checked_against_their_crd("openreports");
    let kinds: Vec<&str> = documents
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Report", "Report", "ClusterReport"]);
    assert!(documents.iter().all(|d| d["source"] == "podguard"));
    let wgpolicy: Vec<Value> = serde_saphyr::from_multiple(&report("policyreport").stdout).unwrap();
    assert_eq!(
        documents[1]["results"].as_array().unwrap().len(),
        wgpolicy[1]["results"].as_array().unwrap().len(),
        "the same results in either API"
    );
}

/// One run, several reports: the table in the log, SARIF and JUnit into files, each the
/// same as its own run would write.
#[test]
fn several_reports_come_from_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let sarif = dir.path().join("podguard.sarif");
    let junit = dir.path().join("report.xml");
    let mut args = INPUTS.to_vec();
    let sarif_arg = format!("sarif={}", sarif.display());
    let junit_arg = format!("junit={}", junit.display());
    args.extend(["-o", "table", "-o", &sarif_arg, "-o", &junit_arg]);
    let run = audit(&args);
    run.expect_code(2);
    assert_eq!(run.stdout, report("table").stdout, "the table on stdout");
    let written: Value = serde_json::from_slice(&std::fs::read(&sarif).unwrap()).unwrap();
    let alone: Value = serde_json::from_str(&report("sarif").stdout).unwrap();
    assert_eq!(
        written["runs"][0]["results"], alone["runs"][0]["results"],
        "the SARIF file"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert_eq!(
        xml.matches("<testcase").count(),
        report("junit").stdout.matches("<testcase").count()
    );

    for (args, expected) in [
        (
            vec!["-o", "table", "-o", "json"],
            "only one report can go to stdout",
        ),
        (
            vec!["-o", "sarif=same.out", "-o", "junit=same.out"],
            "two reports name the same file",
        ),
        (vec!["-o", "yaml"], "\"yaml\" is not a report format"),
        (vec!["-o", "sarif="], "sarif= names no file"),
    ] {
        let mut all = INPUTS.to_vec();
        all.extend(args);
        audit(&all).expect_code(2).stderr_has(expected);
    }
    let missing_dir = format!("sarif={}", dir.path().join("no/such/dir.sarif").display());
    let mut all = INPUTS.to_vec();
    all.extend(["-o", &missing_dir]);
    audit(&all)
        .expect_code(2)
        .stderr_has("cannot write the report file");
}
