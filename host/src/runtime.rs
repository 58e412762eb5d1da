//! The engine every module runs in, its limits, and the cache of compiled modules.

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::{Config, Engine, Linker, Module};

use crate::error::HostError;
use crate::module::PolicyModule;
use crate::wapc::{GuestState, add_wapc_imports};

/// How often the epoch advances; deadlines are counted in these ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Limits and caching for every module a runtime loads.
#[derive(Clone, Debug)]
pub struct HostConfig {
    /// How long one call may run before it is interrupted. Below the API server's
    /// webhook timeout (10 s at most) so the server can still answer in time.
    pub deadline: Duration,
    /// The most linear memory one instance may grow to.
    pub memory_limit: usize,
    /// Where precompiled modules are cached, keyed by module digest and engine; `None`
    /// compiles at every start.
    pub cache_dir: Option<PathBuf>,
    /// An instance is replaced after this many calls, so whatever a guest leaves behind in
    /// its memory cannot accumulate without bound.
    pub max_calls_per_instance: u64,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            deadline: Duration::from_secs(2),
            memory_limit: 64 * 1024 * 1024,
            cache_dir: None,
            max_calls_per_instance: 10_000,
        }
    }
}

/// Sets a [`Runtime`]'s limits one by one.
#[derive(Debug, Clone)]
pub struct RuntimeBuilder {
    config: HostConfig,
}

impl RuntimeBuilder {
    /// How long one call may run before it is interrupted.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.config.deadline = deadline;
        self
    }

    /// The most linear memory one instance may grow to, in bytes.
    pub fn memory_limit(mut self, bytes: usize) -> Self {
        self.config.memory_limit = bytes;
        self
    }

    /// Where compiled modules are cached between runs.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.cache_dir = Some(dir.into());
        self
    }

    /// How many calls an instance serves before it is replaced.
    pub fn max_calls_per_instance(mut self, calls: u64) -> Self {
        self.config.max_calls_per_instance = calls;
        self
    }

    /// Starts the engine.
    pub fn build(self) -> Result<Runtime, HostError> {
        Runtime::new(self.config)
    }
}

/// The engine every module runs in, with the thread that advances its epoch.
///
/// ```no_run
/// use std::time::Duration;
///
/// let runtime = podguard_host::Runtime::builder()
///     .deadline(Duration::from_secs(2))
///     .memory_limit(64 * 1024 * 1024)
///     .build()?;
/// let module = runtime.load("podguard", &std::fs::read("podguard_policy.wasm")?)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Runtime {
    engine: Engine,
    config: HostConfig,
    ticker: Arc<EpochTicker>,
}

/// Advances the engine's epoch so deadlines fire; stops when the last runtime or module
/// holding it is dropped.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    /// A runtime with the default limits, to adjust before [`RuntimeBuilder::build`].
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder {
            config: HostConfig::default(),
        }
    }

    /// Starts an engine configured for deadlines and memory caps.
    pub fn new(config: HostConfig) -> Result<Runtime, HostError> {
        let mut wasm_config = Config::new();
        wasm_config.epoch_interruption(true);
        let engine = Engine::new(&wasm_config).map_err(HostError::Engine)?;
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = Arc::new(EpochTicker {
            stop: Arc::clone(&stop),
        });
        let ticking_engine = engine.clone();
        thread::Builder::new()
            .name("wasm-epoch".to_owned())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    thread::sleep(EPOCH_TICK);
                    ticking_engine.increment_epoch();
                }
            })
            .map_err(HostError::EpochThread)?;
        Ok(Runtime {
            engine,
            config,
            ticker,
        })
    }

    /// Compiles (or loads precompiled) `bytes`, links the waPC and WASI imports and checks
    /// the exports. Settings are checked separately by [`PolicyModule::validate_settings`].
    pub fn load(&self, name: &str, bytes: &[u8]) -> Result<PolicyModule, HostError> {
        let digest = hex::encode(Sha256::digest(bytes));
        let module = self.compile(name, bytes, &digest)?;

        for (export, missing) in [("__guest_call", "__guest_call"), ("memory", "memory")] {
            if module.get_export(export).is_none() {
                return Err(HostError::NotWaPC {
                    name: name.to_owned(),
                    missing,
                });
            }
        }

        let mut linker: Linker<GuestState> = Linker::new(&self.engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |state: &mut GuestState| {
            &mut state.wasi
        })
        .map_err(HostError::Engine)?;
        add_wapc_imports(&mut linker).map_err(HostError::Engine)?;
        let pre = linker
            .instantiate_pre(&module)
            .map_err(|source| HostError::Link {
                name: name.to_owned(),
                source,
            })?;

        Ok(PolicyModule {
            name: name.to_owned(),
            digest,
            size: bytes.len(),
            pre,
            engine: self.engine.clone(),
            _ticker: Arc::clone(&self.ticker),
            config: self.config.clone(),
            idle: Mutex::new(Vec::new()),
            instance_restarts: AtomicU64::new(0),
        })
    }

    fn compile(&self, name: &str, bytes: &[u8], digest: &str) -> Result<Module, HostError> {
        let compile_error = |source: wasmtime::Error| HostError::Compile {
            name: name.to_owned(),
            source,
        };
        let Some(dir) = &self.config.cache_dir else {
            return Module::new(&self.engine, bytes).map_err(compile_error);
        };
        let mut hasher = DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        let path = dir.join(format!("{digest}-{:016x}.cwasm", hasher.finish()));
        if path.exists() {
            #[allow(
                unsafe_code,
                reason = "the file is one this host wrote with precompile_module, named by the module digest and the engine's compatibility hash"
            )]
            // SAFETY: wasmtime requires that the file was produced by a compatible engine's
            // `precompile_module`; the name encodes both the source digest and the
            // engine's compatibility hash, and only this function writes into the cache.
            let cached = unsafe { Module::deserialize_file(&self.engine, &path) };
            match cached {
                Ok(module) => return Ok(module),
                Err(err) => {
                    tracing::warn!(path = %path.display(), error = %format!("{err:#}"), "ignoring an unreadable cached module")
                }
            }
        }
        let module = Module::new(&self.engine, bytes).map_err(compile_error)?;
        let serialized = module.serialize().map_err(compile_error)?;
        write_atomically(dir, &path, &serialized)?;
        Ok(module)
    }
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), HostError> {
    let cache_error = |source| HostError::Cache {
        path: path.to_owned(),
        source,
    };
    fs::create_dir_all(dir).map_err(cache_error)?;
    // Unique per write, not only per process: two threads loading the same module into
    // one cache must not write the same temporary file.
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let tmp = path.with_extension(format!(
        "tmp{}-{}",
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    let mut file = fs::File::create(&tmp).map_err(cache_error)?;
    file.write_all(bytes).map_err(cache_error)?;
    file.sync_all().map_err(cache_error)?;
    fs::rename(&tmp, path).map_err(cache_error)
}
