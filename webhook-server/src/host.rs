//! The Wasm host: runs waPC policy modules, Kubewarden's protocol, under wasmtime.
//!
//! One [`Runtime`] (one wasmtime `Engine` and its epoch ticker) serves every module. A
//! module is compiled once (or loaded from the on-disk cache of precompiled artifacts) and
//! instantiated through an `InstancePre`; instances are pooled and reused across calls but
//! never shared by two calls at once. Every call runs under an epoch deadline and a memory
//! cap; an instance that trapped, timed out or hit the cap is discarded, never reused.

use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::{
    Caller, Config, Engine, Extern, InstancePre, Linker, Memory, Module, ResourceLimiter, Store,
    Trap, TypedFunc,
};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;

/// How often the epoch advances; deadlines are counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(5);

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

/// Why a module could not be loaded. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// wasmtime could not set up its engine.
    #[error("cannot start the Wasm engine: {0}")]
    Engine(String),
    /// The bytes are not a valid Wasm module.
    #[error(
        "policy {name}: not a loadable Wasm module ({reason}); pass a module built for wasm32-wasip1"
    )]
    Compile {
        /// The policy's name.
        name: String,
        /// What wasmtime said.
        reason: String,
    },
    /// The module does not speak waPC.
    #[error(
        "policy {name}: the module does not export {missing}, so it is not a waPC (Kubewarden) policy"
    )]
    NotWaPC {
        /// The policy's name.
        name: String,
        /// The missing export.
        missing: &'static str,
    },
    /// The module imports something this host does not provide.
    #[error("policy {name}: cannot instantiate the module: {reason}")]
    Link {
        /// The policy's name.
        name: String,
        /// What is missing.
        reason: String,
    },
    /// The policy's own `validate_settings` refused the settings.
    #[error("policy {name}: the policy refused its settings: {message}")]
    SettingsRefused {
        /// The policy's name.
        name: String,
        /// The policy's message.
        message: String,
    },
    /// Calling the module during loading failed.
    #[error("policy {name}: {operation} failed while loading: {source}")]
    Call {
        /// The policy's name.
        name: String,
        /// The waPC operation.
        operation: &'static str,
        /// What went wrong.
        #[source]
        source: CallError,
    },
    /// The precompiled-module cache could not be used.
    #[error("cannot use the module cache at {}: {source}; fix its permissions or drop --cache-dir", path.display())]
    Cache {
        /// The cache file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Why one call did not produce an answer. The request is then answered by the
/// configured failure mode; the instance that failed is discarded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The call ran past its deadline and was interrupted.
    #[error("the policy ran longer than its {0:?} deadline and was stopped")]
    Deadline(Duration),
    /// The guest tried to grow its memory past the cap.
    #[error("the policy tried to use more than {} MiB of memory and was stopped", .0 / (1024 * 1024))]
    MemoryCap(usize),
    /// The guest trapped (a panic, an out-of-bounds access, `unreachable`).
    #[error("the policy crashed: {0}")]
    Trap(String),
    /// The guest reported an error through waPC.
    #[error("the policy returned an error: {0}")]
    Guest(String),
    /// The guest broke the waPC protocol.
    #[error("the policy broke the waPC protocol: {0}")]
    Protocol(String),
    /// A fresh instance could not be created.
    #[error("the policy could not be instantiated: {0}")]
    Instantiate(String),
}

/// The engine every module runs in, with the thread that advances its epoch.
pub struct Runtime {
    engine: Engine,
    config: HostConfig,
    ticker: Arc<EpochTicker>,
}

/// Advances the engine's epoch so deadlines fire; stops when the last runtime or module
/// holding it is dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    /// Starts an engine configured for deadlines and memory caps.
    pub fn new(config: HostConfig) -> Result<Runtime, HostError> {
        let mut wasm_config = Config::new();
        wasm_config.epoch_interruption(true);
        let engine = Engine::new(&wasm_config).map_err(|e| HostError::Engine(format!("{e:#}")))?;
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
            .map_err(|e| HostError::Engine(format!("cannot start the epoch thread: {e}")))?;
        Ok(Runtime {
            engine,
            config,
            ticker,
        })
    }

    /// The limits this runtime applies.
    pub fn config(&self) -> &HostConfig {
        &self.config
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
        .map_err(|e| HostError::Engine(format!("{e:#}")))?;
        add_wapc_imports(&mut linker).map_err(|e| HostError::Engine(format!("{e:#}")))?;
        let pre = linker
            .instantiate_pre(&module)
            .map_err(|e| HostError::Link {
                name: name.to_owned(),
                reason: format!("{e:#}"),
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
        let compile_error = |e: wasmtime::Error| HostError::Compile {
            name: name.to_owned(),
            reason: format!("{e:#}"),
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
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = fs::File::create(&tmp).map_err(cache_error)?;
    file.write_all(bytes).map_err(cache_error)?;
    file.sync_all().map_err(cache_error)?;
    fs::rename(&tmp, path).map_err(cache_error)
}

/// A loaded policy module and its pool of idle instances.
pub struct PolicyModule {
    name: String,
    digest: String,
    size: usize,
    pre: InstancePre<GuestState>,
    engine: Engine,
    _ticker: Arc<EpochTicker>,
    config: HostConfig,
    idle: Mutex<Vec<Instance>>,
    instance_restarts: AtomicU64,
}

impl fmt::Debug for PolicyModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyModule")
            .field("name", &self.name)
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

impl PolicyModule {
    /// The name it was loaded under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// sha256 of the module bytes, hex.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Size of the module in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// How many instances were discarded after a failed call.
    pub fn instance_restarts(&self) -> u64 {
        self.instance_restarts.load(Ordering::Relaxed)
    }

    /// Calls a waPC operation on an idle instance (or a new one).
    pub fn call(&self, operation: &str, payload: &[u8]) -> Result<Vec<u8>, CallError> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut instance = match idle {
            Some(instance) => instance,
            None => self.instantiate()?,
        };
        let result = instance.call(operation, payload, &self.config);
        let healthy = result.is_ok()
            || matches!(
                result,
                Err(CallError::Guest(_)) | Err(CallError::Protocol(_))
            );
        // A guest's memory never shrinks: replace instances that grew large or served many
        // calls, so whatever a guest leaves behind cannot accumulate.
        let worn = instance.calls >= self.config.max_calls_per_instance
            || instance.memory.data_size(&instance.store) > self.config.memory_limit / 2;
        if healthy && !worn {
            self.idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(instance);
        } else if !healthy {
            self.instance_restarts.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// Runs the module's `validate_settings` on `settings` (JSON); a refusal carries the
    /// policy's own message.
    pub fn validate_settings(&self, settings: &[u8]) -> Result<(), HostError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            valid: bool,
            #[serde(default)]
            message: Option<String>,
        }
        let bytes = self
            .call("validate_settings", settings)
            .map_err(|source| HostError::Call {
                name: self.name.clone(),
                operation: "validate_settings",
                source,
            })?;
        let answer: Answer = serde_json::from_slice(&bytes).map_err(|e| HostError::Call {
            name: self.name.clone(),
            operation: "validate_settings",
            source: CallError::Protocol(format!("the answer is not {{valid, message}}: {e}")),
        })?;
        if answer.valid {
            Ok(())
        } else {
            Err(HostError::SettingsRefused {
                name: self.name.clone(),
                message: answer.message.unwrap_or_else(|| "(no message)".to_owned()),
            })
        }
    }

    fn instantiate(&self) -> Result<Instance, CallError> {
        let wasi = WasiCtxBuilder::new().build_p1();
        let state = GuestState {
            wasi,
            limiter: MemoryCap {
                limit: self.config.memory_limit,
                hit: false,
            },
            exchange: Exchange::default(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(deadline_ticks(self.config.deadline));
        let instance = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| classify(e, &store, &self.config))?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| CallError::Protocol("the module exports no memory".to_owned()))?;
        let guest_call = instance
            .get_typed_func::<(i32, i32), i32>(&mut store, "__guest_call")
            .map_err(|e| {
                CallError::Protocol(format!("__guest_call has the wrong signature: {e}"))
            })?;
        // Reactor modules initialise their runtime in `_initialize`, commands in `_start`;
        // then `wapc_init` registers the operations.
        for init in ["_initialize", "_start", "wapc_init"] {
            if let Ok(func) = instance.get_typed_func::<(), ()>(&mut store, init) {
                store.set_epoch_deadline(deadline_ticks(self.config.deadline));
                if let Err(err) = func.call(&mut store, ()) {
                    let exited_cleanly = err
                        .downcast_ref::<wasmtime_wasi::I32Exit>()
                        .is_some_and(|exit| exit.0 == 0);
                    if !exited_cleanly {
                        return Err(classify(err, &store, &self.config));
                    }
                }
            }
        }
        Ok(Instance {
            store,
            guest_call,
            memory,
            calls: 0,
        })
    }
}

fn deadline_ticks(deadline: Duration) -> u64 {
    (deadline.as_micros() / EPOCH_TICK.as_micros()).max(1) as u64 + 1
}

fn classify(err: wasmtime::Error, store: &Store<GuestState>, config: &HostConfig) -> CallError {
    if store.data().limiter.hit {
        return CallError::MemoryCap(config.memory_limit);
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => CallError::Deadline(config.deadline),
        _ => CallError::Trap(format!("{err:#}")),
    }
}

struct Instance {
    store: Store<GuestState>,
    guest_call: TypedFunc<(i32, i32), i32>,
    memory: Memory,
    calls: u64,
}

impl Instance {
    fn call(
        &mut self,
        operation: &str,
        payload: &[u8],
        config: &HostConfig,
    ) -> Result<Vec<u8>, CallError> {
        self.calls += 1;
        // The buffers keep their capacity from call to call: a pooled instance sees
        // requests of similar sizes, so after the first few calls nothing is allocated here.
        let exchange = &mut self.store.data_mut().exchange;
        exchange.operation.clear();
        exchange.operation.extend_from_slice(operation.as_bytes());
        exchange.payload.clear();
        exchange.payload.extend_from_slice(payload);
        exchange.response = None;
        exchange.guest_error = None;
        exchange.host_response.clear();
        exchange.host_error = None;
        self.store
            .set_epoch_deadline(deadline_ticks(config.deadline));
        let op_len = i32::try_from(operation.len())
            .map_err(|_| CallError::Protocol("operation name too long".to_owned()))?;
        let payload_len = i32::try_from(payload.len())
            .map_err(|_| CallError::Protocol("payload larger than 2 GiB".to_owned()))?;
        let status = self
            .guest_call
            .call(&mut self.store, (op_len, payload_len))
            .map_err(|e| classify(e, &self.store, config))?;
        let exchange = &mut self.store.data_mut().exchange;
        // One huge request must not pin its buffer for the instance's whole life.
        if exchange.payload.capacity() > RETAINED_PAYLOAD_BYTES {
            exchange.payload = Vec::new();
        }
        match status {
            1 => exchange.response.take().ok_or_else(|| {
                CallError::Protocol("__guest_call reported success without a response".to_owned())
            }),
            _ => Err(CallError::Guest(
                exchange
                    .guest_error
                    .take()
                    .unwrap_or_else(|| format!("operation {operation:?} failed without a message")),
            )),
        }
    }
}

/// The largest payload buffer an instance keeps for its next call.
const RETAINED_PAYLOAD_BYTES: usize = 1 << 20;

struct GuestState {
    wasi: WasiP1Ctx,
    limiter: MemoryCap,
    exchange: Exchange,
}

/// The buffers of one waPC call.
#[derive(Default)]
struct Exchange {
    operation: Vec<u8>,
    payload: Vec<u8>,
    response: Option<Vec<u8>>,
    guest_error: Option<String>,
    host_response: Vec<u8>,
    host_error: Option<String>,
}

/// Refuses growth past the cap and remembers that it did, so the failure is reported as
/// a cap hit rather than as whatever the guest does when an allocation fails.
struct MemoryCap {
    limit: usize,
    hit: bool,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.hit = true;
            return Err(wasmtime::Error::msg(format!(
                "memory cap of {} bytes reached (asked for {desired})",
                self.limit
            )));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

fn guest_memory<'c>(caller: &mut Caller<'c, GuestState>) -> wasmtime::Result<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => Ok(memory),
        _ => Err(wasmtime::Error::msg("the guest exports no memory")),
    }
}

fn read_bytes(
    caller: &mut Caller<'_, GuestState>,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<Vec<u8>> {
    let memory = guest_memory(caller)?;
    let (start, len) = (ptr as u32 as usize, len as u32 as usize);
    memory
        .data(&caller)
        .get(start..start.saturating_add(len))
        .map(<[u8]>::to_vec)
        .ok_or_else(|| wasmtime::Error::msg("the guest passed a buffer outside its memory"))
}

fn write_bytes(
    caller: &mut Caller<'_, GuestState>,
    ptr: i32,
    bytes: &[u8],
) -> wasmtime::Result<()> {
    let memory = guest_memory(caller)?;
    memory
        .write(caller, ptr as u32 as usize, bytes)
        .map_err(|_| wasmtime::Error::msg("the guest passed a buffer outside its memory"))
}

fn copy_into(guest: &mut [u8], ptr: i32, bytes: &[u8]) -> wasmtime::Result<()> {
    let start = ptr as u32 as usize;
    guest
        .get_mut(start..)
        .and_then(|rest| rest.get_mut(..bytes.len()))
        .ok_or_else(|| wasmtime::Error::msg("the guest passed a buffer outside its memory"))?
        .copy_from_slice(bytes);
    Ok(())
}

fn add_wapc_imports(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "wapc",
        "__guest_request",
        |mut caller: Caller<'_, GuestState>, op_ptr: i32, ptr: i32| {
            // Straight from the host's buffers into the guest's memory, with no copy between.
            let memory = guest_memory(&mut caller)?;
            let (guest, state) = memory.data_and_store_mut(&mut caller);
            copy_into(guest, op_ptr, &state.exchange.operation)?;
            copy_into(guest, ptr, &state.exchange.payload)
        },
    )?;
    linker.func_wrap(
        "wapc",
        "__guest_response",
        |mut caller: Caller<'_, GuestState>, ptr: i32, len: i32| {
            let bytes = read_bytes(&mut caller, ptr, len)?;
            caller.data_mut().exchange.response = Some(bytes);
            Ok(())
        },
    )?;
    linker.func_wrap(
        "wapc",
        "__guest_error",
        |mut caller: Caller<'_, GuestState>, ptr: i32, len: i32| {
            let bytes = read_bytes(&mut caller, ptr, len)?;
            caller.data_mut().exchange.guest_error =
                Some(String::from_utf8_lossy(&bytes).into_owned());
            Ok(())
        },
    )?;
    linker.func_wrap(
        "wapc",
        "__host_call",
        |mut caller: Caller<'_, GuestState>,
         bd_ptr: i32,
         bd_len: i32,
         ns_ptr: i32,
         ns_len: i32,
         op_ptr: i32,
         op_len: i32,
         ptr: i32,
         len: i32|
         -> wasmtime::Result<i32> {
            let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
            let binding = text(read_bytes(&mut caller, bd_ptr, bd_len)?);
            let namespace = text(read_bytes(&mut caller, ns_ptr, ns_len)?);
            let operation = text(read_bytes(&mut caller, op_ptr, op_len)?);
            let payload = read_bytes(&mut caller, ptr, len)?;
            let exchange = &mut caller.data_mut().exchange;
            exchange.host_response.clear();
            exchange.host_error = None;
            match (binding.as_str(), namespace.as_str(), operation.as_str()) {
                ("kubewarden", "tracing", "log") => {
                    log_guest_event(&payload);
                    Ok(1)
                }
                _ => {
                    exchange.host_error = Some(format!(
                        "podguard's host does not offer {binding}/{namespace}/{operation}: it runs policies that need no cluster context or host capabilities"
                    ));
                    Ok(0)
                }
            }
        },
    )?;
    linker.func_wrap(
        "wapc",
        "__host_response_len",
        |caller: Caller<'_, GuestState>| caller.data().exchange.host_response.len() as i32,
    )?;
    linker.func_wrap(
        "wapc",
        "__host_response",
        |mut caller: Caller<'_, GuestState>, ptr: i32| {
            let bytes = caller.data().exchange.host_response.clone();
            write_bytes(&mut caller, ptr, &bytes)
        },
    )?;
    linker.func_wrap(
        "wapc",
        "__host_error_len",
        |caller: Caller<'_, GuestState>| {
            caller
                .data()
                .exchange
                .host_error
                .as_ref()
                .map_or(0, |e| e.len() as i32)
        },
    )?;
    linker.func_wrap(
        "wapc",
        "__host_error",
        |mut caller: Caller<'_, GuestState>, ptr: i32| {
            let bytes = caller
                .data()
                .exchange
                .host_error
                .clone()
                .unwrap_or_default();
            write_bytes(&mut caller, ptr, bytes.as_bytes())
        },
    )?;
    linker.func_wrap(
        "wapc",
        "__console_log",
        |mut caller: Caller<'_, GuestState>, ptr: i32, len: i32| {
            let bytes = read_bytes(&mut caller, ptr, len)?;
            tracing::debug!(target: "policy", message = %String::from_utf8_lossy(&bytes));
            Ok(())
        },
    )?;
    Ok(())
}

/// Kubewarden's SDK logs through a host call carrying `{level, message, ...}`.
fn log_guest_event(payload: &[u8]) {
    let event: serde_json::Value = serde_json::from_slice(payload).unwrap_or_default();
    let message = event
        .get("message")
        .and_then(|m| m.as_str())
        .unwrap_or_default();
    match event.get("level").and_then(|l| l.as_str()) {
        Some("error") => tracing::error!(target: "policy", %message),
        Some("warning") => tracing::warn!(target: "policy", %message),
        Some("info") => tracing::info!(target: "policy", %message),
        _ => tracing::debug!(target: "policy", %message),
    }
}
