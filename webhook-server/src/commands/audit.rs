//! `podguard audit`: the audit's status is the exit code.

use std::io::Write as _;
use std::process::ExitCode;

use podguard_audit::AuditOptions;

pub(super) fn run(options: AuditOptions) -> ExitCode {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    match podguard_audit::run(&options, &mut out, &mut std::io::stderr()) {
        Ok(status) => ExitCode::from(status.code()),
        Err(err) => {
            let _ = out.flush();
            eprintln!("podguard audit: {}", podguard_host::chain(&err));
            ExitCode::from(2)
        }
    }
}
