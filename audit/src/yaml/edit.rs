//! Minimal text edits for `--fix`: the lines mutate mode's changes need, written into the
//! document's own text in its own indentation and quoting, every other byte kept.
//!
//! The document is read once with the parser to learn where each field is written (byte
//! range, column, block or flow style). The change is the difference between the object
//! as read and as mutate mode left it; each part of it becomes one edit:
//! - a key added to a block mapping: lines inserted after the mapping's last line, at its
//!   keys' column;
//! - items added to a block sequence: lines inserted after its last item, at its dashes'
//!   column;
//! - a scalar changed: the scalar's own bytes replaced, in its quoting style;
//! - a flow collection (`{}`, `[a, b]`) changed: that collection rewritten in flow style.
//!
//! Anything else (a removed key, a scalar turned into a mapping, anchors) returns `None`,
//! and the caller rewrites the document whole. So does an edit that, read back, is not
//! exactly the object mutate mode produced.

use std::collections::HashMap;

use serde_json::{Map, Value};
use serde_saphyr::granit_parser::{Event, Marker, ScalarStyle, StructureStyle};

use super::emit::{Style, emit_map, emit_seq, emit_string};
use super::lines::escape;
use super::transcode::parser;

/// Where one node of the document is written.
#[derive(Debug, Clone)]
struct Node {
    /// Byte range of its text: a scalar's own characters, a flow collection from its
    /// bracket to its closing bracket, a block collection from its first to the end of
    /// its last scalar.
    start: usize,
    end: usize,
    /// Column (characters) of its start.
    col: usize,
    shape: Shape,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Scalar(ScalarStyle),
    Map { flow: bool },
    Seq { flow: bool },
}

/// One change to the text: replace `range` with `text` (an insertion has an empty range).
#[derive(Debug)]
struct Edit {
    start: usize,
    end: usize,
    text: String,
}

/// The document `text` changed from `before` to `after` by minimal edits, or `None` when
/// the change cannot be made that way (the caller then rewrites the whole document).
pub fn minimal_edit(text: &str, before: &Value, after: &Value, style: Style) -> Option<String> {
    if before == after {
        return Some(text.to_owned());
    }
    let nodes = index(text)?;
    let mut edits = Vec::new();
    diff(text, &nodes, "", before, after, style, &mut edits)?;
    edits.sort_by_key(|edit| (edit.start, edit.end));
    if edits.windows(2).any(|pair| pair[0].end > pair[1].start) {
        return None;
    }
    let mut out = text.to_owned();
    for edit in edits.iter().rev() {
        out.replace_range(edit.start..edit.end, &edit.text);
    }
    // What is written must read back as exactly what mutate mode produced.
    let back: Value = serde_saphyr::from_str(&out).ok()?;
    (back == *after).then_some(out)
}

/// Reads where every node is written, keyed by JSON pointer. `None` for documents with
/// anchors, aliases, tags or complex keys, whose text does not map onto the data one to
/// one.
fn index(text: &str) -> Option<HashMap<String, Node>> {
    enum Frame {
        Map {
            pointer: String,
            key: Option<String>,
            expect_key: bool,
        },
        Seq {
            pointer: String,
            next: usize,
        },
    }
    let byte = |marker: &Marker| {
        marker.byte_offset().unwrap_or_else(|| {
            text.char_indices()
                .nth(marker.index())
                .map_or(text.len(), |(offset, _)| offset)
        })
    };
    let mut nodes = HashMap::new();
    let mut stack: Vec<Frame> = Vec::new();
    // End of the last scalar or flow collection read: where an open block collection
    // ends so far.
    let mut last_end = 0;
    for event in parser(text) {
        let (event, span) = event.ok()?;
        let is_node = matches!(
            event,
            Event::Scalar(..)
                | Event::MappingStart(..)
                | Event::SequenceStart(..)
                | Event::Alias(..)
        );
        // The pointer of the node this event starts; `None` for a mapping key.
        let mut pointer = None;
        if is_node {
            match stack.last_mut() {
                None => pointer = Some(String::new()),
                Some(Frame::Map {
                    pointer: base,
                    key,
                    expect_key,
                }) => {
                    if *expect_key {
                        *expect_key = false;
                        match &event {
                            Event::Scalar(value, ..) => *key = Some(value.to_string()),
                            _ => return None,
                        }
                    } else {
                        *expect_key = true;
                        pointer = Some(format!("{base}/{}", escape(key.as_deref()?)));
                    }
                }
                Some(Frame::Seq {
                    pointer: base,
                    next,
                }) => {
                    pointer = Some(format!("{base}/{next}"));
                    *next += 1;
                }
            }
        }
        let start = byte(&span.start);
        let col = span.start.col();
        let is_map = matches!(event, Event::MappingStart(..));
        match event {
            Event::Alias(..) => return None,
            Event::Scalar(_, style, anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    return None;
                }
                last_end = byte(&span.end);
                if let Some(pointer) = pointer {
                    nodes.insert(
                        pointer,
                        Node {
                            start,
                            end: last_end,
                            col,
                            shape: Shape::Scalar(style),
                        },
                    );
                }
            }
            Event::MappingStart(style, anchor, tag) | Event::SequenceStart(style, anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    return None;
                }
                let pointer = pointer?;
                let flow = style == StructureStyle::Flow;
                nodes.insert(
                    pointer.clone(),
                    Node {
                        start,
                        end: start,
                        col,
                        shape: if is_map {
                            Shape::Map { flow }
                        } else {
                            Shape::Seq { flow }
                        },
                    },
                );
                stack.push(if is_map {
                    Frame::Map {
                        pointer,
                        key: None,
                        expect_key: true,
                    }
                } else {
                    Frame::Seq { pointer, next: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let pointer = match stack.pop()? {
                    Frame::Map { pointer, .. } | Frame::Seq { pointer, .. } => pointer,
                };
                let node = nodes.get_mut(&pointer)?;
                let flow = matches!(
                    node.shape,
                    Shape::Map { flow: true } | Shape::Seq { flow: true }
                );
                if flow {
                    last_end = byte(&span.end).max(last_end);
                }
                node.end = last_end;
                if flow && !text[node.start..node.end].trim_end().ends_with(['}', ']']) {
                    return None;
                }
            }
            Event::DocumentEnd if stack.is_empty() => break,
            _ => {}
        }
    }
    Some(nodes)
}

/// Adds the edits that turn `before` into `after` at `pointer`.
fn diff(
    text: &str,
    nodes: &HashMap<String, Node>,
    pointer: &str,
    before: &Value,
    after: &Value,
    style: Style,
    edits: &mut Vec<Edit>,
) -> Option<()> {
    if before == after {
        return Some(());
    }
    let node = nodes.get(pointer)?;
    match (before, after, node.shape) {
        (_, _, Shape::Map { flow: true } | Shape::Seq { flow: true }) => {
            if !matches!(after, Value::Object(_) | Value::Array(_)) {
                return None;
            }
            edits.push(Edit {
                start: node.start,
                end: node.end,
                text: flow(after),
            });
        }
        (Value::Object(old), Value::Object(new), Shape::Map { flow: false }) => {
            if old.keys().any(|key| !new.contains_key(key)) {
                return None;
            }
            let mut added = Map::new();
            for (key, value) in new {
                match old.get(key) {
                    Some(previous) => diff(
                        text,
                        nodes,
                        &format!("{pointer}/{}", escape(key)),
                        previous,
                        value,
                        style,
                        edits,
                    )?,
                    None => {
                        added.insert(key.clone(), value.clone());
                    }
                }
            }
            if !added.is_empty() {
                let at = line_after(text, node.end);
                let mut lines = String::new();
                // A block mapping starts at its first key, after an item's dash too.
                emit_map(&mut lines, &added, node.col, style);
                edits.push(insertion(text, at, lines));
            }
        }
        (Value::Array(old), Value::Array(new), Shape::Seq { flow: false }) => {
            if new.len() < old.len() {
                return None;
            }
            for (index, (previous, value)) in old.iter().zip(new).enumerate() {
                diff(
                    text,
                    nodes,
                    &format!("{pointer}/{index}"),
                    previous,
                    value,
                    style,
                    edits,
                )?;
            }
            if new.len() > old.len() {
                let first = nodes.get(&format!("{pointer}/0"))?;
                let dash = dash_column(text, first)?;
                let at = line_after(text, node.end);
                let mut lines = String::new();
                emit_seq(&mut lines, &new[old.len()..], dash, style);
                edits.push(insertion(text, at, lines));
            }
        }
        (_, Value::Object(_) | Value::Array(_), _) | (Value::Object(_) | Value::Array(_), _, _) => {
            return None;
        }
        (_, scalar, Shape::Scalar(written)) => edits.push(Edit {
            start: node.start,
            end: node.end,
            text: scalar_text(scalar, written)?,
        }),
        _ => return None,
    }
    Some(())
}

/// Where lines go after the line holding byte `end` (a block scalar's end is already at
/// a line start).
fn line_after(text: &str, end: usize) -> usize {
    if end > 0 && text.as_bytes()[end - 1] == b'\n' {
        return end;
    }
    text[end..].find('\n').map_or(text.len(), |i| end + i + 1)
}

/// An insertion of whole lines at `at`, starting a line of its own when the text there
/// does not end with one.
fn insertion(text: &str, at: usize, mut lines: String) -> Edit {
    if at == text.len() && !text.is_empty() && !text.ends_with('\n') {
        lines.insert(0, '\n');
    }
    Edit {
        start: at,
        end: at,
        text: lines,
    }
}

/// The column of the dash of a block sequence item that starts at `item`.
fn dash_column(text: &str, item: &Node) -> Option<usize> {
    let line_start = text[..item.start].rfind('\n').map_or(0, |i| i + 1);
    let before = &text[line_start..item.start];
    let dash = before.rfind('-')?;
    // Columns count characters; the indentation before a dash is spaces.
    before[..dash]
        .chars()
        .all(|c| c == ' ' || c == '-')
        .then_some(before[..dash].chars().count())
}

/// A scalar in the style its predecessor was written in where that style can hold it.
fn scalar_text(value: &Value, written: ScalarStyle) -> Option<String> {
    Some(match (value, written) {
        (Value::String(text), ScalarStyle::DoubleQuoted) => {
            serde_json::to_string(text).expect("a string serialises")
        }
        (Value::String(text), ScalarStyle::SingleQuoted)
            if text.chars().all(|c| !c.is_control()) =>
        {
            format!("'{}'", text.replace('\'', "''"))
        }
        (Value::String(text), ScalarStyle::Plain | ScalarStyle::SingleQuoted) => {
            let mut out = String::new();
            emit_string(&mut out, text);
            out
        }
        (Value::String(_), _) => return None,
        (other, _) => flow(other),
    })
}

/// A value in flow style, on one line.
fn flow(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let entries: Vec<String> = map
                .iter()
                .map(|(key, value)| {
                    let mut entry = String::new();
                    emit_string(&mut entry, key);
                    entry.push_str(": ");
                    entry.push_str(&flow(value));
                    entry
                })
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(flow).collect();
            format!("[{}]", items.join(", "))
        }
        Value::String(text) => {
            let mut out = String::new();
            emit_string(&mut out, text);
            // Flow indicators end a plain scalar inside a flow collection.
            if out == *text && text.contains([',', '[', ']', '{', '}']) {
                return serde_json::to_string(text).expect("a string serialises");
            }
            out
        }
        Value::Null => "null".to_owned(),
        scalar => scalar.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn edit(text: &str, change: impl FnOnce(&mut Value)) -> String {
        let before: Value = serde_saphyr::from_str(text).unwrap();
        let mut after = before.clone();
        change(&mut after);
        let out = minimal_edit(text, &before, &after, Style::detect(text))
            .unwrap_or_else(|| panic!("no minimal edit for:\n{text}"));
        let back: Value = serde_saphyr::from_str(&out).unwrap();
        assert_eq!(back, after, "{out}");
        out
    }

    /// The lines of `after` that are not in `before` (read in order), and the lines of
    /// `before` that are not in `after`.
    fn line_changes(before: &str, after: &str) -> (Vec<String>, Vec<String>) {
        let old: Vec<&str> = before.lines().collect();
        let mut next = 0;
        let mut added = Vec::new();
        let mut lost = Vec::new();
        for line in after.lines() {
            match old[next..].iter().position(|candidate| *candidate == line) {
                Some(skip) => {
                    lost.extend(old[next..next + skip].iter().map(|l| (*l).to_owned()));
                    next += skip + 1;
                }
                None => added.push(line.to_owned()),
            }
        }
        lost.extend(old[next..].iter().map(|l| (*l).to_owned()));
        (added, lost)
    }

    /// The lines of `after` that are not in `before`, when every line of `before` is
    /// still there in order.
    fn added_lines(before: &str, after: &str) -> Vec<String> {
        let (added, lost) = line_changes(before, after);
        assert!(lost.is_empty(), "lines were lost: {lost:?}\n{after}");
        added
    }

    const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: frontend   # the storefront
spec:
  template:
    metadata:
      labels:
        app: frontend
    spec:
      # runs as the image's user
      containers:
        - name: server
          image: \"gcr.io/shop/frontend:v0.10.3\"
          ports:
            - containerPort: 8080
          env:
            - name: PORT
              value: \"9555\"
            - name: FLAGS
              value: '--verbose'
          resources: {}
";

    #[test]
    fn keys_are_added_after_their_mapping_in_its_indentation() {
        let out = edit(DEPLOYMENT, |d| {
            d["spec"]["template"]["spec"]["securityContext"] = json!({"runAsNonRoot": true});
            d["spec"]["template"]["metadata"]["annotations"] =
                json!({"prometheus.io/scrape": "true", "prometheus.io/port": "8080"});
        });
        assert_eq!(
            added_lines(DEPLOYMENT, &out),
            [
                "      annotations:",
                "        prometheus.io/scrape: 'true'",
                "        prometheus.io/port: '8080'",
                "      securityContext:",
                "        runAsNonRoot: true",
            ]
        );
        // Everything else, comments and quoting included, is where it was.
        assert!(out.contains("  name: frontend   # the storefront\n"));
        assert!(out.contains("              value: \"9555\"\n"));
        assert!(out.contains("      # runs as the image's user\n"));
    }

    #[test]
    fn keys_of_a_sequence_item_line_up_under_its_first_key() {
        let out = edit(DEPLOYMENT, |d| {
            d["spec"]["template"]["spec"]["containers"][0]["securityContext"] =
                json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}});
        });
        assert_eq!(
            added_lines(DEPLOYMENT, &out),
            [
                "          securityContext:",
                "            allowPrivilegeEscalation: false",
                "            capabilities:",
                "              drop:",
                "                - ALL",
            ]
        );
    }

    #[test]
    fn flow_collections_and_scalars_are_rewritten_in_place() {
        let out = edit(DEPLOYMENT, |d| {
            let container = &mut d["spec"]["template"]["spec"]["containers"][0];
            container["resources"] = json!({"limits": {"cpu": "500m", "memory": "256Mi"}});
            container["env"][0]["value"] = json!("9556");
            container["env"][1]["value"] = json!("--quiet");
        });
        assert_eq!(out.lines().count(), DEPLOYMENT.lines().count());
        let changed: Vec<&str> = DEPLOYMENT
            .lines()
            .zip(out.lines())
            .filter(|(before, after)| before != after)
            .map(|(_, after)| after)
            .collect();
        assert_eq!(
            changed,
            [
                "              value: \"9556\"",
                "              value: '--quiet'",
                "          resources: {limits: {cpu: 500m, memory: 256Mi}}",
            ]
        );
    }

    #[test]
    fn items_are_appended_at_their_dashes_column() {
        let text = "spec:\n  containers:\n  - name: a\n    securityContext:\n      capabilities:\n        drop: [NET_RAW]\n        add:\n        - NET_BIND_SERVICE\n";
        let out = edit(text, |d| {
            let caps = &mut d["spec"]["containers"][0]["securityContext"]["capabilities"];
            caps["drop"] = json!(["NET_RAW", "ALL"]);
            caps["add"] = json!(["NET_BIND_SERVICE", "CHOWN"]);
        });
        assert_eq!(
            out,
            "spec:\n  containers:\n  - name: a\n    securityContext:\n      capabilities:\n        drop: [NET_RAW, ALL]\n        add:\n        - NET_BIND_SERVICE\n        - CHOWN\n"
        );
    }

    #[test]
    fn a_document_without_a_final_newline_gets_its_lines_on_lines_of_their_own() {
        let text = "kind: Pod\nspec:\n  hostNetwork: false";
        let out = edit(text, |d| {
            d["spec"]["securityContext"] = json!({"runAsNonRoot": true})
        });
        assert_eq!(
            out,
            "kind: Pod\nspec:\n  hostNetwork: false\n  securityContext:\n    runAsNonRoot: true\n"
        );
    }

    #[test]
    fn what_cannot_be_edited_in_place_is_left_to_a_rewrite() {
        let text = "spec:\n  securityContext:\n  containers: []\n";
        let before: Value = serde_saphyr::from_str(text).unwrap();
        let mut after = before.clone();
        after["spec"]["securityContext"] = json!({"runAsNonRoot": true});
        assert_eq!(minimal_edit(text, &before, &after, Style::default()), None);
        let anchored = "a: &x {b: 1}\nc: *x\n";
        let before: Value = serde_saphyr::from_str(anchored).unwrap();
        let mut after = before.clone();
        after["d"] = json!(1);
        assert_eq!(
            minimal_edit(anchored, &before, &after, Style::default()),
            None
        );
    }

    /// Manifests in the styles people write: kubectl's unindented sequences, indented
    /// ones, flow collections, comments, every quoting style.
    const STYLES: [&str; 3] = [
        DEPLOYMENT,
        "# frontend, as kubectl prints it
apiVersion: apps/v1
kind: Deployment
metadata:
  name: frontend
  labels: {app: frontend, tier: web}
spec:
  replicas: 2
  template:
    metadata:
      annotations:
        sidecar.istio.io/rewriteAppHTTPProbers: \"true\"
    spec:
      containers:
      - name: server
        args: [\"--port\", '8080']   # keep
        ports:
        - containerPort: 8080
          name: http
        securityContext:
          capabilities:
            drop: [all]
      - name: proxy
        image: envoy:1.34
      volumes:
      - name: tmp
        emptyDir: {}
",
        "apiVersion: v1
kind: List
items:
    -   apiVersion: v1
        kind: Pod
        metadata:
            name: \"one\"
        spec:
            containers:
                -   name: main
                    image: 'registry.example.com/main:1.0'
                    env:
                        -   {name: A, value: \"1\"}
",
    ];

    /// Every block mapping, block sequence and scalar of `value`, by pointer.
    fn places(value: &Value, pointer: String, out: &mut Vec<(String, Value)>) {
        out.push((pointer.clone(), value.clone()));
        match value {
            Value::Object(map) => {
                for (key, inner) in map {
                    places(inner, format!("{pointer}/{}", escape(key)), out);
                }
            }
            Value::Array(items) => {
                for (index, inner) in items.iter().enumerate() {
                    places(inner, format!("{pointer}/{index}"), out);
                }
            }
            _ => {}
        }
    }

    fn new_value(choice: u8) -> Value {
        match choice % 8 {
            0 => json!(true),
            1 => json!(65532),
            2 => json!("9555"),
            3 => json!("RuntimeDefault"),
            4 => json!({"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}}),
            5 => json!(["ALL"]),
            6 => json!("a: b # not a comment"),
            _ => json!([{"name": "metrics", "containerPort": 9090}]),
        }
    }

    proptest::proptest! {
        /// Mutate mode's kinds of change (keys added, items appended, scalars changed),
        /// anywhere in a manifest: the edited text reads back as the changed object, and
        /// when nothing but additions were made, every original line is still there, in
        /// order.
        #[test]
        fn edits_read_back_as_the_change_and_keep_every_other_line(
            style in 0..STYLES.len(),
            changes in proptest::collection::vec((0u8..3, proptest::prelude::any::<u16>(), proptest::prelude::any::<u8>()), 1..6),
        ) {
            let text = STYLES[style];
            let before: Value = serde_saphyr::from_str(text).unwrap();
            let mut targets = Vec::new();
            places(&before, String::new(), &mut targets);
            let mut after = before.clone();
            let mut only_additions = true;
            for (n, (kind, pick, choice)) in changes.into_iter().enumerate() {
                let value = new_value(choice);
                match kind {
                    0 => {
                        let maps: Vec<&String> = targets.iter().filter(|(_, v)| v.is_object()).map(|(p, _)| p).collect();
                        let pointer = maps[pick as usize % maps.len()];
                        if let Some(Value::Object(map)) = after.pointer_mut(pointer) {
                            map.insert(format!("added-{n}.example/key"), value);
                        }
                    }
                    1 => {
                        let seqs: Vec<&String> = targets.iter().filter(|(_, v)| v.is_array()).map(|(p, _)| p).collect();
                        let pointer = seqs[pick as usize % seqs.len()];
                        if let Some(Value::Array(items)) = after.pointer_mut(pointer) {
                            items.push(value);
                        }
                    }
                    _ => {
                        let scalars: Vec<&String> = targets.iter().filter(|(_, v)| !v.is_object() && !v.is_array()).map(|(p, _)| p).collect();
                        let pointer = scalars[pick as usize % scalars.len()];
                        if let Some(slot) = after.pointer_mut(pointer) && !value.is_object() && !value.is_array() {
                            *slot = value;
                            only_additions = false;
                        }
                    }
                }
            }
            let out = minimal_edit(text, &before, &after, Style::detect(text));
            let out = out.expect("these changes are always written as edits");
            let back: Value = serde_saphyr::from_str(&out).unwrap();
            proptest::prop_assert_eq!(back, after);
            // Additions keep every line but those holding a flow collection they changed.
            let (_, lost) = line_changes(text, &out);
            if only_additions {
                proptest::prop_assert!(
                    lost.iter().all(|line| line.contains(['{', '['])),
                    "lines lost: {:?}\n{}", lost, out
                );
            }
            proptest::prop_assert!(out.lines().count() >= text.lines().count());
        }
    }
}
