//! Commands as data, and the one executor that runs them.
//!
//! Every external command the tasks run is first built as a [`Step`]: a program,
//! its arguments and environment. The [`Runner`] prints each step before running
//! it, and with `--dry-run` prints it and runs nothing, so the dry-run output is
//! exactly the list of commands a real run executes.
//!
//! Secrets never become arguments: a password travels from one step's stdout
//! into the next step's stdin (see [`Step::with_secret_stdin`]), and the printed
//! form shows only the commands, never the value.

use std::fmt;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

/// One external command, as plain data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub program: String,
    pub args: Vec<String>,
    /// A step whose stdout is a secret that becomes this step's stdin; it is
    /// run silently and its output never printed or logged.
    pub secret_stdin: Option<Box<Step>>,
}

impl Step {
    pub fn new(program: &str, args: impl IntoIterator<Item = impl Into<String>>) -> Step {
        Step {
            program: program.to_string(),
            args: args.into_iter().map(Into::into).collect(),
            secret_stdin: None,
        }
    }

    /// Feed `source`'s stdout into this step's stdin, as `source | self` would,
    /// without the value ever being printed.
    pub fn with_secret_stdin(mut self, source: Step) -> Step {
        self.secret_stdin = Some(Box::new(source));
        self
    }

    /// The process to spawn, built with xshell's `cmd!` (one argument per
    /// value, no shell) in the shell's directory and environment.
    fn command(&self, sh: &Mutex<Shell>) -> Command {
        let sh = sh.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let program = &self.program;
        let args = &self.args;
        cmd!(sh, "{program} {args...}").quiet().into()
    }
}

impl fmt::Display for Step {
    /// Shell-quoted, so a printed step can be pasted into a terminal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(source) = &self.secret_stdin {
            write!(f, "{source} | ")?;
        }
        f.write_str(&quote(&self.program))?;
        for arg in &self.args {
            write!(f, " {}", quote(arg))?;
        }
        Ok(())
    }
}

/// Quote an argument for a POSIX shell, only when it needs it.
fn quote(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// Runs steps, or with `dry_run` only prints them. Shared by the threads
/// that build variants concurrently.
pub struct Runner {
    sh: Mutex<Shell>,
    pub dry_run: bool,
}

/// Serialises output lines from concurrent steps so prefixed lines never interleave.
static OUTPUT: Mutex<()> = Mutex::new(());

impl Runner {
    pub fn new(sh: Shell, dry_run: bool) -> Runner {
        Runner {
            sh: Mutex::new(sh),
            dry_run,
        }
    }

    /// Print a progress line to stderr, never stdout: stdout carries results.
    pub fn note(&self, prefix: &str, line: &str) {
        let _guard = OUTPUT.lock();
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{prefix}{line}");
    }

    fn announce(&self, prefix: &str, step: &Step) {
        self.note(prefix, &format!("$ {step}"));
    }

    /// Run a step that changes something. Its output goes to stderr, each line
    /// prefixed with `prefix` (for example `[gpu] `), so concurrent steps stay
    /// readable.
    pub fn run(&self, prefix: &str, step: &Step) -> Result<()> {
        self.announce(prefix, step);
        if self.dry_run {
            return Ok(());
        }
        let stdin = self.secret_input(step)?;
        let mut command = step.command(&self.sh);
        command
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .with_context(|| format!("could not start `{}`", step.program))?;
        if let (Some(secret), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(secret.as_bytes())?;
        }
        let (out, err) = (child.stdout.take(), child.stderr.take());
        std::thread::scope(|scope| {
            if let Some(out) = out {
                scope.spawn(|| self.relay(prefix, out));
            }
            if let Some(err) = err {
                scope.spawn(|| self.relay(prefix, err));
            }
        });
        let status = child.wait()?;
        if !status.success() {
            bail!("`{step}` exited with {status}");
        }
        Ok(())
    }

    /// Run a step up to `attempts` times, waiting longer after each failure:
    /// for registry calls, where a dropped connection or a 5xx is worth a retry.
    pub fn run_with_retry(&self, prefix: &str, step: &Step, attempts: u32) -> Result<()> {
        let mut attempt = 1;
        loop {
            match self.run(prefix, step) {
                Ok(()) => return Ok(()),
                Err(err) if attempt < attempts => {
                    let wait = Duration::from_secs(2u64.pow(attempt));
                    self.note(
                        prefix,
                        &format!(
                            "attempt {attempt}/{attempts} failed ({err:#}); retrying in {wait:?}"
                        ),
                    );
                    std::thread::sleep(wait);
                    attempt += 1;
                }
                Err(err) => {
                    return Err(err.context(format!("gave up after {attempts} attempts")));
                }
            }
        }
    }

    /// Run a read-only query and return its stdout. In a dry run the query is
    /// printed and `None` returned: callers plan for "unknown".
    pub fn read(&self, prefix: &str, step: &Step) -> Result<Option<String>> {
        self.announce(prefix, step);
        if self.dry_run {
            return Ok(None);
        }
        self.query(step).map(Some)
    }

    /// Like [`Runner::read`] but a failure is an answer (`Ok(Err(stderr))`), for
    /// queries such as "does this tag exist".
    pub fn probe(&self, prefix: &str, step: &Step) -> Result<Option<Result<String, String>>> {
        self.announce(prefix, step);
        if self.dry_run {
            return Ok(None);
        }
        let output = self.output(step)?;
        Ok(Some(if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
        }))
    }

    /// Run a read-only local query (git) that decides the plan itself, in
    /// dry runs too, without printing it: it is not one of the pipeline's steps.
    pub fn query_local(&self, step: &Step) -> Result<String> {
        self.query(step)
    }

    fn output(&self, step: &Step) -> Result<Output> {
        step.command(&self.sh)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("could not start `{}`", step.program))
    }

    fn query(&self, step: &Step) -> Result<String> {
        let output = self.output(step)?;
        if !output.status.success() {
            bail!(
                "`{step}` exited with {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Run the secret-producing step, if any, without echo; its output is
    /// returned only to be written into a pipe.
    fn secret_input(&self, step: &Step) -> Result<Option<String>> {
        let Some(source) = &step.secret_stdin else {
            return Ok(None);
        };
        let output = self.output(source)?;
        if !output.status.success() {
            // stderr of a password command carries the reason (expired token,
            // unknown profile), never the password, which goes to stdout.
            bail!(
                "`{source}` exited with {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(Some(
            String::from_utf8_lossy(&output.stdout).trim().to_string(),
        ))
    }

    fn relay(&self, prefix: &str, stream: impl std::io::Read) {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            self.note(prefix, &line);
        }
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

/// An external program, and how to install it when it is missing.
#[derive(Clone, Copy, Debug)]
pub struct Tool {
    pub program: &'static str,
    pub install: &'static str,
}

/// Whether each tool can be found on `PATH`: checked before the first side
/// effect, so a missing tool fails a run before it changes anything.
pub fn require_tools(tools: &[Tool]) -> Result<()> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let missing: Vec<String> = tools
        .iter()
        .filter(|tool| !std::env::split_paths(&path).any(|dir| dir.join(tool.program).is_file()))
        .map(|tool| format!("`{}` is not on PATH ({})", tool.program, tool.install))
        .collect();
    if !missing.is_empty() {
        bail!("{}", missing.join("; "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_only_what_needs_it() {
        let step = Step::new("docker", ["build", "--label", "a=b c", "it's", "."]);
        assert_eq!(
            step.to_string(),
            r#"docker build --label 'a=b c' 'it'\''s' ."#
        );
    }

    #[test]
    fn display_shows_pipe_never_a_value() {
        let login = Step::new(
            "docker",
            ["login", "--username", "AWS", "--password-stdin", "r"],
        )
        .with_secret_stdin(Step::new("aws", ["ecr", "get-login-password"]));
        assert_eq!(
            login.to_string(),
            "aws ecr get-login-password | docker login --username AWS --password-stdin r"
        );
    }

    #[test]
    fn dry_run_runs_nothing() {
        let runner = Runner::new(Shell::new().unwrap(), true);
        let missing = Step::new("definitely-not-a-program", ["x"]);
        runner.run("", &missing).unwrap();
        assert_eq!(runner.read("", &missing).unwrap(), None);
    }

    #[test]
    fn failed_step_names_the_command() {
        let runner = Runner::new(Shell::new().unwrap(), false);
        let err = runner
            .run("", &Step::new("false", Vec::<String>::new()))
            .unwrap_err();
        assert!(err.to_string().contains("`false` exited with"), "{err}");
    }

    #[test]
    fn secret_flows_through_stdin() {
        let runner = Runner::new(Shell::new().unwrap(), false);
        let step = Step::new("grep", ["-q", "^hunter2$"])
            .with_secret_stdin(Step::new("echo", ["hunter2"]));
        runner.run("", &step).unwrap();
    }

    #[test]
    fn missing_tool_is_named_with_its_install_hint() {
        let err = require_tools(&[Tool {
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
