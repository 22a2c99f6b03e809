//! The one executor that runs the [`Step`]s, external commands built as data.
//!
//! The [`Runner`] prints each step before running it; with `--dry-run` it only
//! prints, so a dry run's output is exactly the commands a real run executes.
//! A read-only step answers with its output, or in a dry run that it did not
//! run ([`Reply::DryRun`], `None` from [`Runner::read`]) for the caller to judge.
//!
//! The tools' own output (BuildKit's steps, push progress) goes to a log file
//! per prefix under `target/xtask/logs/`; `--verbose` shows it as well. When a
//! step fails, its error names the log (under GitHub Actions, where the
//! output is in the job's log already, it says so), and without `--verbose`
//! its last lines are printed too.
//!
//! Secrets never become arguments: a password travels from one step's stdout
//! into the next step's stdin (see [`Step::with_secret_stdin`]), and the printed
//! form shows only the commands, never the value.

use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use xshell::{cmd, Shell};

use crate::deadline::{self, Ended};
use crate::step::{Step, Tool};

/// What a read-only step answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// A dry run: the step was printed, not run.
    DryRun,
    /// It succeeded: its standard output.
    Out(String),
    /// It failed: why, in the tool's own words (its stderr), and its exit
    /// code, which some tools document (cosign's 10: no signatures).
    Failed { why: String, code: Option<i32> },
}

/// Text to show, with every secret a tool may repeat as `***`: the step's
/// stdin, and a key file's password, which reaches cosign in its
/// environment. Only what is shown: a read's answer is data, and a
/// password such as `amd64` masked in it would change what it says.
pub fn mask(text: &str, stdin: Option<&str>) -> String {
    let password = std::env::var(crate::cosign::PASSWORD_VAR).ok();
    [stdin, password.as_deref()]
        .into_iter()
        .flatten()
        .filter(|secret| !secret.is_empty())
        .fold(text.to_string(), |text, secret| text.replace(secret, "***"))
}

/// The secret-producing step of a pipe failed (`aws ecr get-login-password`):
/// the message is its stderr; its stdout, the secret, is never shown.
#[derive(Debug)]
pub struct SecretSourceFailed(pub String);

impl fmt::Display for SecretSourceFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SecretSourceFailed {}

/// How many of a failed step's last lines are printed.
const TAIL: usize = 20;

/// How many times [`Runner::run_with_retry`] tries a step before it is
/// called failed.
const ATTEMPTS: u32 = 3;

/// What a refusal of the credentials is called, and what to check then.
pub const REFUSED_CREDENTIALS: &str = "the registry refused the credentials";
pub const CHECK_CREDENTIALS: &str = "check the login (without --no-login, xtask logs in through the aws CLI) and the role's permissions on the repository";

/// Whether a registry tool's answer is a refusal of its credentials: HTTP
/// 401 or 403, or the distribution spec's `UNAUTHORIZED` and `DENIED`
/// error codes (an expired ECR token, a role without push rights), as
/// BuildKit, skopeo and cosign print them.
pub fn refused_credentials(answer: &str) -> bool {
    let answer = answer.to_ascii_lowercase();
    [
        "401 unauthorized",
        "403 forbidden",
        ": unauthorized:",
        ": denied:",
        "no basic auth credentials",
    ]
    .iter()
    .any(|sign| answer.contains(sign))
}

/// What the output lines of `name`'s steps start with: `[gpu] `, whose log
/// is `gpu.log`.
pub fn prefix(name: &str) -> String {
    format!("[{name}] ")
}

/// Runs steps, or with `dry_run` only prints them. Shared by the threads
/// that build variants concurrently: xshell's `Shell` is not `Sync`, so each
/// step gets a `Shell` of its own, in the repository root.
pub struct Runner {
    root: PathBuf,
    pub dry_run: bool,
    verbose: bool,
    /// The logs this run has started afresh: a log holds one run's output.
    logs: Mutex<BTreeSet<PathBuf>>,
    /// This run's turn in the checkout, once taken ([`Runner::take_turn`]).
    turn: Mutex<Option<File>>,
    /// How long a read-only step may take ([`Runner::with_read_timeout`]).
    read_timeout: Duration,
}

/// `--read-timeout`'s default, in seconds: a registry answers a manifest
/// read in well under a second, and a cosign verify in a few.
pub const DEFAULT_READ_TIMEOUT: u64 = 120;
/// Its largest value, a day: longer than any job, and far from the
/// overflow of a deadline (`Instant` plus `u64::MAX` seconds panics).
pub const MAX_READ_TIMEOUT: u64 = 86_400;

impl Runner {
    pub fn new(root: &Path, dry_run: bool, verbose: bool) -> Runner {
        Runner {
            root: root.to_path_buf(),
            dry_run,
            verbose,
            logs: Mutex::default(),
            turn: Mutex::default(),
            read_timeout: Duration::from_secs(DEFAULT_READ_TIMEOUT),
        }
    }

    /// Stop a read-only step that has not finished after `timeout`: a
    /// registry that accepts connections and never answers (a wedged
    /// registry or proxy) would otherwise hold the job until its own
    /// timeout, since skopeo and `imagetools` have no deadline of their own.
    pub fn with_read_timeout(mut self, timeout: Duration) -> Runner {
        self.read_timeout = timeout;
        self
    }

    /// Wait for this run's turn in the checkout: one run at a time writes
    /// its variants' metadata files, logs and the signing key's public half
    /// under target/xtask/, where a second would overwrite them or remove
    /// them mid-build. Taken by the first step (bad input, found before any
    /// step, never waits) or by a task before it writes a file itself; held
    /// until the process ends, however it ends (the OS's file lock). A dry
    /// run writes nothing and waits for no one.
    pub fn take_turn(&self) -> Result<()> {
        let mut turn = self.turn.lock().unwrap_or_else(|p| p.into_inner());
        if self.dry_run || turn.is_some() {
            return Ok(());
        }
        let dir = self.root.join("target/xtask");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join("lock");
        // Not truncated: it names the run that holds it.
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        if let Err(std::fs::TryLockError::WouldBlock) = file.try_lock() {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            eprintln!(
                "waiting for the other cargo xtask running in {} to finish ({}; it holds {})",
                self.root.display(),
                holder.trim(),
                path.display()
            );
        }
        file.lock()
            .with_context(|| format!("cannot lock {}", path.display()))?;
        // As the OS gave them: a path need not be UTF-8 (`--root`).
        let args: Vec<String> = std::env::args_os()
            .skip(1)
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        file.set_len(0)?;
        write!(file, "pid {}: xtask {}", std::process::id(), args.join(" "))?;
        *turn = Some(file);
        Ok(())
    }

    /// Run a step that changes something. Its output goes to the log of
    /// `prefix` (for example `[gpu] `), and with `--verbose` to stderr too,
    /// each line prefixed so concurrent steps stay readable.
    pub fn run(&self, prefix: &str, step: &Step) -> Result<()> {
        self.take_turn()?;
        eprintln!("{prefix}$ {step}");
        if self.dry_run {
            return Ok(());
        }
        let password = match &step.secret_stdin {
            // stderr of a password command carries the reason (expired token,
            // unknown profile), never the password, which goes to stdout.
            Some(source) => Some(
                self.capture(source)
                    .map_err(|(why, _)| SecretSourceFailed(format!("`{source}` failed: {why}")))?,
            ),
            None => None,
        };
        let (path, mut log) = self.log(prefix)?;
        writeln!(log, "$ {step}")?;
        // One pipe for both streams, so the log keeps their order.
        let (output, writer) = std::io::pipe()?;
        let mut child = {
            let sh = self.shell()?;
            let (program, args) = (&step.program, &step.args);
            let mut command = Command::from(cmd!(sh, "{program} {args...}"));
            command
                .stdin(password.as_ref().map_or(Stdio::null(), |_| Stdio::piped()))
                .stdout(writer.try_clone()?)
                .stderr(writer);
            // `command` holds the pipe's write end until it is dropped here;
            // the relay below reads until every write end is closed.
            command
                .spawn()
                .with_context(|| format!("could not start `{}`", step.program))?
        };
        let secret = password.as_deref().map(str::trim);
        if let (Some(secret), Some(mut stdin)) = (secret, child.stdin.take()) {
            stdin.write_all(secret.as_bytes())?;
        }
        let tail = self.relay(prefix, output, &mut log, secret);
        let status = child.wait()?;
        if !status.success() {
            if !self.verbose {
                for line in &tail {
                    eprintln!("{prefix}  {line}");
                }
            }
            // The tool's own last word, usually why (docker login:
            // "connection refused", "unauthorized").
            let answer = tail.back().map(|l| format!(": {l}")).unwrap_or_default();
            // A GitHub runner's files go with the job; there the output is
            // in the job's log, just above.
            let output = if crate::github::is_actions() {
                "its output is above".to_string()
            } else {
                format!("its output: {}", path.display())
            };
            bail!("`{}` exited with {status}{answer} ({output})", step.brief());
        }
        Ok(())
    }

    /// Run a step up to `ATTEMPTS` times, waiting longer after each failure:
    /// for registry calls, where a dropped connection, a 5xx or throttling
    /// is worth a retry. A refusal of the credentials is not: it would be
    /// answered the same way again.
    pub fn run_with_retry(&self, prefix: &str, step: &Step) -> Result<()> {
        for attempt in 1..ATTEMPTS {
            let Err(err) = self.run(prefix, step) else {
                return Ok(());
            };
            if refused_credentials(&format!("{err:#}")) {
                let why = format!("{REFUSED_CREDENTIALS}: not retried; {CHECK_CREDENTIALS}");
                return Err(err.context(why));
            }
            let wait = Duration::from_secs(2u64.pow(attempt));
            eprintln!(
                "{prefix}attempt {attempt}/{ATTEMPTS} failed ({err:#}); retrying in {wait:?}"
            );
            std::thread::sleep(wait);
        }
        self.run(prefix, step)
            .with_context(|| format!("gave up after {ATTEMPTS} attempts"))
    }

    /// Run a read-only step, printed like any other, for its answer: a
    /// failure is an answer too, for questions such as "does this tag exist".
    pub fn ask(&self, prefix: &str, step: &Step) -> Reply {
        if let Err(err) = self.take_turn() {
            return Reply::Failed {
                why: format!("{err:#}"),
                code: None,
            };
        }
        eprintln!("{prefix}$ {step}");
        if self.dry_run {
            return Reply::DryRun;
        }
        // Masked here, not in `capture`, which also reads a secret's source;
        // the answer is not: it is parsed, and shown only in an error,
        // which `github::report_error` masks.
        match self.capture(step) {
            Ok(out) => Reply::Out(out),
            Err((why, code)) => Reply::Failed {
                why: mask(&why, None),
                code,
            },
        }
    }

    /// Run a read-only step and return its stdout; `None` in a dry run. A
    /// failure is an error that carries the tool's answer.
    pub fn read(&self, prefix: &str, step: &Step) -> Result<Option<String>> {
        match self.ask(prefix, step) {
            Reply::DryRun => Ok(None),
            Reply::Out(out) => Ok(Some(out)),
            Reply::Failed { why, .. } => bail!("`{}` failed: {why}", step.brief()),
        }
    }

    /// Run a read-only local query (git) that decides the plan itself, in
    /// dry runs too, without printing it: it is not one of the pipeline's steps.
    pub fn query_local(&self, step: &Step) -> Result<String> {
        self.capture(step)
            .map_err(|(why, _)| anyhow!("`{step}` failed: {why}"))
    }

    /// Whether each tool can be found on `PATH`: checked before the first side
    /// effect, so a missing tool fails a run before it changes anything. A
    /// dry run runs no tool, so it needs none.
    pub fn require_tools(&self, tools: &[Tool]) -> Result<()> {
        if self.dry_run {
            return Ok(());
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        let found = |program| std::env::split_paths(&path).any(|dir| dir.join(program).is_file());
        let missing: Vec<String> = tools
            .iter()
            .filter(|tool| !found(tool.program))
            .map(|tool| format!("`{}` is not on PATH ({})", tool.program, tool.install))
            .collect();
        ensure!(missing.is_empty(), "{}", missing.join("; "));
        Ok(())
    }

    fn shell(&self) -> Result<Shell> {
        let sh = Shell::new()?;
        sh.change_dir(&self.root);
        Ok(sh)
    }

    /// A step's stdout, or why it failed: its stderr, else its exit status;
    /// and its exit code. Stopped after the read timeout, unless unbounded.
    fn capture(&self, step: &Step) -> Result<String, (String, Option<i32>)> {
        let sh = self.shell().map_err(|err| (err.to_string(), None))?;
        let (program, args) = (&step.program, &step.args);
        let child = Command::from(cmd!(sh, "{program} {args...}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| (format!("could not start `{program}`: {err}"), None))?;
        let deadline = (!step.unbounded).then(|| Instant::now() + self.read_timeout);
        let ended =
            deadline::read_to_end(child, deadline).map_err(|err| (err.to_string(), None))?;
        let (status, stdout, stderr) = match ended {
            Ended::Exited {
                status,
                stdout,
                stderr,
            } => (status, stdout, stderr),
            Ended::Stopped { stderr } => {
                let said = match stderr.lines().map(str::trim).rfind(|line| !line.is_empty()) {
                    Some(line) => format!(" (its last words: {line})"),
                    None => String::new(),
                };
                let why = format!(
                    "gave no answer in {}s, so it was stopped{said}: a registry that takes the connection but never answers looks like this (if the step is only slow, raise --read-timeout or XTASK_READ_TIMEOUT)",
                    self.read_timeout.as_secs()
                );
                return Err((why, None));
            }
        };
        if status.success() {
            return Ok(stdout);
        }
        let stderr = stderr.trim().to_string();
        let why = if stderr.is_empty() {
            format!("exited with {status}")
        } else {
            stderr
        };
        Err((why, status.code()))
    }

    /// Where the output of `prefix`'s steps goes (`[gpu] ` writes
    /// `target/xtask/logs/gpu.log`): for callers that read it back.
    pub fn log_path(&self, prefix: &str) -> PathBuf {
        let label = prefix.trim().trim_start_matches('[').trim_end_matches(']');
        let name = if label.is_empty() { "xtask" } else { label };
        self.root.join(format!("target/xtask/logs/{name}.log"))
    }

    /// The log of `prefix`'s steps, emptied by this run's first step that
    /// writes it, whose announcement names it.
    fn log(&self, prefix: &str) -> Result<(PathBuf, File)> {
        let path = self.log_path(prefix);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        let mut begun = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        let first = begun.insert(path.clone());
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        if first {
            file.set_len(0)?;
            if !self.verbose {
                eprintln!("{prefix}(output: {})", path.display());
            }
        }
        Ok((path, file))
    }

    /// Copy a step's output into its log, and with `--verbose` to stderr;
    /// returns its last lines, for a failure. Blank lines are not printed.
    /// `secret`, the step's stdin, is masked wherever the tool repeats it.
    fn relay(
        &self,
        prefix: &str,
        output: impl Read,
        log: &mut File,
        secret: Option<&str>,
    ) -> VecDeque<String> {
        let mut tail = VecDeque::with_capacity(TAIL);
        for line in BufReader::new(output).split(b'\n').map_while(Result::ok) {
            let line = mask(&String::from_utf8_lossy(&line), secret);
            let line = line.trim_end();
            let _ = writeln!(log, "{line}");
            if line.trim().is_empty() {
                continue;
            }
            if self.verbose {
                eprintln!("{prefix}{line}");
            }
            if tail.len() == TAIL {
                tail.pop_front();
            }
            tail.push_back(line.to_string());
        }
        tail
    }
}

/// `f` over every item at once, one thread each, results in the items' order:
/// for independent registry calls, whose cost is mostly waiting.
pub fn concurrently<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .iter()
            .map(|item| scope.spawn(move || f(item)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a worker thread panicked"))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tools' own words: BuildKit's push to the rig without a login,
    /// ECR's answers to an expired token and to a role without push rights
    /// (through BuildKit and skopeo), go-containerregistry's (cosign); and
    /// failures a retry may cure.
    #[test]
    fn only_a_refusal_of_the_credentials_is_final() {
        for refused in [
            "ERROR: failed to push x: unexpected status from HEAD request to http://127.0.0.1:5001/v2/x/blobs/sha256:95: 401 Unauthorized",
            "failed to push x: denied: Your authorization token has expired. Reauthenticate and try again.",
            "writing blob: initiating layer upload to /v2/x/blobs/uploads/ in 1.dkr.ecr.us-east-1.amazonaws.com: denied: User: arn:aws:sts::1:assumed-role/ci is not authorized to perform: ecr:InitiateLayerUpload",
            "PUT https://1.dkr.ecr.us-east-1.amazonaws.com/v2/x/manifests/sha256-1.sig: UNAUTHORIZED: authentication required",
            "pull access denied, repository does not exist or may require authorization: authorization failed: no basic auth credentials",
        ] {
            assert!(refused_credentials(refused), "{refused}");
        }
        for transient in [
            "ERROR: failed to push: 429 Too Many Requests",
            "unexpected status from PUT request to https://x/v2/y/manifests/z: 503 Service Unavailable",
            "dial tcp 127.0.0.1:5001: connect: connection refused",
            "open /var/run/docker.sock: permission denied",
        ] {
            assert!(!refused_credentials(transient), "{transient}");
        }
    }

    /// A runner in a folder of its own, where its logs go.
    fn runner(dry_run: bool) -> (Runner, PathBuf) {
        static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let root = std::env::temp_dir().join(format!("xtask-exec-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        (Runner::new(&root, dry_run, false), root)
    }

    #[test]
    fn dry_run_runs_nothing() {
        let (runner, root) = runner(true);
        let missing = Step::new("definitely-not-a-program", ["x"]);
        runner.run("", &missing).unwrap();
        assert_eq!(runner.ask("", &missing), Reply::DryRun);
        assert_eq!(runner.read("", &missing).unwrap(), None);
        assert!(!root.join("target").exists(), "a dry run wrote a log");
    }

    #[test]
    fn an_error_cuts_a_long_command_and_names_the_log() {
        let long = Step::new(
            "sh",
            ["-c", &format!("echo {} >&2; exit 1", "x".repeat(200))],
        );
        // With --verbose too: the log is named wherever it can be opened.
        for verbose in [false, true] {
            let (_, root) = runner(false);
            let runner = Runner::new(&root, false, verbose);
            let err = runner.run("[gpu] ", &long).unwrap_err().to_string();
            let command = long.to_string();
            let cut = format!(
                "`{}…` exited with exit status: 1: {}",
                &command[..100],
                "x".repeat(200)
            );
            assert!(err.starts_with(&cut), "{err}");
            let log = root.join("target/xtask/logs/gpu.log");
            assert!(
                err.contains(&format!("its output: {}", log.display())),
                "{err}"
            );
        }
        let short = Step::new("docker", ["push", "app:latest"]);
        assert_eq!(short.brief(), "docker push app:latest");
        // Cut between characters, never inside one: the 100th is `é`, two
        // bytes (the argument is quoted, for its `é`).
        let wide = Step::new("echo", [format!("{}é{}", "x".repeat(93), "y".repeat(10))]);
        assert_eq!(wide.brief(), format!("echo '{}é…", "x".repeat(93)));
    }

    #[test]
    fn a_failed_step_names_the_command_and_its_log() {
        let (runner, root) = runner(false);
        let step = Step::new("sh", ["-c", "echo building; echo broken >&2; exit 3"]);
        let err = runner.run("[gpu] ", &step).unwrap_err().to_string();
        let log = root.join("target/xtask/logs/gpu.log");
        assert!(err.contains("exited with exit status: 3"), "{err}");
        assert!(err.contains(&log.display().to_string()), "{err}");
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            format!("$ {step}\nbuilding\nbroken\n")
        );
    }

    #[test]
    fn the_log_keeps_every_line_and_a_failure_shows_the_last_that_say_something() {
        let (runner, root) = runner(false);
        let (_, mut log) = runner.log("[x] ").unwrap();
        let output: String = (1..=30).map(|i| format!("line {i}\n\n")).collect();
        let tail = runner.relay("[x] ", output.as_bytes(), &mut log, None);
        let expected: Vec<String> = (11..=30).map(|i| format!("line {i}")).collect();
        assert_eq!(tail, expected);
        let logged = std::fs::read_to_string(root.join("target/xtask/logs/x.log")).unwrap();
        assert_eq!(logged, output);
    }

    #[test]
    fn a_failed_query_answers_with_the_tools_stderr() {
        let (runner, _) = runner(false);
        let step = Step::new("ls", ["/definitely/not/here"]);
        match runner.ask("", &step) {
            Reply::Failed { why, .. } => assert!(why.contains("No such file"), "{why}"),
            other => panic!("{other:?}"),
        }
        let err = runner.read("", &step).unwrap_err().to_string();
        assert!(
            err.starts_with("`ls /definitely/not/here` failed: "),
            "{err}"
        );
    }

    /// A read that never ends is stopped at the deadline and says so, unless
    /// it is unbounded; one that ends in time keeps all of its output, however large (both
    /// streams are drained while it runs).
    #[test]
    fn a_read_past_its_deadline_is_stopped_and_named() {
        let (runner, _) = runner(false);
        let runner = runner.with_read_timeout(Duration::from_secs(1));
        let started = Instant::now();
        match runner.ask("", &Step::new("sleep", ["30"])) {
            Reply::Failed { why, code: None } => {
                assert!(
                    why.starts_with("gave no answer in 1s, so it was stopped"),
                    "{why}"
                );
                assert!(
                    why.ends_with("raise --read-timeout or XTASK_READ_TIMEOUT)"),
                    "{why}"
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(30), "never stopped");
        // What it said before it went quiet names where it hung.
        let quiet = Step::new("sh", ["-c", "echo 'reading prod' >&2; exec sleep 30"]);
        match runner.ask("", &quiet) {
            Reply::Failed { why, code: None } => assert!(
                why.starts_with(
                    "gave no answer in 1s, so it was stopped (its last words: reading prod): "
                ),
                "{why}"
            ),
            other => panic!("{other:?}"),
        }
        // A tool that closes its streams and lives on is stopped too.
        let started = Instant::now();
        let closed = Step::new("sh", ["-c", "exec >&- 2>&-; exec sleep 30"]);
        match runner.ask("", &closed) {
            Reply::Failed { why, code: None } => {
                assert!(
                    why.starts_with("gave no answer in 1s, so it was stopped: "),
                    "{why}"
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(30), "never stopped");
        // An unbounded read (a smoke check that pulls the image) is not.
        let slow = Step::new("sh", ["-c", "sleep 2; echo done"]).unbounded();
        assert_eq!(runner.ask("", &slow), Reply::Out("done\n".into()));
        // Time enough under any load: a full pipe would block it forever.
        let runner = runner.with_read_timeout(Duration::from_secs(60));
        let chatty = Step::new("sh", ["-c", "seq 200000; seq 100000 >&2; exit 0"]);
        match runner.ask("", &chatty) {
            Reply::Out(out) => assert_eq!(out.lines().count(), 200000),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn secret_flows_through_stdin() {
        let (runner, _) = runner(false);
        let step = Step::new("grep", ["-q", "^hunter2$"])
            .with_secret_stdin(Step::new("echo", ["hunter2"]));
        runner.run("", &step).unwrap();
    }

    #[test]
    fn missing_tool_is_named_with_its_install_hint() {
        let (runner, _) = runner(false);
        let err = runner
            .require_tools(&[Tool {
                program: "no-such-tool-xyz",
                install: "apt install xyz",
            }])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`no-such-tool-xyz` is not on PATH (apt install xyz)"
        );
    }
}
