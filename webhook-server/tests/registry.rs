//! `push` and `pull` against a real OCI registry: Debian's `docker-registry` (the CNCF
//! distribution registry) started on loopback with a throwaway configuration, with and
//! without htpasswd authentication.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use podguard_conformance::policy_module;
use podguard_server::publish::annotate::{self, read_metadata};
use podguard_server::publish::oci::{self, RegistryOptions};

struct Registry {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts a registry; with `credentials`, it requires them (htpasswd, bcrypt).
fn start_registry(credentials: Option<(&str, &str)>) -> Registry {
    let binary = which("docker-registry");
    let dir = tempfile::tempdir().unwrap();
    let address = format!("127.0.0.1:{}", free_port());
    let mut config = format!(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {address}\n",
        dir.path().join("data").display()
    );
    if let Some((user, password)) = credentials {
        let htpasswd = Command::new(which("htpasswd"))
            .args(["-Bbn", user, password])
            .output()
            .unwrap();
        assert!(htpasswd.status.success(), "htpasswd failed");
        std::fs::write(dir.path().join("htpasswd"), htpasswd.stdout).unwrap();
        config.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: podguard-test\n    path: {}\n",
            dir.path().join("htpasswd").display()
        ));
    }
    let config_path = dir.path().join("config.yml");
    std::fs::write(&config_path, config).unwrap();
    let child = Command::new(binary)
        .arg("serve")
        .arg(&config_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker-registry starts");
    let registry = Registry {
        child,
        address,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&registry.address).is_err() {
        assert!(
            Instant::now() < deadline,
            "the registry did not start listening on {}",
            registry.address
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    registry
}

/// A required tool, found on PATH; the test fails (never skips) without it.
fn which(tool: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(tool))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!("{tool} is not installed; scripts/test installs it (apt-get install docker-registry apache2-utils)")
        })
}

fn annotated_module(dir: &Path) -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let bytes = annotate::annotate(
        policy_module(),
        Some(&repo.join("policy/metadata.yml")),
        Some(&repo.join("README.md")),
    )
    .expect("the module annotates");
    let path = dir.join("annotated.wasm");
    std::fs::write(&path, bytes).unwrap();
    path
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn manifest(
    address: &str,
    repository: &str,
    tag: &str,
    auth: Option<(&str, &str)>,
) -> serde_json::Value {
    // Ask the registry itself, over its HTTP API, so the check does not trust the client.
    let mut command = Command::new(which("curl"));
    command.args([
        "-sSf",
        "-H",
        "Accept: application/vnd.oci.image.manifest.v1+json",
    ]);
    if let Some((user, password)) = auth {
        command.args(["-u", &format!("{user}:{password}")]);
    }
    let output = command
        .arg(format!("http://{address}/v2/{repository}/manifests/{tag}"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "GET manifest failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn check_artifact(manifest: &serde_json::Value, module: &[u8]) {
    assert_eq!(
        manifest["config"]["mediaType"], "application/vnd.wasm.config.v1+json",
        "{manifest}"
    );
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.wasm.content.layer.v1+wasm"
    );
    assert_eq!(layers[0]["size"], module.len());
    let annotations = &manifest["annotations"];
    assert_eq!(annotations["io.kubewarden.policy.title"], "podguard");
    assert_eq!(
        annotations["io.kubewarden.policy.version"],
        podguard_policy::VERSION
    );
    assert!(
        annotations.get(annotate::USAGE_ANNOTATION).is_none(),
        "multi-line annotations are left out"
    );
}

#[test]
fn push_and_pull_round_trip_through_a_real_registry() {
    let work = tempfile::tempdir().unwrap();
    let module_path = annotated_module(work.path());
    let module = std::fs::read(&module_path).unwrap();
    let registry = start_registry(None);
    let reference = format!(
        "{}/policies/podguard:v{}",
        registry.address,
        podguard_policy::VERSION
    );
    let options = RegistryOptions::default();
    runtime().block_on(async {
        let digest = oci::push(&module_path, &reference, &options)
            .await
            .expect("push to a loopback registry");
        assert!(digest.starts_with("sha256:"), "{digest}");
        let pulled = oci::pull(&format!("registry://{reference}"), &options)
            .await
            .expect("pull");
        assert_eq!(
            pulled.module, module,
            "the pulled bytes are the pushed module"
        );
        assert_eq!(pulled.digest, digest);
        assert_eq!(
            read_metadata(&pulled.module).unwrap(),
            read_metadata(&module).unwrap()
        );
        let manifest = manifest(
            &registry.address,
            "policies/podguard",
            &format!("v{}", podguard_policy::VERSION),
            None,
        )
        .await;
        check_artifact(&manifest, &module);
    });
}

#[test]
fn an_unannotated_module_is_refused() {
    let registry = start_registry(None);
    let reference = format!("{}/policies/raw:latest", registry.address);
    let error = runtime()
        .block_on(oci::push(
            policy_module(),
            &reference,
            &RegistryOptions::default(),
        ))
        .unwrap_err();
    assert!(
        format!("{error:#}").contains("podguard annotate"),
        "{error:#}"
    );
}

#[test]
fn credentials_come_from_the_docker_config() {
    let work = tempfile::tempdir().unwrap();
    let module_path = annotated_module(work.path());
    let registry = start_registry(Some(("ci", "s3cret-pass")));
    let reference = format!(
        "{}/policies/podguard:v{}",
        registry.address,
        podguard_policy::VERSION
    );
    runtime().block_on(async {
        let anonymous = RegistryOptions {
            docker_config: Some(work.path().join("missing.json")),
            ..RegistryOptions::default()
        };
        let refused = oci::push(&module_path, &reference, &anonymous).await;
        assert!(
            refused.is_err(),
            "an anonymous push to an htpasswd registry must fail"
        );

        let config = work.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("ci:s3cret-pass");
        std::fs::write(
            &config,
            format!(
                r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#,
                registry.address
            ),
        )
        .unwrap();
        let authenticated = RegistryOptions {
            docker_config: Some(config),
            ..RegistryOptions::default()
        };
        oci::push(&module_path, &reference, &authenticated)
            .await
            .expect("an authenticated push");
        let pulled = oci::pull(&reference, &authenticated)
            .await
            .expect("an authenticated pull");
        assert_eq!(pulled.module, std::fs::read(&module_path).unwrap());
        let manifest = manifest(
            &registry.address,
            "policies/podguard",
            &format!("v{}", podguard_policy::VERSION),
            Some(("ci", "s3cret-pass")),
        )
        .await;
        check_artifact(&manifest, &pulled.module);
    });
}

/// A credential helper script, as `docker-credential-<name>` on PATH: it answers the
/// test registry's credentials for `address`, "credentials not found" for any other, and
/// logs each server it was asked about.
fn credential_helper(dir: &Path, name: &str, address: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join(format!("docker-credential-{name}"));
    let log = dir.join("helper.log");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 2\nread -r server\necho \"$server\" >> {log}\ncase \"$server\" in\n  {address}) printf '{{\"ServerURL\":\"%s\",\"Username\":\"ci\",\"Secret\":\"s3cret-pass\"}}' \"$server\" ;;\n  *) echo 'credentials not found in native keychain'; exit 1 ;;\nesac\n",
            log = log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

/// PATH with `bin` first, where the credential helper script is.
fn path_with(bin: &Path) -> std::ffi::OsString {
    std::env::join_paths(std::iter::once(bin.to_owned()).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap()
}

/// `podguard ARGS` with `bin` first on PATH and no podguard variables.
fn podguard(bin: &Path, args: &[&str]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_podguard"));
    command.args(args).env("PATH", path_with(bin));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PODGUARD_") || key == "DOCKER_CONFIG" {
            command.env_remove(key);
        }
    }
    command.output().unwrap()
}

/// Docker Desktop, gcloud and ECR keep credentials in helpers: `push` asks the helper
/// `credHelpers` (or `credsStore`) names, and a module in that registry serves as
/// `--policy registry://...` for eval and audit, pulled once and then read from the cache
/// by digest, even with the registry gone.
#[test]
fn credential_helpers_reach_an_htpasswd_registry_and_registry_modules_run() {
    let work = tempfile::tempdir().unwrap();
    let module_path = annotated_module(work.path());
    let registry = start_registry(Some(("ci", "s3cret-pass")));
    let bin = credential_helper(work.path(), "podguard-test", &registry.address);
    let reference = format!("{}/policies/podguard:v1", registry.address);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let review = repo.join("tests/fixtures/pod-noncompliant/review.json");
    let review = review.to_str().unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();

    let helpers = work.path().join("helpers.json");
    std::fs::write(
        &helpers,
        format!(
            r#"{{"auths":{{"{0}":{{}}}},"credHelpers":{{"{0}":"podguard-test"}}}}"#,
            registry.address
        ),
    )
    .unwrap();
    let pushed = podguard(
        &bin,
        &[
            "push",
            module_path.to_str().unwrap(),
            &reference,
            "--docker-config",
            helpers.to_str().unwrap(),
        ],
    );
    assert!(pushed.status.success(), "{}", text(&pushed.stderr));
    let pinned = text(&pushed.stdout).trim().to_owned();
    assert!(
        pinned.starts_with(&format!("{reference}@sha256:")),
        "{pinned}"
    );
    let asked = std::fs::read_to_string(work.path().join("helper.log")).unwrap();
    assert!(
        asked.lines().any(|server| server == registry.address),
        "{asked}"
    );

    // credsStore, the one helper for every registry, with a cache of pulled modules.
    let store = work.path().join("store.json");
    std::fs::write(&store, r#"{"credsStore":"podguard-test"}"#).unwrap();
    let cache = work.path().join("cache");
    let eval = |policy: &str| {
        podguard(
            &bin,
            &[
                "eval",
                "--policy",
                policy,
                "--docker-config",
                store.to_str().unwrap(),
                "--cache-dir",
                cache.to_str().unwrap(),
                review,
            ],
        )
    };
    let by_tag = eval(&format!("registry://{reference}"));
    assert_eq!(
        by_tag.status.code(),
        Some(1),
        "denied: {}",
        text(&by_tag.stderr)
    );
    let builtin = podguard(
        &bin,
        &["eval", "--cache-dir", cache.to_str().unwrap(), review],
    );
    let answer = |output: &std::process::Output| -> serde_json::Value {
        let mut review: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        review["response"]["uid"].take();
        review
    };
    assert_eq!(
        answer(&by_tag),
        answer(&builtin),
        "the pulled module answers as the built-in one"
    );
    let cached: Vec<_> = std::fs::read_dir(cache.join("modules")).unwrap().collect();
    assert_eq!(cached.len(), 1, "the pulled module is cached once");

    let audit = podguard(
        &bin,
        &[
            "audit",
            "--policy",
            &format!("registry://{reference}"),
            "--docker-config",
            store.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
            "--no-progress",
            repo.join("tests/audit-fixtures/exit/compliant.yaml")
                .to_str()
                .unwrap(),
        ],
    );
    assert_eq!(audit.status.code(), Some(0), "{}", text(&audit.stderr));

    // serve pulls it at start, and turns ready once it answered its warm-up.
    let port = free_port().to_string();
    let mut server = Command::new(env!("CARGO_BIN_EXE_podguard"))
        .args([
            "serve",
            "--insecure",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--policy",
            &format!("registry://{reference}"),
            "--docker-config",
            store.to_str().unwrap(),
        ])
        .env("PATH", path_with(&bin))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let curl = |args: &[&str]| {
        Command::new(which("curl"))
            .args(["-sS", "--max-time", "5"])
            .args(args)
            .output()
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !curl(&["-f", &format!("http://127.0.0.1:{port}/readyz")])
        .status
        .success()
    {
        assert!(
            Instant::now() < deadline,
            "serve with a registry module did not turn ready"
        );
        assert!(
            server.try_wait().unwrap().is_none(),
            "serve with a registry module exited"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let served = curl(&[
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        &format!("@{review}"),
        &format!("http://127.0.0.1:{port}/validate"),
    ]);
    let _ = server.kill();
    let _ = server.wait();
    let served: serde_json::Value = serde_json::from_slice(&served.stdout).unwrap();
    assert_eq!(served["response"]["allowed"], false, "{served}");

    drop(registry);
    let offline = eval(&format!("registry://{pinned}"));
    assert_eq!(
        offline.status.code(),
        Some(1),
        "a digest is read from the cache: {}",
        text(&offline.stderr)
    );
    let gone = eval(&format!("registry://{reference}"));
    assert_eq!(gone.status.code(), Some(2));
    assert!(
        text(&gone.stderr).contains(&format!("while reading the digest of {reference}")),
        "{}",
        text(&gone.stderr)
    );
}

/// A helper that is not installed is named, not skipped into an anonymous 401.
#[test]
fn a_missing_credential_helper_is_named() {
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("config.json");
    std::fs::write(&config, r#"{"credHelpers":{"127.0.0.1:9":"absent"}}"#).unwrap();
    let module_path = annotated_module(work.path());
    let failed = podguard(
        work.path(),
        &[
            "push",
            module_path.to_str().unwrap(),
            "127.0.0.1:9/p:v1",
            "--docker-config",
            config.to_str().unwrap(),
        ],
    );
    assert_eq!(failed.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("docker-credential-absent") && stderr.contains("could not be run"),
        "{stderr}"
    );
}
