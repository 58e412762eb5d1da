//! The loopback server: files below its root with the right types, nothing outside it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;

use podguard_playground::{content_type, resolve, serve};

fn get(addr: &str, request: &str) -> (String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    (
        String::from_utf8(answer[..split].to_vec()).unwrap(),
        answer[split + 4..].to_vec(),
    )
}

#[test]
fn serves_the_page_and_the_module_with_their_types() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("index.html"), "<!doctype html>").unwrap();
    std::fs::create_dir(root.path().join("pkg")).unwrap();
    std::fs::write(root.path().join("pkg/p_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let dir = root.path().to_path_buf();
    std::thread::spawn(move || serve(listener, dir));

    let (head, body) = get(&addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(
        head.contains("Content-Type: text/html; charset=utf-8"),
        "{head}"
    );
    assert_eq!(body, b"<!doctype html>");

    // WebAssembly.instantiateStreaming refuses a module served as anything else.
    let (head, body) = get(&addr, "GET /pkg/p_bg.wasm?v=1 HTTP/1.1\r\n\r\n");
    assert!(head.contains("Content-Type: application/wasm"), "{head}");
    assert!(head.contains("Cache-Control: no-store"), "{head}");
    assert_eq!(body, b"\0asm\x01\0\0\0");

    let (head, body) = get(&addr, "HEAD /index.html HTTP/1.1\r\n\r\n");
    assert!(head.contains("Content-Length: 15"), "{head}");
    assert!(body.is_empty());

    for (request, status) in [
        ("GET /missing.js HTTP/1.1\r\n\r\n", "404"),
        ("GET /../Cargo.toml HTTP/1.1\r\n\r\n", "400"),
        ("GET /%2e%2e/Cargo.toml HTTP/1.1\r\n\r\n", "400"),
        ("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "405"),
    ] {
        let (head, _) = get(&addr, request);
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status}")),
            "{request:?}: {head}"
        );
    }
}

#[test]
fn paths_stay_below_the_root() {
    let root = Path::new("/srv/site");
    assert_eq!(resolve(root, "/pkg/a.js?x#y"), Some(root.join("pkg/a.js")));
    assert_eq!(resolve(root, "/a%20b.css"), Some(root.join("a b.css")));
    for escape in [
        "/../etc/passwd",
        "/pkg/../../x",
        "/%2E%2E/x",
        "/a%zz",
        "//etc/passwd/..",
    ] {
        assert_eq!(resolve(root, escape), None, "{escape}");
    }
    assert_eq!(content_type(Path::new("x.wasm")), "application/wasm");
    assert_eq!(
        content_type(Path::new("app.js")),
        "text/javascript; charset=utf-8"
    );
}
