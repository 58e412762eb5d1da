//! A loaded module, its pool of instances, and one waPC call on an instance.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::{Engine, InstancePre, Memory, Store, Trap, TypedFunc};
use wasmtime_wasi::WasiCtxBuilder;

use crate::error::{CallError, HostError};
use crate::runtime::{EPOCH_TICK, EpochTicker, HostConfig};
use crate::wapc::{Exchange, GuestState, MemoryCap, RETAINED_PAYLOAD_BYTES};

/// A call given a short first budget ([`PolicyModule::call_briefly`]) needed longer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unfinished;

/// A loaded policy module and its pool of idle instances.
pub struct PolicyModule {
    pub(crate) name: String,
    pub(crate) digest: String,
    pub(crate) size: usize,
    pub(crate) pre: InstancePre<GuestState>,
    pub(crate) engine: Engine,
    pub(crate) _ticker: Arc<EpochTicker>,
    pub(crate) config: HostConfig,
    pub(crate) idle: Mutex<Vec<Instance>>,
    pub(crate) instance_restarts: AtomicU64,
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

    /// Writes `/tmp/perf-<pid>.map`, which names the guest's compiled functions (from the
    /// module's name section), so `perf report` on this process shows the policy's Rust
    /// functions instead of bare addresses. For profiling; the server never calls it.
    pub fn write_perf_map(&self) -> std::io::Result<std::path::PathBuf> {
        use std::io::Write;
        let module = self.pre.module();
        let text = module.text().as_ptr() as usize;
        let path = std::env::temp_dir().join(format!("perf-{}.map", std::process::id()));
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
        for function in module.functions() {
            let name = function
                .name
                .unwrap_or_else(|| format!("wasm-function[{}]", function.index.as_u32()));
            writeln!(
                out,
                "{:x} {:x} {name}",
                text + function.offset,
                function.len
            )?;
        }
        out.flush()?;
        Ok(path)
    }

    /// Calls a waPC operation on an idle instance (or a new one).
    pub fn call(&self, operation: &str, payload: &[u8]) -> Result<Vec<u8>, CallError> {
        self.call_within(operation, payload, deadline_ticks(self.config.deadline))
            .unwrap_or(Err(CallError::Deadline(self.config.deadline)))
    }

    /// Calls a waPC operation, but only until the engine's next epoch tick (at most
    /// 5 ms): [`Unfinished`] when it needs longer, and then the caller makes the call again
    /// with [`PolicyModule::call`] on a thread that may block for the full deadline. A
    /// server runs the call inline this way on its async worker: no hand-off to another
    /// thread for the common case, and a module that loops costs a worker one tick at most.
    /// Only for operations that are safe to run twice (a policy's `validate` is).
    pub fn call_briefly(
        &self,
        operation: &str,
        payload: &[u8],
    ) -> Result<Result<Vec<u8>, CallError>, Unfinished> {
        self.call_within(operation, payload, 1)
    }

    fn call_within(
        &self,
        operation: &str,
        payload: &[u8],
        ticks: u64,
    ) -> Result<Result<Vec<u8>, CallError>, Unfinished> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut instance = match idle {
            Some(instance) => instance,
            None => match self.instantiate() {
                Ok(instance) => instance,
                Err(err) => return Ok(Err(err)),
            },
        };
        let result = instance.call(operation, payload, ticks, &self.config);
        // An interrupted instance stopped mid-call, its memory in whatever state the guest
        // left it: it is dropped, and counted as a restart only when the full deadline
        // was what stopped it.
        if matches!(result, Err(CallError::Deadline(_))) {
            if ticks == deadline_ticks(self.config.deadline) {
                self.instance_restarts.fetch_add(1, Ordering::Relaxed);
            }
            return Err(Unfinished);
        }
        let healthy = result.is_ok()
            || matches!(
                result,
                Err(CallError::Guest(_) | CallError::Protocol(_) | CallError::Answer { .. })
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
        Ok(result)
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
            source: CallError::Answer {
                operation: "validate_settings".to_owned(),
                expected: "{valid, message}",
                source: Arc::new(e),
            },
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
            memory: None,
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
            .ok_or(CallError::Protocol("the module exports no memory"))?;
        store.data_mut().memory = Some(memory);
        let guest_call = instance
            .get_typed_func::<(i32, i32), i32>(&mut store, "__guest_call")
            .map_err(|_| {
                CallError::Protocol("__guest_call does not take (i32, i32) and return i32")
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
        _ => CallError::Trap(Arc::new(err)),
    }
}

pub(crate) struct Instance {
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
        ticks: u64,
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
        self.store.set_epoch_deadline(ticks);
        let op_len = i32::try_from(operation.len())
            .map_err(|_| CallError::Protocol("operation name too long"))?;
        let payload_len = i32::try_from(payload.len())
            .map_err(|_| CallError::Protocol("payload larger than 2 GiB"))?;
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
                CallError::Protocol("__guest_call reported success without a response")
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
