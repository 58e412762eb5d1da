//! `podguard gen-certs`.

use crate::cli::GenCertsCommand;

pub(super) fn run(cmd: &GenCertsCommand) -> anyhow::Result<()> {
    let written =
        podguard_server::gen_certs::generate(&cmd.out, &crate::config::cert_request(cmd))?;
    for file in &written.files {
        println!("wrote {}", file.display());
    }
    println!(
        "valid until {} (UTC); serve with --tls-cert {} --tls-key {}, and trust {}",
        written.valid_until,
        cmd.out.join("tls.crt").display(),
        cmd.out.join("tls.key").display(),
        cmd.out.join("ca.crt").display()
    );
    Ok(())
}
