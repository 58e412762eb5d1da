//! `podguard gen-certs`.

use crate::cli::GenCertsCommand;

pub(super) fn run(cmd: &GenCertsCommand) -> anyhow::Result<()> {
    podguard_server::gen_certs::generate(&cmd.out, &crate::config::cert_request(cmd))
}
