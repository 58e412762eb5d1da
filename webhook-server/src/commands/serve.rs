//! `podguard serve`: the webhook on a multi-threaded runtime until SIGTERM or SIGINT.

use crate::server::{self, ServeConfig};

pub(super) fn run(config: ServeConfig) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.workers)
        .enable_all()
        .build()?;
    runtime.block_on(server::run(config, server::shutdown_signal()))
}
