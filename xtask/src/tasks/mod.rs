//! One module per subcommand, and what they share: loading
//! `.aws-architecture`, computing the plan, logging in.

mod build;
mod clean;
mod login;
mod plan;
mod promote;
mod push;
pub mod rehearse;
mod rerun;
mod signatures;

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{ensure, Result};

use crate::arch::Architectures;
use crate::cli::{env_var, Command, TargetArgs, VariantArgs};
use crate::context::{self, ContextArgs, Purpose};
use crate::error::Usage;
use crate::exec::Runner;
use crate::plan::{Meta, Plan};
use crate::tags::Context;
use crate::target::{self, Env, Target};

pub fn dispatch(command: Command, runner: &Runner, root: &Path) -> Result<()> {
    match command {
        Command::Plan(args) => plan::plan(args, runner, root),
        Command::Matrix(args) => plan::matrix(args, root),
        Command::Build(args) => build::run(args, runner, root),
        Command::Push(args) => push::run(args, runner, root),
        Command::Login(args) => login::run(args, runner),
        Command::Promote(args) => promote::run(args, runner, root),
        Command::Clean(args) => clean::run(args, runner),
        Command::Rehearse(args) => rehearse::run(args, runner, root),
    }
}

/// `.aws-architecture`, or a bad-input error naming what to fix.
pub fn architectures(root: &Path) -> Result<Architectures> {
    Architectures::load(root).map_err(|msg| Usage(msg).into())
}

/// The environment's registry and repository, or a bad-input error.
pub fn target(args: &TargetArgs) -> Result<Target> {
    target::resolve(args.env, args.flags(), env_var).map_err(|msg| Usage(msg).into())
}

/// Where `build --push` and `push` send images: never prod, which only
/// promote writes, after it has checked stage's images and signatures.
fn push_target(args: &TargetArgs) -> Result<Target> {
    ensure!(
        args.env != Env::Prod,
        Usage("--env prod: prod is written only by `cargo xtask promote`, which copies stage's checked, signed images; build and push with --env dev or --env stage".into())
    );
    target(args)
}

/// The image name for a build: in the environment's registry when one is
/// configured, else the bare repository (a local-only build).
pub fn image_name(args: &TargetArgs) -> Result<String> {
    target::image_name(args.env, args.flags(), env_var).map_err(|msg| Usage(msg).into())
}

/// Everything a task needs to know before it runs anything: the selected
/// variants, their tags and labels; `push` is the environment they go to.
pub fn load_plan(
    runner: &Runner,
    root: &Path,
    variant: &VariantArgs,
    flags: &ContextArgs,
    image: &str,
    push: Option<Env>,
) -> Result<Plan> {
    let architectures = architectures(root)?;
    let selected = architectures
        .select(Some(&variant.variant))
        .map_err(Usage)?;
    let github = context::github_env()?;
    let context = context::load(flags, github.as_ref(), runner, Purpose::Build)?;
    // Stage holds the default branch's images, signed, which promote takes
    // to prod: a pull request's head is not that, and a release is promoted
    // from stage, never built into it.
    ensure!(
        push != Some(Env::Stage)
            || !matches!(context, Context::PullRequest { .. } | Context::Release { .. }),
        Usage(format!(
            "--env stage takes the default branch's images (--context push, dispatch or terminal), not a {}'s; push a pull request to dev (--env dev), and release with `cargo xtask promote`",
            context.describe()
        ))
    );
    let meta = Meta {
        source: crate::git::source_url(runner),
        created: crate::plan::rfc3339(created_epoch()?),
        title: image.rsplit('/').next().unwrap_or(image).to_string(),
    };
    crate::plan::plan(&selected, &context, &meta, image)
        .map_err(|why| context::tag_error(&context, flags, github.as_ref(), why).into())
}

/// `SOURCE_DATE_EPOCH` when set (reproducible builds), else now.
fn created_epoch() -> Result<u64> {
    let Some(text) = env_var("SOURCE_DATE_EPOCH") else {
        let since_1970 = SystemTime::now().duration_since(UNIX_EPOCH);
        return Ok(since_1970.map_or(0, |d| d.as_secs()));
    };
    // RFC 3339 has four-digit years: the end of 9999 is the last second.
    const LAST: u64 = 253_402_300_799;
    match text.trim().parse() {
        Ok(secs) if secs <= LAST => Ok(secs),
        _ => Err(Usage(format!(
            "SOURCE_DATE_EPOCH={text} is not a number of seconds since 1970 (at most {LAST}, the end of 9999); unset it, as the workflows do: the image is then dated now (README, \"Commands\")"
        ))
        .into()),
    }
}

/// The tools a push needs, checked before anything runs: docker, the aws
/// CLI unless the login is reused, cosign when the push is signed.
fn require_push_tools(runner: &Runner, login: bool, signing: bool) -> Result<()> {
    let mut tools = vec![crate::docker::TOOL];
    tools.extend(login.then_some(crate::aws::TOOL));
    tools.extend(signing.then_some(crate::cosign::TOOL));
    runner.require_tools(&tools)
}

/// Write `text` to stdout. A reader that stops reading (`| head`) ends the
/// output there, as for any command-line tool, not the run with a panic.
fn print_out(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(err).context("cannot write to stdout"))
        }
        _ => Ok(()),
    }
}

/// A digest cut to `sha256:` and its first 12 hex digits, for messages.
fn short(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

/// An error and its causes, as the text of a verdict.
fn message(err: anyhow::Error) -> String {
    format!("{err:#}")
}

/// What a dry run prints for a pushed image's digest, which it never reads.
const DRY_RUN_DIGEST: &str = "<digest>";

/// What to do about a registry read that got no answer to its question
/// (`why`, the tool's): see to the login and the role when the registry
/// refused the credentials, else `again`, a re-run once it answers.
fn unanswered(why: &str, again: &str) -> String {
    use crate::exec::{refused_credentials, CHECK_CREDENTIALS, REFUSED_CREDENTIALS};
    match refused_credentials(why) {
        true => format!("{REFUSED_CREDENTIALS}: {CHECK_CREDENTIALS}"),
        false => again.to_string(),
    }
}

/// The line of a tool's stderr that says why it failed: the last one that
/// is not blank, as skopeo and cosign log any warnings before their fatal
/// error.
fn reason(stderr: &str) -> &str {
    let mut lines = stderr.lines().map(str::trim);
    // A Go tool that panicked (cosign, on a KMS key that cannot sign) ends
    // with its stack; the panic's own line is the one that says why.
    if let Some(panic) = lines.clone().find(|line| line.starts_with("panic: ")) {
        return panic;
    }
    lines.rfind(|line| !line.is_empty()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::reason;

    #[test]
    fn the_reason_is_the_fatal_line_after_any_warnings() {
        let stderr = "level=warning msg=\"no creds\"\nlevel=fatal msg=\"unauthorized\"\n\n";
        assert_eq!(reason(stderr), "level=fatal msg=\"unauthorized\"");
        assert_eq!(reason(""), "");
        let panicked = "Using payload from: f\npanic: runtime error: index out of range [0] with length 0\n\ngoroutine 1 [running]:\nmain.main()\n\tgithub.com/sigstore/cosign/cmd/cosign/main.go:64 +0x44f\n";
        assert_eq!(
            reason(panicked),
            "panic: runtime error: index out of range [0] with length 0"
        );
    }
}
