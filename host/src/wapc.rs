//! The waPC protocol on the host side: the imports a guest calls, and the buffers of one
//! call.

use wasmtime::{Caller, Extern, Linker, Memory, ResourceLimiter};
use wasmtime_wasi::p1::WasiP1Ctx;

/// The largest payload buffer an instance keeps for its next call.
pub(crate) const RETAINED_PAYLOAD_BYTES: usize = 1 << 20;

pub(crate) struct GuestState {
    pub(crate) wasi: WasiP1Ctx,
    pub(crate) limiter: MemoryCap,
    pub(crate) exchange: Exchange,
    /// The guest's memory once it is instantiated: every host call needs it, and looking
    /// the export up by name each time cost more than the copy it serves.
    pub(crate) memory: Option<Memory>,
}

/// The buffers of one waPC call.
#[derive(Default)]
pub(crate) struct Exchange {
    pub(crate) operation: Vec<u8>,
    pub(crate) payload: Vec<u8>,
    pub(crate) response: Option<Vec<u8>>,
    pub(crate) guest_error: Option<String>,
    pub(crate) host_response: Vec<u8>,
    pub(crate) host_error: Option<String>,
}

/// Refuses growth past the cap and remembers that it did, so the failure is reported as
/// a cap hit rather than as whatever the guest does when an allocation fails.
pub(crate) struct MemoryCap {
    pub(crate) limit: usize,
    pub(crate) hit: bool,
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
    if let Some(memory) = caller.data().memory {
        return Ok(memory);
    }
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

pub(crate) fn add_wapc_imports(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
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
