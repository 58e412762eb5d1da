//! The YAML reader's tests, across its parts.

use super::*;
use serde_json::{Value, json};

#[test]
fn split_keeps_every_byte_and_finds_content_lines() {
    let text = "# leading\n---\n# Source: chart/templates/a.yaml\napiVersion: v1\nkind: A\n---\n---\nkind: B\n...\n# after end\nkind: C\n";
    let segments = split(text);
    let joined: String = segments.iter().map(|s| &text[s.range.clone()]).collect();
    assert_eq!(joined, text);
    let content: Vec<Option<usize>> = segments.iter().map(|s| s.content_line).collect();
    assert_eq!(content, vec![None, Some(4), None, Some(8), Some(11)]);
    assert_eq!(
        segments[1].helm_source.as_deref(),
        Some("chart/templates/a.yaml")
    );
}

#[test]
fn transcoding_indexes_the_lines_the_slow_index_finds() {
    // Found by fuzzing (audit_yaml): a document that is a bare scalar, as an empty Helm
    // template can leave, was indexed by LineIndex::build but not by transcode.
    for (text, first_line) in [
        (
            "# Source: shop/templates/empty.yaml\n+ (rendered nothing)\n",
            17,
        ),
        ("args:\n  - wget\n  - shop:80\nkind: Pod\n", 1),
    ] {
        let mut json = Vec::new();
        let mut lines = LineIndex::default();
        transcode_with_lines(text, first_line, &mut json, Some(&mut lines))
            .expect("plain YAML")
            .expect("a document");
        assert_eq!(lines, LineIndex::build(text, first_line), "{text}");
    }
}

#[test]
fn streaming_split_matches_in_memory_split() {
    let text = "a: 1\n---\nb: 2\n--- {c: 3}\n---foo: 4\n...\nd: 5";
    let streamed: Vec<OwnedSegment> = StreamSplitter::new(text.as_bytes())
        .map(Result::unwrap)
        .collect();
    let split = split(text);
    assert_eq!(
        streamed
            .iter()
            .map(|s| s.segment.clone())
            .collect::<Vec<_>>(),
        split
    );
    for owned in &streamed {
        assert_eq!(owned.text, &text[owned.segment.range.clone()]);
    }
    assert_eq!(split[2].content_line, Some(4), "inline content on ---");
}

#[test]
fn emitted_yaml_reads_back_identically() {
    let value = json!({
        "apiVersion": "apps/v1",
        "metadata": {"name": "x", "annotations": {"prometheus.io/scrape": "true", "a": "yes", "b": "0755", "c": "1e3", "d": "", "e": "- x", "f": "a: b", "g": "it's", "h": "tab\there", "i": "12:30", "j": "2024-01-01", "k": "500m", "l": "1Gi", "m": ".5", "n": "~", "o": "null", "p": " lead"}},
        "spec": {"replicas": 3, "ratio": 1.5, "paused": false, "nothing": null, "empty": {}, "none": [],
            "containers": [{"name": "app", "args": ["--a", "multi\nline\n", "x\ny"], "env": [{"name": "A", "value": "1"}]}],
            "matrix": [[1, 2], []]}
    });
    for style in [
        Style::default(),
        Style {
            indent: 4,
            indent_sequences: true,
        },
    ] {
        let text = emit(&value, style);
        let back: Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(back, value, "emitted:\n{text}");
    }
}

#[test]
fn style_detection() {
    let kubectl = "spec:\n  containers:\n  - name: a\n";
    assert_eq!(
        Style::detect(kubectl),
        Style {
            indent: 2,
            indent_sequences: false
        }
    );
    let indented = "spec:\n    containers:\n        - name: a\n";
    assert_eq!(
        Style::detect(indented),
        Style {
            indent: 4,
            indent_sequences: true
        }
    );
}

#[test]
fn line_index_finds_the_deepest_written_field() {
    let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  annotations:\n    prometheus.io/port: \"80\"\nspec:\n  containers:\n  - name: app\n    securityContext:\n      privileged: true\n";
    let index = LineIndex::build(text, 10);
    assert_eq!(
        index.line_of("/spec/containers/0/securityContext/runAsNonRoot"),
        Some(19)
    );
    assert_eq!(
        index.line_of("/spec/containers/0/securityContext/privileged"),
        Some(20)
    );
    assert_eq!(
        index.line_of("/metadata/annotations/prometheus.io~1port"),
        Some(15)
    );
    assert_eq!(index.line_of("/spec/initContainers/0"), Some(16));
}

/// What serde-saphyr reads, for comparison.
fn saphyr(text: &str) -> Option<Value> {
    serde_saphyr::from_str(text).ok()
}

fn transcoded(text: &str) -> Result<Option<Value>, Unsupported> {
    let mut out = Vec::new();
    transcode_with_lines(text, 1, &mut out, None)
        .map(|found| found.map(|_| serde_json::from_slice(&out).expect("valid JSON")))
}

#[test]
fn transcoding_reads_as_serde_saphyr_does() {
    let documents = [
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels: {app: web, tier: \"1\"}\nspec:\n  replicas: 3\n  paused: false\n  ratio: 0.25\n  neg: -4\n  zero: 0\n  nothing:\n  tilde: ~\n  template:\n    spec:\n      containers:\n      - name: app\n        image: nginx:1.27\n        args: [\"--port\", \"80\", -v]\n        resources:\n          limits: {cpu: 500m, memory: 128Mi}\n        command:\n        - sh\n        - -c\n        - |\n          echo hi\n          exit 0\n        env:\n        - {name: A, value: 'it''s'}\n        - name: B\n          value: >-\n            folded\n            text\n",
        "# comment only before\n---\nkind: List\nitems:\n- a: 1\n- b: [x, {c: d}]\n",
        "--- {a: 1, b: [true, null, \"x\"]}\n",
        "key: \"esc\\u00e9\\n\\ttab\"\nunicode: héllo\nurl: http://x/y#z\npath: ./run.sh\n",
    ];
    for text in documents {
        assert_eq!(transcoded(text).unwrap(), saphyr(text), "{text}");
    }
    assert_eq!(transcoded("# only a comment\n").unwrap(), None);
    assert_eq!(transcoded("---\n~\n").unwrap(), None);
}

#[test]
fn transcoding_leaves_the_unusual_to_serde_saphyr() {
    for text in [
        "a: &x 1\nb: *x\n",
        "a: !!str 1\n",
        "a: {b: 1}\nc:\n  <<: {d: 2}\n",
        "a: 1\na: 2\n",
        "? [complex]\n: key\n",
        "a: 0755\n",
        "a: 1e3\n",
        "a: yes\n",
        "a: On\n",
        "a: .inf\n",
        "a: 1_000\n",
        "a: 12:30\n",
        "a: 2024-01-01\n",
        "a: +1\n",
        "a: 007\n",
        "a: [1, 2\n",
    ] {
        assert_eq!(transcoded(text), Err(Unsupported), "{text}");
    }
}

#[test]
fn transcoding_records_the_lines_line_index_finds() {
    let text = "apiVersion: v1\nkind: List\nitems:\n- kind: Pod\n  metadata:\n    name: a\n    annotations: {\"prometheus.io/port\": \"80\"}\n  spec:\n    containers:\n    - name: app\n      securityContext:\n        privileged: true\n      args:\n      - x\n";
    let mut index = LineIndex::default();
    transcode_with_lines(text, 7, &mut Vec::new(), Some(&mut index)).unwrap();
    let built = LineIndex::build(text, 7);
    assert_eq!(index.lines, built.lines);
    assert_eq!(
        index.line_of("/items/0/spec/containers/0/securityContext/runAsNonRoot"),
        Some(17)
    );
}

#[test]
fn block_lists_split_into_items_that_stand_alone() {
    let text = "---\napiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: a\n  spec:\n    containers:\n    - name: app\n      args: |\n        line one\n\n        line two\n# a comment between items\n-\n  kind: Service\n  metadata: {name: b}\nkind: List\nmetadata:\n  resourceVersion: \"\"\n";
    let split = split_block_list(text, 10).expect("a block list");
    assert_eq!(split.kind, "List");
    assert_eq!(split.api_version.as_deref(), Some("v1"));
    assert_eq!(split.items.len(), 2);
    let (a, b) = (&split.items[0], &split.items[1]);
    assert_eq!((a.first_line, a.content_line), (13, 13));
    assert_eq!((b.first_line, b.content_line), (25, 26));
    let pod: serde_json::Value = serde_saphyr::from_str(&a.text(text)).unwrap();
    assert_eq!(pod["metadata"]["name"], "a");
    assert_eq!(
        pod["spec"]["containers"][0]["args"],
        "line one\n\nline two\n"
    );
    let service: serde_json::Value = serde_saphyr::from_str(&b.text(text)).unwrap();
    assert_eq!(service["metadata"]["name"], "b");
    // Each item keeps one text line per file line, so field lines map back.
    assert_eq!(a.text(text).lines().count(), 12);

    // Indented sequences (`items:\n  - a: 1`), typed lists.
    let indented =
        "apiVersion: apps/v1\nkind: DeploymentList\nitems:\n  - metadata:\n      name: d\n";
    let split = split_block_list(indented, 1).unwrap();
    assert_eq!(split.kind, "DeploymentList");
    let deployment: serde_json::Value =
        serde_saphyr::from_str(&split.items[0].text(indented)).unwrap();
    assert_eq!(deployment["metadata"]["name"], "d");

    // Not lists, or not in a shape this reader follows: judged whole.
    for text in [
        "kind: ConfigMap\nitems:\n- a\n",
        "kind: List\nitems: []\n",
        "kind: List\nitems: [{kind: Pod}]\n",
        "kind: List\nitems:\n- - nested\n",
        "kind: Pod\nspec: {}\n",
    ] {
        assert_eq!(split_block_list(text, 1), None, "{text:?}");
    }
}

#[test]
fn transcoding_finds_the_lines_of_list_items() {
    let mut out = Vec::new();
    let found = transcode_with_lines(
        "apiVersion: v1\nkind: List\nitems:\n- kind: Pod\n  x: {items: [1]}\n-\n  kind: Service\n",
        10,
        &mut out,
        None,
    )
    .unwrap()
    .unwrap();
    assert!(found.mapping && found.list_kind);
    // An item's line is where its content starts.
    assert_eq!(found.item_lines, vec![13, 16]);
}

/// Found by fuzzing: a key longer than YAML's 1024-character limit for implicit keys, in a
/// mapping inside a sequence and at the top, is written as an explicit `? key`.
#[test]
fn keys_past_yaml_implicit_key_limit_read_back() {
    let long = format!("nam\"sta{}\r\t{}", "K".repeat(700), "\n".repeat(400));
    let value = json!({
        long.clone(): {"nested": [1]},
        "spec": {"containers": [{long.clone(): "a", "image": "b"}], "list": [{"x": 1}]},
    });
    for style in [
        Style::default(),
        Style {
            indent: 4,
            indent_sequences: true,
        },
    ] {
        let text = emit(&value, style);
        let back: Value =
            serde_saphyr::from_str(&text).unwrap_or_else(|err| panic!("{err}; emitted:\n{text}"));
        assert_eq!(back, value, "emitted:\n{text}");
    }
}
