//! `podguard audit`: what admission would say about workloads that already exist, in
//! files, on stdin or in a live cluster.
//!
//! Every object goes to the policy module as a CREATE `AdmissionRequest` with no user,
//! through the same Wasm host and settings as `serve`; the module's `Outcome` (every
//! violation, with its check's mode) is what the reports are built from. A workload that
//! mutate mode would fix is still reported: it is not compliant as it stands.
//!
//! The work is a pipeline that never holds the whole input: one thread reads files (or
//! list pages) and cuts them into documents; a worker per core parses each document and
//! calls the module (each worker reuses a module instance); results are put back in input
//! order through a bounded window and streamed to the report.
//!
//! ```no_run
//! use podguard_audit::AuditOptions;
//! use podguard_host::policy_file::ModuleSource;
//!
//! let options = AuditOptions {
//!     inputs: vec!["deploy/".into()],
//!     ..AuditOptions::new(ModuleSource::File("podguard_policy.wasm".into()))
//! };
//! let status = podguard_audit::run(&options, &mut std::io::stdout(), &mut std::io::stderr()).unwrap();
//! std::process::exit(status.code().into());
//! ```

#[cfg(feature = "cluster")]
mod cluster;
mod error;
mod fix;
mod input;
mod judge;
mod model;
mod modes;
mod report;
pub mod yaml;

use std::collections::{BTreeMap, HashSet};
use std::io::{IsTerminal as _, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use judge::{FixMode, Judge};
use model::{InputError, Item, Judged, Unit, UnitBody, Verdict, WorkloadKey};
use podguard_host::policy_file::PolicyFileError;
use podguard_host::policy_file::{ModuleSource, load_policy, read_settings};
use podguard_host::{HostConfig, Runtime};

pub use error::{AuditError, ModuleAnswerError};
pub use input::DEFAULT_MAX_INPUT_BYTES;
pub use model::FailOn;
use report::policyreport::{PolicyReportOutput, PolicyReports, ReportApi};
pub use report::{OutputFormat, OutputTarget};
use report::{Paint, Report, Summary};

/// How many units may be between the reader and the report at once. Bounds memory (and
/// the reordering buffer) whatever the input size.
const WINDOW: usize = 1024;

/// How to reach the cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// `--kubeconfig`: a kubeconfig file instead of `KUBECONFIG` / `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// `--context`: a context of the kubeconfig other than its current one.
    pub context: Option<String>,
    /// `--namespace`: list only this namespace.
    pub namespace: Option<String>,
    /// Objects per list call.
    pub page_size: u32,
}

/// Everything `podguard audit` was asked to do.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Files and directories; `-` is stdin. Empty with `cluster`.
    pub inputs: Vec<PathBuf>,
    /// Audit a live cluster instead of files.
    pub cluster: Option<ClusterOptions>,
    /// Only this namespace (objects in files that name none are taken to be in it).
    pub namespace: Option<String>,
    /// The policy module.
    pub policy: ModuleSource,
    /// Runtime settings, YAML or JSON.
    pub settings: Option<PathBuf>,
    /// The reports: at most one on stdout, the others into files.
    pub outputs: Vec<OutputTarget>,
    /// The lowest mode whose findings fail the audit.
    pub fail_on: FailOn,
    /// Print what mutate mode would change.
    pub show_fix: bool,
    /// Write mutate mode's changes back into the files.
    pub fix: bool,
    /// Apply PolicyReports to the cluster.
    pub write_reports: bool,
    /// Field manager for server-side apply.
    pub field_manager: String,
    /// Colour the table.
    pub color: bool,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Evaluation threads; 0 is one per core.
    pub jobs: usize,
    /// The most one input (a file, or stdin) may hold.
    pub max_input_bytes: u64,
    /// Wasm host limits.
    pub host: HostConfig,
}

impl AuditOptions {
    /// An audit of nothing yet with `policy`, every other option at its command-line
    /// default.
    pub fn new(policy: ModuleSource) -> Self {
        AuditOptions {
            inputs: Vec::new(),
            cluster: None,
            namespace: None,
            policy,
            settings: None,
            outputs: vec![OutputTarget::stdout(OutputFormat::Table)],
            fail_on: FailOn::Enforce,
            show_fix: false,
            fix: false,
            write_reports: false,
            field_manager: "podguard".to_owned(),
            color: false,
            progress: false,
            jobs: 0,
            max_input_bytes: input::DEFAULT_MAX_INPUT_BYTES,
            host: HostConfig::default(),
        }
    }
}

/// How an audit ended, as the exit code says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditStatus {
    /// Nothing at or above `--fail-on`.
    Clean,
    /// Findings at or above `--fail-on`.
    Findings,
    /// Some input could not be read or judged; the report covers the rest.
    Incomplete,
}

impl AuditStatus {
    /// 0, 1 or 2.
    pub fn code(self) -> u8 {
        match self {
            AuditStatus::Clean => 0,
            AuditStatus::Findings => 1,
            AuditStatus::Incomplete => 2,
        }
    }
}

fn check_usage(options: &AuditOptions) -> Result<(), AuditError> {
    use AuditError::Usage;
    let stdin = options.inputs.iter().any(|p| p.as_os_str() == "-");
    match (&options.cluster, options.inputs.is_empty()) {
        (Some(_), false) => {
            return Err(Usage(
                "--cluster audits the cluster, not files: drop the file arguments, or drop --cluster",
            ));
        }
        (None, true) => {
            return Err(Usage(
                "nothing to audit: name files or directories (or - for stdin), or pass --cluster",
            ));
        }
        _ => {}
    }
    if options.fix && stdin {
        return Err(Usage(
            "--fix writes fixes back into files, and stdin is not a file: save the manifests to a file and audit that",
        ));
    }
    if options.fix && options.cluster.is_some() {
        return Err(Usage(
            "--fix writes fixes back into files; a live cluster is changed by your GitOps repository or by `kubectl apply`: audit the manifests with --fix instead, or use --show-fix",
        ));
    }
    if options.write_reports && options.cluster.is_none() {
        return Err(Usage(
            "--write-reports writes PolicyReports into the cluster it audited: add --cluster (or print them with --output policyreport)",
        ));
    }
    let formats = || options.outputs.iter().map(|target| target.format);
    if options.show_fix && !formats().any(|f| matches!(f, OutputFormat::Table | OutputFormat::Json))
    {
        return Err(Usage(
            "--show-fix prints fixes in the table or json report: add --output table or --output json",
        ));
    }
    if options.outputs.is_empty() {
        return Err(Usage("no report asked for: pass --output FORMAT[=FILE]"));
    }
    if options.outputs.iter().filter(|t| t.path.is_none()).count() > 1 {
        return Err(Usage(
            "only one report can go to stdout: write the others to files, e.g. -o table -o sarif=podguard.sarif",
        ));
    }
    let mut files = std::collections::HashSet::new();
    if !options
        .outputs
        .iter()
        .filter_map(|t| t.path.as_ref())
        .all(|path| files.insert(path))
    {
        return Err(Usage("two reports name the same file: give each its own"));
    }
    if options
        .inputs
        .iter()
        .filter(|p| p.as_os_str() == "-")
        .count()
        > 1
    {
        return Err(Usage("stdin (-) can be read only once: name it once"));
    }
    Ok(())
}

/// The progress bar: only on a terminal, and only once a run has lasted long enough to
/// need one.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    enabled: bool,
}

impl Progress {
    fn new(enabled: bool) -> Progress {
        Progress {
            bar: None,
            started: Instant::now(),
            enabled,
        }
    }

    fn update(&mut self, summary: &Summary) {
        if !self.enabled {
            return;
        }
        if self.bar.is_none() && self.started.elapsed() > Duration::from_millis(400) {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                    .expect("a valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            self.bar = Some(bar);
        }
        if let Some(bar) = &self.bar
            && summary.workloads.is_multiple_of(64)
        {
            let rate = summary.workloads as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!(
                "audited {} workloads ({:.0}/s), {} failing, {} skipped",
                summary.workloads,
                rate,
                summary.failing,
                summary.skipped_total()
            ));
        }
    }

    fn suspend<T>(&self, f: impl FnOnce() -> T) -> T {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// Runs an audit, writing the report to `out` and input errors to `err`.
pub fn run(
    options: &AuditOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<AuditStatus, AuditError> {
    let started = Instant::now();
    check_usage(options)?;
    let runtime = Runtime::new(options.host.clone()).map_err(PolicyFileError::from)?;
    let policy = load_policy(
        &runtime,
        &options.policy.default_name(),
        &options.policy,
        read_settings(options.settings.as_deref())?,
    )?;
    let modes = modes::of_module(&policy.module, &policy.settings)?;
    let mut summary = Summary {
        fail_on: options.fail_on,
        ..Summary::default()
    };
    let fix_mode = if options.fix {
        FixMode::Write
    } else if options.show_fix {
        FixMode::Show
    } else {
        FixMode::Off
    };
    let fix_overrides = if fix_mode == FixMode::Off {
        None
    } else {
        let (overrides, notes) = modes::fix_overrides(&policy.module, &policy.settings, &modes);
        summary.notes.extend(notes);
        Some(overrides)
    };
    let cluster = match &options.cluster {
        Some(cluster_options) => Some(connect(ClusterOptions {
            namespace: options.namespace.clone(),
            ..cluster_options.clone()
        })?),
        None => None,
    };

    let judge = Judge {
        module: &policy.module,
        settings: policy.settings.clone(),
        fix_overrides,
        namespace: if cluster.is_some() {
            None
        } else {
            options.namespace.clone()
        },
        fix_mode,
        field_lines: options
            .outputs
            .iter()
            .any(|t| matches!(t.format, OutputFormat::Sarif | OutputFormat::Json)),
        judge_owned: cluster.is_none(),
    };
    let base = std::env::current_dir().unwrap_or_default();
    let paint = Paint {
        enabled: options.color,
    };
    let sinks = Sinks::open(&options.outputs, |format| -> Box<dyn Report> {
        match format {
            OutputFormat::Table => Box::new(report::table::Table::new(
                paint,
                options.fail_on,
                options.show_fix,
            )),
            OutputFormat::Json => Box::new(report::json::Json::new(options.fail_on)),
            OutputFormat::Sarif => Box::new(report::sarif::Sarif::new(base.clone(), modes.clone())),
            OutputFormat::Junit => {
                Box::new(report::junit::Junit::new(options.fail_on, modes.clone()))
            }
            OutputFormat::PolicyReport => {
                Box::new(PolicyReportOutput::new(modes.clone(), ReportApi::Wgpolicy))
            }
            OutputFormat::OpenReports => Box::new(PolicyReportOutput::new(
                modes.clone(),
                ReportApi::OpenReports,
            )),
        }
    })?;
    let reports_to_write = options
        .write_reports
        .then(|| PolicyReports::new(modes.clone()));
    let mut reporting = Reporting {
        summary,
        sinks,
        reports_to_write,
        fixer: fix::Fixer::default(),
    };
    let mut progress = Progress::new(options.progress);
    let jobs = if options.jobs == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        options.jobs
    };

    let (unit_tx, unit_rx) = crossbeam_channel::bounded::<Unit>(jobs * 16);
    let (result_tx, result_rx) = crossbeam_channel::unbounded::<Judged>();
    let (token_tx, token_rx) = crossbeam_channel::bounded::<()>(WINDOW);
    for _ in 0..WINDOW {
        token_tx.send(()).expect("the window has room");
    }

    let mut audited: HashSet<WorkloadKey> = HashSet::new();
    let mut owned: Vec<Box<Verdict>> = Vec::new();
    let outcome: Result<(), AuditError> = std::thread::scope(|scope| {
        let inputs = &options.inputs;
        let cluster_ref = cluster.as_ref();
        let file_done = fix_mode == FixMode::Write;
        let max_input_bytes = options.max_input_bytes;
        scope.spawn(move || {
            let mut seq = 0u64;
            let mut send = |body: UnitBody| -> bool {
                if token_rx.recv().is_err() {
                    return false;
                }
                let sent = unit_tx.send(Unit { seq, body }).is_ok();
                seq += 1;
                sent
            };
            match cluster_ref {
                Some(cluster) => read_cluster(cluster, &mut send),
                None => input::read_inputs(inputs, file_done, max_input_bytes, &mut send),
            }
        });
        for _ in 0..jobs {
            let unit_rx = unit_rx.clone();
            let result_tx = result_tx.clone();
            let judge = &judge;
            scope.spawn(move || {
                let mut buffer = Vec::with_capacity(16 * 1024);
                for unit in unit_rx {
                    if result_tx.send(judge.unit(unit, &mut buffer)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(result_tx);
        drop(unit_rx);

        let mut pending: BTreeMap<u64, Judged> = BTreeMap::new();
        let mut next = 0u64;
        let audited = &mut audited;
        let owned = &mut owned;
        let interactive_out = options.progress && std::io::stdout().is_terminal();
        for judged in result_rx {
            pending.insert(judged.seq, judged);
            while let Some(judged) = pending.remove(&next) {
                next += 1;
                for item in judged.items {
                    // An owned object waits until every input has been read: whether its
                    // controller is among them decides whether it counts.
                    let item = match item {
                        Item::Workload(verdict) => {
                            audited.insert(verdict.key());
                            if verdict.owner.is_some() {
                                owned.push(verdict);
                                continue;
                            }
                            Item::Workload(verdict)
                        }
                        other => other,
                    };
                    let handled = reporting.handle(item, out, err, &progress, interactive_out);
                    if let Err(error) = handled {
                        // The reader stops at its next unit; the workers when it stops.
                        drop(token_tx);
                        return Err(error);
                    }
                }
                progress.update(&reporting.summary);
                let _ = token_tx.send(());
            }
        }
        Ok(())
    });
    outcome?;
    for verdict in owned {
        let item = owned_verdict(*verdict, &audited, fix_mode);
        reporting.handle(item, out, err, &progress, false)?;
    }
    progress.finish();

    let Reporting {
        mut summary,
        mut sinks,
        reports_to_write,
        ..
    } = reporting;
    summary.elapsed = started.elapsed();
    if let (Some(reports), Some(cluster)) = (&reports_to_write, &cluster) {
        summary
            .notes
            .push(write_reports(cluster, reports, &options.field_manager)?);
    }
    sinks.each(out, |report, writer| report.finish(writer, &summary))?;
    sinks.flush(out)?;
    Ok(match summary.exit_code() {
        0 => AuditStatus::Clean,
        1 => AuditStatus::Findings,
        _ => AuditStatus::Incomplete,
    })
}

/// An owned object, once every input has been read: skipped when its controller was
/// audited too (it is judged through that controller), otherwise judged on its own and
/// said why. Its fixes are not written into the file, which `--fix` has already finished:
/// the controller's template is where a fix belongs.
fn owned_verdict(mut verdict: Verdict, audited: &HashSet<WorkloadKey>, fix_mode: FixMode) -> Item {
    let (Some(owner), Some(owner_key)) = (verdict.owner.clone(), verdict.owner_key()) else {
        return Item::Workload(Box::new(verdict));
    };
    if audited.contains(&owner_key) {
        return Item::Skipped(model::Skip {
            kind: verdict.workload.kind.as_str().to_owned(),
            reason: model::SkipReason::OwnedByController {
                owner: owner.to_string(),
            },
        });
    }
    if let Ok(judgement) = &mut verdict.result {
        judgement.notes.push(format!(
            "owned by {owner}, which is not among the inputs: judged on its own"
        ));
        if fix_mode == FixMode::Write && judgement.fix.take().is_some() {
            for finding in &mut judgement.violations {
                finding.fixed_in_file = false;
            }
            judgement.notes.push(format!(
                "not fixed in the file: fix the pod template of {owner} where it is defined"
            ));
        }
    }
    Item::Workload(Box::new(verdict))
}

/// What the report loop keeps: the totals, the reports, and what `--write-reports` and
/// `--fix` collect.
struct Reporting {
    summary: Summary,
    sinks: Sinks,
    reports_to_write: Option<PolicyReports>,
    fixer: fix::Fixer,
}

impl Reporting {
    /// Takes one item, in input order.
    fn handle(
        &mut self,
        item: Item,
        out: &mut dyn Write,
        err: &mut dyn Write,
        progress: &Progress,
        interactive_out: bool,
    ) -> Result<(), AuditError> {
        match item {
            Item::Workload(verdict) => {
                self.summary.record(&verdict);
                if let Err(message) = &verdict.result
                    && !self.sinks.stdout_shows_errors()
                {
                    progress
                        .suspend(|| {
                            writeln!(
                                err,
                                "podguard audit: {}: {}: {message}",
                                verdict.workload.origin, verdict.workload
                            )
                        })
                        .map_err(AuditError::Report)?;
                }
                if let Some(reports) = &mut self.reports_to_write {
                    reports.record(&verdict);
                }
                self.fixer.record(&verdict);
                let sinks = &mut self.sinks;
                let mut write =
                    || sinks.each(out, |report, writer| report.workload(writer, &verdict));
                if interactive_out {
                    progress.suspend(write)?;
                } else {
                    write()?;
                }
            }
            Item::Skipped(skip) => {
                *self
                    .summary
                    .skipped
                    .entry(report::skip_label(&skip.reason))
                    .or_default()
                    .entry(skip.kind)
                    .or_default() += 1;
            }
            Item::Error(error) => self.input_error(&error, out, err, progress)?,
            Item::FileDone(input) => match self.fixer.finish_file(&input) {
                Ok(Some(fixed)) => {
                    self.summary.fixed_documents += fixed.documents;
                    self.summary.fixed_files += 1;
                    if fixed.lost_comments {
                        self.summary.notes.push(format!(
                            "{input}: comments inside the documents rewritten whole were not kept; comments outside them, and in documents changed by edits, were"
                        ));
                    }
                }
                Ok(None) => {}
                Err(error) => self.input_error(&error, out, err, progress)?,
            },
        }
        Ok(())
    }

    /// An input that could not be read (or fixed): counted, said on stderr, and given to
    /// the reports that record it (JUnit, SARIF); the table only counts it, so a CI log
    /// holding both streams shows it once.
    fn input_error(
        &mut self,
        error: &InputError,
        out: &mut dyn Write,
        err: &mut dyn Write,
        progress: &Progress,
    ) -> Result<(), AuditError> {
        self.summary.input_errors += 1;
        progress
            .suspend(|| writeln!(err, "podguard audit: {error}"))
            .map_err(AuditError::Report)?;
        let sinks = &mut self.sinks;
        progress.suspend(|| sinks.each(out, |report, writer| report.input_error(writer, error)))
    }
}

/// The reports of a run, each with where it goes.
struct Sinks(Vec<Sink>);

struct Sink {
    format: OutputFormat,
    report: Box<dyn Report>,
    /// The file, or `None` for stdout.
    file: Option<(PathBuf, std::io::BufWriter<std::fs::File>)>,
}

impl Sinks {
    /// Creates every report file up front, so a path that cannot be written stops the
    /// audit before it runs.
    fn open(
        targets: &[OutputTarget],
        mut report: impl FnMut(OutputFormat) -> Box<dyn Report>,
    ) -> Result<Sinks, AuditError> {
        let mut sinks = Vec::new();
        for target in targets {
            let file = match &target.path {
                Some(path) => {
                    let file =
                        std::fs::File::create(path).map_err(|source| AuditError::ReportFile {
                            path: path.clone(),
                            source,
                        })?;
                    Some((path.clone(), std::io::BufWriter::new(file)))
                }
                None => None,
            };
            sinks.push(Sink {
                format: target.format,
                report: report(target.format),
                file,
            });
        }
        Ok(Sinks(sinks))
    }

    /// Whether a table on stdout shows a workload's evaluation error in its place.
    fn stdout_shows_errors(&self) -> bool {
        self.0
            .iter()
            .any(|sink| sink.file.is_none() && sink.format == OutputFormat::Table)
    }

    /// Runs `write` for every report, with its writer.
    fn each(
        &mut self,
        out: &mut dyn Write,
        mut write: impl FnMut(&mut dyn Report, &mut dyn Write) -> std::io::Result<()>,
    ) -> Result<(), AuditError> {
        for sink in &mut self.0 {
            match &mut sink.file {
                Some((path, file)) => {
                    write(sink.report.as_mut(), file).map_err(|source| AuditError::ReportFile {
                        path: path.clone(),
                        source,
                    })?
                }
                None => write(sink.report.as_mut(), out).map_err(AuditError::Report)?,
            }
        }
        Ok(())
    }

    fn flush(&mut self, out: &mut dyn Write) -> Result<(), AuditError> {
        self.each(out, |_, writer| writer.flush())
    }
}

/// The connection to a live cluster; a build without the `cluster` feature (the fuzz
/// targets) has none, and says so when asked for one.
#[cfg(feature = "cluster")]
type Connection = cluster::Cluster;
#[cfg(not(feature = "cluster"))]
type Connection = std::convert::Infallible;

#[cfg(feature = "cluster")]
fn connect(options: ClusterOptions) -> Result<Connection, AuditError> {
    Ok(cluster::Cluster::connect(options)?)
}

#[cfg(not(feature = "cluster"))]
fn connect(_: ClusterOptions) -> Result<Connection, AuditError> {
    Err(AuditError::NoClusterSupport)
}

#[cfg(feature = "cluster")]
fn read_cluster(cluster: &Connection, send: &mut dyn FnMut(UnitBody) -> bool) {
    cluster.read(send)
}

#[cfg(not(feature = "cluster"))]
fn read_cluster(cluster: &Connection, _: &mut dyn FnMut(UnitBody) -> bool) {
    match *cluster {}
}

/// Applies the PolicyReports; returns the note saying what was written.
#[cfg(feature = "cluster")]
fn write_reports(
    cluster: &Connection,
    reports: &PolicyReports,
    field_manager: &str,
) -> Result<String, AuditError> {
    let api = cluster.report_api();
    let built = reports.build(api);
    let written = cluster.write_reports(&built, api, field_manager)?;
    Ok(format!(
        "wrote {written} {} report object{} to {} with server-side apply (field manager {field_manager:?})",
        api.api_version(),
        if written == 1 { "" } else { "s" },
        cluster.server(),
    ))
}

#[cfg(not(feature = "cluster"))]
fn write_reports(cluster: &Connection, _: &PolicyReports, _: &str) -> Result<String, AuditError> {
    match *cluster {}
}
