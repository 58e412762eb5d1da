//! `podguard audit` over every input form: directories, multi-document YAML, JSON,
//! `kind: List` (YAML, JSON, typed lists), Helm and Kustomize output on stdin, a broken
//! document among good ones, and the default module lookup.

mod audit_support;

use audit_support::{audit, audit_stdin, checks_of, fixture, workloads};
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
    // The ReplicaSet that owns web-7d4b9c8f6-x2x9k is not among the inputs, so the Pod is
    // judged on its own (after the rest, once every input has been read).
    assert_eq!(
        names,
        [
            "Deployment shop/web",
            "Job shop/migrate",
            "Pod ops/debug",
            "Pod shop/web-7d4b9c8f6-x2x9k"
        ]
    );
    let owned = find(&list, "Pod shop/web-7d4b9c8f6-x2x9k");
    assert_eq!(
        owned["notes"][0],
        "owned by ReplicaSet/web-7d4b9c8f6, which is not among the inputs: judged on its own"
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
    assert!(
        skipped
            .get("owned by a controller (judged through it)")
            .is_none()
    );
}

/// `kubectl get pods -A -o yaml | podguard audit -`: every Pod is owned by a ReplicaSet
/// that is not in the input, so every Pod is judged; none passes unexamined.
#[test]
fn owned_pods_without_their_controller_in_the_input_are_judged() {
    let pod = |name: &str, owner: &str| {
        format!(
            "- apiVersion: v1
  kind: Pod
  metadata:
    name: {name}
    namespace: shop
    ownerReferences:
    - {{apiVersion: apps/v1, kind: ReplicaSet, name: {owner}, uid: 0b5f7a0e-2c1e-4a8e-9a4e-6a3f1f4b2c11, controller: true}}
  spec:
    containers:
    - name: app
      image: registry.example.com/shop/app:1.0.0
"
        )
    };
    let dump = format!(
        "apiVersion: v1\nkind: List\nitems:\n{}{}",
        pod("web-7d4b9c8f6-x2x9k", "web-7d4b9c8f6"),
        pod("api-5c6d7e8f9-q1w2e", "api-5c6d7e8f9")
    );
    let run = audit_stdin(&["-", "-o", "json"], dump.as_bytes());
    run.expect_code(1);
    let report = run.json();
    let list = workloads(&report);
    assert_eq!(list.len(), 2, "{report}");
    for (name, entry) in &list {
        assert_eq!(entry["status"], "fail", "{name}: {entry}");
        assert!(
            entry["notes"][0]
                .as_str()
                .unwrap()
                .contains("which is not among the inputs: judged on its own"),
            "{entry}"
        );
    }
    assert!(
        report["summary"]["skipped"]
            .get("owned by a controller (judged through it)")
            .is_none(),
        "{report}"
    );

    // With the ReplicaSet in the input too, its Pod is judged through it.
    let replicaset = "---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web-7d4b9c8f6, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: registry.example.com/shop/app:1.0.0
";
    let run = audit_stdin(
        &["-", "-o", "json"],
        format!("{dump}{replicaset}").as_bytes(),
    );
    let report = run.json();
    let names: Vec<String> = workloads(&report).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "ReplicaSet shop/web-7d4b9c8f6",
            "Pod shop/api-5c6d7e8f9-q1w2e"
        ]
    );
    assert_eq!(
        report["summary"]["skipped"]["owned by a controller (judged through it)"]["Pod"],
        1
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

    // With the table, the error is said once (stdout and stderr often share a CI log):
    // on stderr, and the table counts it and says why the exit code is 2.
    let run = audit(&["tests/audit-fixtures/broken/broken.yaml"]);
    run.expect_code(2)
        .stderr_has(&format!(
            "broken.yaml:{broken_line}: this document is not valid YAML"
        ))
        .stdout_has("1 input could not be read (listed on stderr)")
        .stdout_has("INCOMPLETE");
    assert!(!run.stdout.contains("not valid YAML"), "{}", run.stdout);
    assert_eq!(
        run.stderr.matches("not valid YAML").count(),
        1,
        "{}",
        run.stderr
    );
}

/// A Helm chart or a Kustomize directory is not a folder of manifests: one line says
/// what to run instead, and its templates are not parsed.
#[test]
fn helm_charts_and_kustomize_directories_say_what_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let chart = root.join("charts/web");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: web\nversion: 0.1.0\n",
    )
    .unwrap();
    std::fs::write(
        chart.join("templates/deployment.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ include \"web.fullname\" . }}\nspec:\n  {{- with .Values.replicas }}\n  replicas: {{ . }}\n  {{- end }}\n",
    )
    .unwrap();
    let base = root.join("kustomize/base");
    std::fs::create_dir_all(&base).unwrap();
    std::fs::write(base.join("kustomization.yaml"), "resources: [pod.yaml]\n").unwrap();
    std::fs::copy(fixture("manifests/app.yaml"), base.join("pod.yaml")).unwrap();
    std::fs::create_dir_all(root.join("plain")).unwrap();
    std::fs::copy(fixture("manifests/pod.json"), root.join("plain/pod.json")).unwrap();

    let run = audit(&[root.to_str().unwrap(), "-o", "json"]);
    run.expect_code(2)
        .stderr_has(&format!(
            "{}: it is a Helm chart (it holds Chart.yaml)",
            chart.display()
        ))
        .stderr_has(&format!(
            "run `helm template {} | podguard audit -`",
            chart.display()
        ))
        .stderr_has(&format!(
            "run `kubectl kustomize {} | podguard audit -`",
            base.display()
        ));
    assert_eq!(
        run.stderr.lines().count(),
        2,
        "one line each: {}",
        run.stderr
    );
    // The plain manifests beside them are audited.
    let names: Vec<String> = workloads(&run.json()).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["Pod ops/debug"]);
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
