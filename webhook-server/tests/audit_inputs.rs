//! `podguard audit` over every input form: directories, multi-document YAML, JSON,
//! `kind: List` (YAML, JSON, typed lists), Helm and Kustomize output on stdin, a broken
//! document among good ones, and the default module lookup.

mod audit_support;

use audit_support::{Invocation, audit, audit_stdin, checks_of, fixture, run, workloads};
use serde_json::Value;

/// The 1-based line of the first line of `file` that contains `needle`.
fn line_of(file: &str, needle: &str) -> u64 {
    let text = std::fs::read_to_string(fixture(file)).unwrap();
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{file} has no line with {needle:?}")) as u64
        + 1
}

fn find<'a>(list: &'a [(String, Value)], name: &str) -> &'a Value {
    &list
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| {
            panic!(
                "no workload {name:?}; got {:?}",
                list.iter().map(|(n, _)| n).collect::<Vec<_>>()
            )
        })
        .1
}

#[test]
fn directories_are_walked_recursively_for_yaml_yml_and_json() {
    let run = audit(&["tests/audit-fixtures/manifests", "-o", "json"]);
    run.expect_code(1);
    let report = run.json();
    let list = workloads(&report);
    let names: Vec<&str> = list.iter().map(|(n, _)| n.as_str()).collect();
    // In file name order, depth first: app.yaml, nested/job.yml, pod.json; the hidden
    // directory and notes.txt are not read.
    assert_eq!(
        names,
        ["Deployment shop/web", "Job shop/migrate", "Pod ops/debug"]
    );
    let web = find(&list, "Deployment shop/web");
    assert_eq!(
        web["source"]["file"],
        "tests/audit-fixtures/manifests/app.yaml"
    );
    assert_eq!(
        web["source"]["line"],
        line_of("manifests/app.yaml", "kind: Deployment") - 1
    );
    assert_eq!(
        web["source"]["document"], 2,
        "the leading comment is document 0"
    );
    assert!(checks_of(web).contains(&"run-as-non-root".to_owned()));
    let job = find(&list, "Job shop/migrate");
    assert!(checks_of(job).contains(&"no-privileged".to_owned()));
    let debug = find(&list, "Pod ops/debug");
    assert_eq!(debug["source"]["line"], 1);
    assert!(checks_of(debug).contains(&"host-namespaces".to_owned()));

    let skipped = &report["summary"]["skipped"];
    assert_eq!(skipped["not a workload"]["ConfigMap"], 1);
    assert_eq!(skipped["not a workload"]["Service"], 1);
    assert_eq!(
        skipped["owned by a controller (judged through it)"]["Pod"], 1,
        "a Pod its ReplicaSet owns is judged through the Deployment"
    );
}

#[test]
fn helm_output_on_stdin_keeps_the_template_of_each_object() {
    let rendered = std::fs::read(fixture("helm/rendered.yaml")).unwrap();
    let run = audit_stdin(&["-", "-o", "json"], &rendered);
    run.expect_code(1);
    let report = run.json();
    let list = workloads(&report);
    let shop = find(&list, "Deployment shop");
    assert!(shop.get("namespace").is_none(), "no namespace was given");
    assert_eq!(shop["source"]["input"], "<stdin>");
    assert_eq!(
        shop["source"]["line"],
        line_of("helm/rendered.yaml", "kind: Deployment") - 1
    );
    assert_eq!(
        shop["source"]["helmSource"],
        "shop/templates/deployment.yaml"
    );
    let test_pod = find(&list, "Pod shop-test-connection");
    assert!(checks_of(test_pod).contains(&"image-tag-pinned".to_owned()));
    assert_eq!(
        report["summary"]["skipped"]["not a workload"]["ServiceAccount"],
        1
    );
    assert_eq!(report["summary"]["skipped"]["not a workload"]["Service"], 1);

    // The table names the template each object was rendered from.
    let table = audit_stdin(&["-"], &rendered);
    table
        .expect_code(1)
        .stdout_has("Deployment shop  <stdin>:")
        .stdout_has(", from shop/templates/deployment.yaml")
        .stdout_has(", from shop/templates/tests/test-connection.yaml");
}

#[test]
fn kustomize_output_on_stdin() {
    // What `kubectl kustomize` prints: sorted keys, `---` between objects, no comments.
    let rendered = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n---\napiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  labels:\n    app: db\n  name: db\n  namespace: shop\nspec:\n  selector:\n    matchLabels:\n      app: db\n  serviceName: db\n  template:\n    metadata:\n      labels:\n        app: db\n    spec:\n      containers:\n      - image: postgres:17.2\n        name: postgres\n";
    let run = audit_stdin(&["-", "-o", "json"], rendered.as_bytes());
    run.expect_code(1);
    let report = run.json();
    let list = workloads(&report);
    let db = find(&list, "StatefulSet shop/db");
    assert_eq!(db["source"]["input"], "<stdin>");
    assert_eq!(db["source"]["line"], 6);
    assert_eq!(
        report["summary"]["skipped"]["not a workload"]["Namespace"],
        1
    );
}

#[test]
fn kubectl_list_json_is_judged_item_by_item_with_item_lines() {
    let run = audit(&["tests/audit-fixtures/lists/kubectl-get.json", "-o", "json"]);
    run.expect_code(1);
    let report = run.json();
    let list = workloads(&report);
    let names: Vec<&str> = list.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Deployment shop/checkout", "Pod shop/one-off"]);
    let one_off = find(&list, "Pod shop/one-off");
    assert_eq!(one_off["source"]["item"], 3);
    assert_eq!(one_off["uid"], "d4e5f607-1829-4a3b-b5c6-d7e8f90a1b2c");
    // The item's line is the line of its opening brace, 4 lines above its name.
    assert_eq!(
        one_off["source"]["line"],
        line_of("lists/kubectl-get.json", "\"name\": \"one-off\"") - 4
    );
    let skipped = &report["summary"]["skipped"]["owned by a controller (judged through it)"];
    assert_eq!(skipped["ReplicaSet"], 1, "a Deployment's ReplicaSet");
    assert_eq!(skipped["Pod"], 1, "a ReplicaSet's Pod");
}

#[test]
fn typed_lists_name_the_kind_of_their_items() {
    // The API server's own list (`StatefulSetList`) does not repeat apiVersion/kind per item.
    let run = audit(&["tests/audit-fixtures/lists/typed-list.json", "-o", "json"]);
    run.expect_code(1);
    let list = workloads(&run.json());
    let names: Vec<&str> = list.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["StatefulSet data/db", "StatefulSet data/queue"]);
    assert_eq!(list[1].1["source"]["line"], 3);
}

#[test]
fn yaml_lists_are_judged_item_by_item() {
    let run = audit(&["tests/audit-fixtures/lists/list.yaml", "-o", "json"]);
    run.expect_code(1);
    let report = run.json();
    let list = workloads(&report);
    let exporter = find(&list, "DaemonSet monitoring/node-exporter");
    assert_eq!(
        exporter["source"]["line"],
        line_of("lists/list.yaml", "apiVersion: apps/v1")
    );
    let host = exporter["violations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["check"] == "host-namespaces")
        .expect("hostNetwork is reported");
    assert_eq!(
        host["line"],
        line_of("lists/list.yaml", "hostNetwork: true")
    );
    assert_eq!(report["summary"]["skipped"]["not a workload"]["Service"], 1);
}

#[test]
fn a_broken_document_is_reported_with_its_line_and_the_rest_is_audited() {
    let run = audit(&["tests/audit-fixtures/broken/broken.yaml", "-o", "json"]);
    run.expect_code(2);
    let broken_line = line_of("broken/broken.yaml", "image: [registry");
    run.stderr_has(&format!(
        "tests/audit-fixtures/broken/broken.yaml:{broken_line}: this document is not valid YAML"
    ));
    let report = run.json();
    let names: Vec<String> = workloads(&report).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["Pod shop/first", "Pod shop/last"]);
    assert_eq!(report["errors"][0]["line"], broken_line);
    assert_eq!(report["summary"]["inputErrors"], 1);

    // The table says so too, and why the exit code is 2.
    audit(&["tests/audit-fixtures/broken/broken.yaml"])
        .expect_code(2)
        .stdout_has(&format!(
            "broken.yaml:{broken_line}: this document is not valid YAML"
        ))
        .stdout_has("INCOMPLETE");
}

#[test]
fn json_on_stdin_is_recognised() {
    let pod = std::fs::read(fixture("manifests/pod.json")).unwrap();
    let run = audit_stdin(&["-", "-o", "json"], &pod);
    run.expect_code(1);
    let names: Vec<String> = workloads(&run.json()).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["Pod ops/debug"]);
}

#[test]
fn invalid_json_names_the_line() {
    // Not JSON, and not YAML either (YAML would read `{a: 1}` flow style).
    let run = audit_stdin(&["-"], b"{\n  \"kind\": \"Pod\",\n  \"spec\": [1, 2\n}\n");
    run.expect_code(2).stderr_has("<stdin>:4: not valid JSON");
    // A .json file is JSON: no YAML fallback.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pod.json");
    std::fs::write(&file, "{\"kind\": \"Pod\", oops}\n").unwrap();
    audit(&[file.to_str().unwrap()])
        .expect_code(2)
        .stderr_has("pod.json:1: not valid JSON");
}

#[test]
fn a_missing_path_says_what_to_pass() {
    audit(&["tests/audit-fixtures/no-such-dir"])
        .expect_code(2)
        .stderr_has("no-such-dir: cannot read it")
        .stderr_has("pass an existing file or directory");
}

#[test]
fn namespace_filters_files_and_is_assumed_where_none_is_set() {
    let run = audit(&["tests/audit-fixtures/manifests", "-n", "ops", "-o", "json"]);
    run.expect_code(1);
    let report = run.json();
    let names: Vec<String> = workloads(&report).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["Pod ops/debug"]);
    assert_eq!(
        report["summary"]["skipped"]["outside --namespace"]["Deployment"],
        1
    );

    let rendered = std::fs::read(fixture("helm/rendered.yaml")).unwrap();
    let run = audit_stdin(&["-", "-n", "shop", "-o", "json"], &rendered);
    let names: Vec<String> = workloads(&run.json()).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        ["Deployment shop/shop", "Pod shop/shop-test-connection"]
    );
}

#[test]
fn an_exempt_namespace_is_counted_as_exempt() {
    let run = audit(&[
        "tests/audit-fixtures/manifests/pod.json",
        "-n",
        "ops",
        "-o",
        "json",
    ]);
    run.expect_code(1);
    let exempt = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: dns\n  namespace: kube-system\nspec:\n  containers:\n  - name: a\n    image: a\n";
    let run = audit_stdin(&["-", "-o", "json"], exempt.as_bytes());
    run.expect_code(0);
    let report = run.json();
    assert_eq!(report["workloads"][0]["status"], "exempt");
    assert_eq!(report["summary"]["exempt"], 1);
}

#[test]
fn the_default_module_is_the_release_build() {
    // From the repository, without --policy: target/wasm32-wasip1/release/...
    audit_support::module();
    run(Invocation {
        args: vec!["tests/audit-fixtures/exit/compliant.yaml".to_owned()],
        no_policy: true,
        ..Invocation::default()
    })
    .expect_code(0);

    // A binary far from any build, run from elsewhere, says how to build the module.
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("podguard");
    std::fs::copy(env!("CARGO_BIN_EXE_podguard"), &binary).unwrap();
    let mut command = std::process::Command::new(&binary);
    command
        .args(["audit", "x.yaml"])
        .current_dir(dir.path())
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("PODGUARD_POLICY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let output = audit_support::spawn(&mut command)
        .wait_with_output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no policy module: pass --policy MODULE.wasm, or build the default one with `cargo build --release --target wasm32-wasip1 -p podguard-policy`"),
        "{stderr}"
    );
}
