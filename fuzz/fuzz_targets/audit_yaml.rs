//! Arbitrary text into `podguard audit`'s YAML reader. The reader splits streams by hand
//! (so a broken document is reported at its line and the rest is still audited) and turns
//! plain Kubernetes YAML into JSON without building a tree; both are shortcuts past
//! serde-saphyr, so each must agree with the slow path it replaces:
//!
//! 1. the segments of `split` cover the input exactly, in order, and `StreamSplitter`
//!    (what reads files and stdin) yields the very same segments and texts;
//! 2. a document `transcode` accepts is valid JSON equal to what serde-saphyr reads from
//!    the same text, and the field lines it records are the ones `LineIndex::build` finds;
//! 3. what `--fix` writes (`emit`) reads back as the same value, whatever the style;
//! 4. `--fix`'s minimal edits read back as exactly the change, or are declined.

#![no_main]

use libfuzzer_sys::fuzz_target;
use podguard_audit::yaml::{
    LineIndex, StreamSplitter, Style, emit, minimal_edit, split, transcode_with_lines,
};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.starts_with('\u{feff}') {
        // The stream reader drops a byte-order mark; `split` is given text without one.
        return;
    }

    let segments = split(text);
    let mut end = 0;
    for segment in &segments {
        assert_eq!(segment.range.start, end, "segments leave a gap or overlap");
        end = segment.range.end;
    }
    assert_eq!(
        end,
        text.len(),
        "segments do not reach the end of the input"
    );

    let streamed: Vec<_> = StreamSplitter::new(text.as_bytes())
        .map(|segment| segment.expect("reading from memory cannot fail"))
        .collect();
    assert_eq!(
        streamed.len(),
        segments.len(),
        "the stream reader splits differently"
    );
    for (owned, segment) in streamed.iter().zip(&segments) {
        assert_eq!(&owned.segment, segment);
        assert_eq!(owned.text, text[segment.range.clone()]);
    }

    for segment in &segments {
        let document = &text[segment.range.clone()];
        let mut json = Vec::new();
        let mut lines = LineIndex::default();
        let Ok(Some(_)) =
            transcode_with_lines(document, segment.first_line, &mut json, Some(&mut lines))
        else {
            continue;
        };
        let fast: Value = serde_json::from_slice(&json).unwrap_or_else(|err| {
            panic!(
                "transcode wrote invalid JSON ({err}): {}",
                String::from_utf8_lossy(&json)
            )
        });
        let slow: Value = serde_saphyr::from_str(document).unwrap_or_else(|err| {
            panic!("transcode accepted a document serde-saphyr refuses ({err}):\n{document}")
        });
        assert_eq!(
            fast, slow,
            "transcode and serde-saphyr disagree on:\n{document}"
        );
        assert_eq!(
            lines,
            LineIndex::build(document, segment.first_line),
            "transcode and LineIndex::build put fields on different lines in:\n{document}"
        );

        for style in [Style::default(), Style::detect(document)] {
            let written = emit(&fast, style);
            let read: Value = serde_saphyr::from_str(&written).unwrap_or_else(|err| {
                panic!("emit wrote YAML that does not parse ({err}):\n{written}")
            });
            assert_eq!(read, fast, "emit changed the value; it wrote:\n{written}");
        }

        // `--fix`'s minimal edits: a key added to every mapping and an item to every
        // sequence either reads back as exactly that change or is declined, never a panic
        // or a wrong file.
        let mut changed = fast.clone();
        add_everywhere(&mut changed);
        if let Some(edited) = minimal_edit(document, &fast, &changed, Style::detect(document)) {
            let read: Value = serde_saphyr::from_str(&edited)
                .unwrap_or_else(|err| panic!("minimal_edit wrote YAML that does not parse ({err}):\n{edited}"));
            assert_eq!(read, changed, "minimal_edit changed something else; it wrote:\n{edited}");
        }
    }
});

fn add_everywhere(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.values_mut().for_each(add_everywhere);
            map.insert("podguard.io/fuzz".to_owned(), serde_json::json!({"added": [1, "two"]}));
        }
        Value::Array(items) => {
            items.iter_mut().for_each(add_everywhere);
            items.push(serde_json::json!({"added": true}));
        }
        _ => {}
    }
}
