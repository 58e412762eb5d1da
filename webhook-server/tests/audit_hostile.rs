//! `podguard audit` on hostile trees, as a pull request's checkout in CI can be: links to
//! devices and FIFOs, link loops, links out of the tree, inputs with no end, and nothing
//! at all. Each run must end quickly, with exit 2 and the cause, and never write outside
//! the tree.

mod audit_support;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use audit_support::{Run, audit, audit_stdin, cache_dir, module, spawn, workloads};

/// A Pod that breaks the default checks.
const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  containers:\n  - name: app\n    image: nginx:1.27\n";

/// Runs `podguard audit ARGS` in `dir`, failing the test if it takes longer than `limit`;
/// returns the run and the peak resident memory seen (KiB).
fn audit_within(dir: &Path, args: &[&str], limit: Duration) -> (Run, u64) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_podguard"));
    command
        .arg("audit")
        .arg("--policy")
        .arg(module())
        .arg("--cache-dir")
        .arg(cache_dir())
        .arg("--no-progress")
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = spawn(&mut command);
    // Both pipes are drained while the run goes on: a report larger than the pipe's
    // buffer would otherwise stall the child.
    let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let mut peak = 0;
    loop {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
            && let Some(hwm) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
        {
            peak = peak.max(hwm);
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`podguard audit {}` ran longer than {limit:?}; stderr so far:\n{}",
                args.join(" "),
                stderr.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let status = child.wait().unwrap();
    let run = Run {
        code: status.code().unwrap_or(-1),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
        command: format!("podguard audit {}", args.join(" ")),
    };
    (run, peak)
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success());
}

#[test]
fn devices_fifos_and_dangling_links_in_a_tree_are_errors_not_hangs() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("manifests");
    std::fs::create_dir(&tree).unwrap();
    std::fs::write(tree.join("pod.yaml"), POD).unwrap();
    symlink("/dev/zero", tree.join("zero.yaml")).unwrap();
    mkfifo(&tree.join("fifo.yaml"));
    symlink(tree.join("missing.yaml"), tree.join("dangling.yaml")).unwrap();

    let (run, peak) = audit_within(dir.path(), &["manifests"], Duration::from_secs(30));
    run.expect_code(2)
        .stderr_has("manifests/zero.yaml: it is a device, not a manifest file")
        .stderr_has("manifests/fifo.yaml: it is a FIFO, not a manifest file")
        .stderr_has("manifests/dangling.yaml: it is a symbolic link that leads nowhere");
    // The readable file was still audited.
    run.stdout_has("Pod shop/web");
    assert!(peak < 200 * 1024, "peak RSS {peak} KiB");
}

#[test]
fn inputs_with_no_end_stop_at_the_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    // Named on the command line, a device is read as a stream, up to the limit.
    let (run, peak) = audit_within(
        dir.path(),
        &["/dev/zero", "--max-input-bytes", "5000000"],
        Duration::from_secs(30),
    );
    run.expect_code(2)
        .stderr_has("/dev/zero: it is larger than 5000000 bytes (--max-input-bytes)");
    assert!(peak < 200 * 1024, "peak RSS {peak} KiB");

    // A generator on stdin: the same.
    let mut command = Command::new(env!("CARGO_BIN_EXE_podguard"));
    command
        .args([
            "audit",
            "-",
            "--max-input-bytes",
            "1000000",
            "--no-progress",
        ])
        .arg("--policy")
        .arg(module())
        .arg("--cache-dir")
        .arg(cache_dir())
        .stdin(std::fs::File::open("/dev/zero").unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let output = spawn(&mut command).wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("<stdin>: it is larger than 1000000 bytes"),
        "{stderr}"
    );

    // eval reads one review, never an endless one.
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_podguard"))
        .args(["eval", "--policy"])
        .arg(module())
        .arg("--cache-dir")
        .arg(cache_dir())
        .arg("/dev/zero")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("/dev/zero holds more than 67108864 bytes"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn link_loops_are_not_followed_and_nothing_is_audited_twice() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("sub/pod.yaml"), POD).unwrap();
    symlink(".", tree.join("a")).unwrap();
    symlink(".", tree.join("b")).unwrap();
    symlink("..", tree.join("sub/up")).unwrap();

    let (run, _) = audit_within(dir.path(), &["tree", "-o", "json"], Duration::from_secs(30));
    run.expect_code(1);
    let report = run.json();
    let audited = workloads(&report);
    assert_eq!(audited.len(), 1, "the Pod is audited once: {audited:?}");
}

#[test]
fn fix_never_writes_through_a_link_or_outside_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("pod.yaml"), POD).unwrap();
    // A directory link out of the tree, and a file link out of it.
    symlink(&outside, tree.join("elsewhere")).unwrap();
    symlink(outside.join("pod.yaml"), tree.join("linked.yaml")).unwrap();
    std::fs::write(tree.join("own.yaml"), POD).unwrap();
    let settings = dir.path().join("settings.yaml");
    std::fs::write(
        &settings,
        "checks:\n  run-as-non-root: {mode: mutate}\n  drop-capabilities: {mode: mutate}\n  resource-limits: {mode: mutate}\n  prometheus-annotations: {mode: \"off\"}\n  no-privilege-escalation: {mode: mutate}\n",
    )
    .unwrap();

    let (run, _) = audit_within(
        dir.path(),
        &["tree", "--fix", "--settings", settings.to_str().unwrap()],
        Duration::from_secs(60),
    );
    run.expect_code(2).stderr_has(
        "tree/linked.yaml: cannot write the fixes: it is a symbolic link, and --fix does not write through links",
    );
    assert_eq!(
        std::fs::read_to_string(outside.join("pod.yaml")).unwrap(),
        POD,
        "the file outside the tree is untouched"
    );
    assert!(
        std::fs::symlink_metadata(tree.join("linked.yaml"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link is still a link"
    );
    let fixed = std::fs::read_to_string(tree.join("own.yaml")).unwrap();
    assert_ne!(fixed, POD, "the tree's own file is fixed");
    assert!(fixed.contains("runAsNonRoot: true"), "{fixed}");
    // No temporary file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&tree)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn reading_nothing_is_an_error() {
    audit_stdin(&["-"], b"")
        .expect_code(2)
        .stderr_has("<stdin>: stdin was empty: nothing was audited");
    audit_stdin(&["-"], b"\n# only a comment\n---\n")
        .expect_code(2)
        .stderr_has("stdin was empty");
    // stdin closed (no pipe at all).
    audit(&["-"]).expect_code(2).stderr_has("stdin was empty");
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.yaml");
    std::fs::write(&empty, "").unwrap();
    audit(&[empty.to_str().unwrap()])
        .expect_code(2)
        .stderr_has("it holds no YAML or JSON document");
}

/// A `kind: List` of twelve thousand Pods, as `kubectl get pods -A -o yaml` prints it, is
/// read item by item: its memory is about that of the same Pods as separate documents,
/// not that of the whole list's tree.
#[test]
fn a_large_yaml_list_is_judged_item_by_item() {
    let dir = tempfile::tempdir().unwrap();
    let pods = 12_000;
    let item = |i: usize| {
        format!(
            "- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: web-{i}\n    namespace: shop\n    labels:\n      app: web\n  spec:\n    containers:\n    - name: app\n      image: nginx:1.27\n      args:\n      - --listen=:8080\n      - --log-level=info\n      env:\n      - name: MODE\n        value: production\n"
        )
    };
    let mut list = String::from("apiVersion: v1\nitems:\n");
    let mut documents = String::new();
    for i in 0..pods {
        let item = item(i);
        list.push_str(&item);
        documents.push_str("---\n");
        for line in item.lines() {
            documents.push_str(line.get(2..).unwrap_or(""));
            documents.push('\n');
        }
    }
    list.push_str("kind: List\nmetadata:\n  resourceVersion: \"\"\n");
    std::fs::write(dir.path().join("list.yaml"), &list).unwrap();
    std::fs::write(dir.path().join("documents.yaml"), &documents).unwrap();

    let (as_list, list_peak) = audit_within(
        dir.path(),
        &["list.yaml", "-o", "json"],
        Duration::from_secs(120),
    );
    let (as_documents, documents_peak) = audit_within(
        dir.path(),
        &["documents.yaml", "-o", "json"],
        Duration::from_secs(120),
    );
    as_list.expect_code(1);
    as_documents.expect_code(1);
    let listed = workloads(&as_list.json());
    assert_eq!(listed.len(), pods);
    assert_eq!(listed.len(), workloads(&as_documents.json()).len());
    // Item lines map back to the file: the third Pod starts on line 3 + 2 * 17.
    let third = &as_list.json()["workloads"][2];
    assert_eq!(third["source"]["line"], 3 + 2 * 17, "{third}");
    let extra = list_peak.saturating_sub(documents_peak);
    let text_kib = list.len() as u64 / 1024;
    eprintln!(
        "figures: a {text_kib} KiB kind: List of {pods} Pods: peak {list_peak} KiB; as documents {documents_peak} KiB"
    );
    // Parsed whole, the list took 26 times its text more than the documents did.
    assert!(
        extra < 3 * text_kib + 4096,
        "the list took {list_peak} KiB, the same Pods as documents {documents_peak} KiB: {extra} KiB more for {text_kib} KiB of text"
    );
}
