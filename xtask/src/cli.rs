//! The command line: one binary, tasks as subcommands. Doc comments are the
//! help text.

use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::context::ContextArgs;
use crate::error::Usage;
use crate::target::{Env, Flags};

/// Build, push and promote this repository's GPU and CPU images.
#[derive(Parser, Debug)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    version,
    propagate_version = true
)]
pub struct Cli {
    /// Print every external command instead of running it
    #[arg(long, global = true)]
    pub dry_run: bool,

    /// Show the tools' own output (build steps, push progress), not only their log files
    #[arg(long, short, global = true)]
    pub verbose: bool,

    /// Repository root holding .aws-architecture [default: $XTASK_ROOT, else
    /// the nearest directory upwards from here that has one]
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Stop a read-only step (a registry lookup, a signature check, a
    /// docker query) that has not answered after this many seconds
    #[arg(
        long,
        global = true,
        value_name = "SECONDS",
        env = "XTASK_READ_TIMEOUT",
        default_value_t = crate::exec::DEFAULT_READ_TIMEOUT,
        value_parser = clap::value_parser!(u64).range(1..=crate::exec::MAX_READ_TIMEOUT)
    )]
    pub read_timeout: u64,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show each variant's platform, runner, Dockerfile, tags and labels
    Plan(PlanArgs),
    /// Print the GitHub Actions build matrix, one leg per variant
    Matrix(MatrixArgs),
    /// Build the images with BuildKit, each for its own platform
    Build(BuildArgs),
    /// Push already-built images to a registry
    Push(PushArgs),
    /// Log Docker in to an environment's registry through the aws CLI
    Login(LoginArgs),
    /// Copy a release's images from stage to prod, verified and all-or-nothing
    ///
    /// It runs for a published release (`--context release`) or a manual
    /// re-promote (`--context dispatch`); under GitHub Actions the event
    /// decides. The other contexts are refused.
    Promote(PromoteArgs),
    /// Remove this repository's local images (not other projects')
    Clean(TargetArgs),
    /// Play the whole pipeline, dev to stage to prod, on the local rig
    Rehearse(RehearseArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// Which variant(s) to act on.
#[derive(Args, Clone, Debug)]
pub struct VariantArgs {
    /// A variant from .aws-architecture, or `all`
    #[arg(long, default_value = "all", value_name = "VARIANT")]
    pub variant: String,
}

/// Where images go.
#[derive(Args, Clone, Debug)]
pub struct TargetArgs {
    /// Environment whose registry to use (build and push write dev or stage; only promote writes prod)
    #[arg(long = "env", value_enum, default_value = "dev")]
    pub env: Env,
    /// Registry host [default: $ECR_REGISTRY_<ENV>]
    #[arg(long, value_name = "HOST")]
    pub registry: Option<String>,
    /// Repository name [default: $ECR_REPOSITORY_<ENV>, $ECR_REPOSITORY, batch-probe]
    #[arg(long, value_name = "NAME")]
    pub repository: Option<String>,
}

impl TargetArgs {
    pub fn flags(&self) -> Flags<'_> {
        Flags {
            prefix: "",
            registry: self.registry.as_deref(),
            repository: self.repository.as_deref(),
        }
    }
}

/// How to log in: the aws CLI's usual settings, overridable here.
#[derive(Args, Clone, Debug)]
pub struct AwsArgs {
    /// AWS region for the ECR login [default: from the registry host, or the aws CLI's settings]
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// AWS profile for the ECR login [default: the aws CLI's settings]
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,
    /// Reuse the existing Docker login instead of logging in through the aws CLI
    #[arg(long)]
    pub no_login: bool,
}

/// How a stage push is signed.
#[derive(Args, Clone, Debug)]
pub struct SigningArgs {
    /// Sign stage pushes with this key: a cosign key file (its password in
    /// $COSIGN_PASSWORD) or a KMS key such as awskms:///alias/NAME; dev
    /// pushes are not signed
    #[arg(long, env = "COSIGN_KEY", value_name = "KEY", hide_env_values = true)]
    pub signing_key: Option<String>,
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub variant: VariantArgs,
    #[command(flatten)]
    pub context: ContextArgs,
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// The references shown are in this registry, when one is configured
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Args, Debug)]
pub struct MatrixArgs {
    /// Also append `matrix=<json>` to $GITHUB_OUTPUT
    #[arg(long)]
    pub github_output: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Cache {
    /// For pushed builds under GitHub Actions a registry cache per variant and
    /// architecture, where the builder can export one; the builder's own cache otherwise
    Auto,
    /// A registry cache per variant and architecture, next to the images
    Registry,
    /// The builder's own local cache only
    Local,
    /// No cache at all: every step is built again, and a push rebuilds
    /// an image the registry already holds for this commit
    None,
}

#[derive(Args, Debug)]
pub struct BuildArgs {
    // Which images, where they go, and the login and signing of a push:
    // the same flags as `push`.
    #[command(flatten)]
    pub images: PushArgs,
    /// Push every tag to the environment's registry after building
    #[arg(long)]
    pub push: bool,
    /// Build cache
    #[arg(long, value_enum, default_value = "auto", env = "XTASK_CACHE")]
    pub cache: Cache,
    /// After building, start each image and run its `check` (foreign
    /// architectures through qemu, when binfmt has it)
    #[arg(long, env = "XTASK_SMOKE", value_parser = parse_switch)]
    pub smoke: bool,
    /// BuildKit's progress output: `plain` for people, `rawjson` for tools
    /// that read which steps were cached
    #[arg(long, value_enum, default_value = "plain", env = "XTASK_PROGRESS")]
    pub progress: Progress,
    /// Under GitHub Actions, warn when the engine's data root has less free
    /// space than this, in GB (10^9 bytes)
    #[arg(
        long,
        value_name = "GB",
        env = "XTASK_MIN_FREE_GB",
        default_value_t = crate::disk::DEFAULT_MIN_FREE_GB,
        value_parser = clap::value_parser!(u64).range(..=crate::disk::MAX_MIN_FREE_GB)
    )]
    pub min_free_gb: u64,
    /// Network for the Dockerfiles' RUN steps [default: BuildKit's]
    #[arg(long, value_enum, value_name = "MODE", env = "XTASK_NETWORK")]
    pub network: Option<Network>,
    /// A Dockerfile build argument, e.g. RUNTIME_IMAGE=... (repeatable; in the
    /// variable, one per line); `{arch}` in the value becomes each variant's
    /// architecture
    #[arg(
        long = "build-arg",
        value_name = "KEY=VALUE",
        value_parser = parse_build_arg,
        env = "XTASK_BUILD_ARGS",
        value_delimiter = '\n'
    )]
    pub build_args: Vec<(String, String)>,
}

/// A switch's variable as CI writes it: `true`, `1`, `yes` or `on`, or their
/// opposites.
fn parse_switch(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("expected true or false (or 1/0, yes/no, on/off)".into()),
    }
}

fn parse_build_arg(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        // The image would then report another variant or commit than its
        // tags and labels name.
        Some((key, _)) if crate::docker::SET_BY_XTASK.contains(&key) => Err(format!(
            "{key} is set by cargo xtask from the variant and the commit; leave it out"
        )),
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!(
            "expected KEY=VALUE, e.g. RUNTIME_IMAGE=debian:bookworm-slim, found \"{text}\""
        )),
    }
}

/// BuildKit's `--progress`, line-based either way so each line can carry its
/// variant's prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Progress {
    /// Plain text, one line per event
    Plain,
    /// One JSON object per line (BuildKit's SolveStatus): which step started,
    /// finished, or came from the cache
    Rawjson,
}

/// BuildKit's `--network` for RUN steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Network {
    /// The engine's default bridge
    Default,
    /// No network: every dependency must already be in the build image
    None,
    /// The host's network (on the test rig: loopback only)
    Host,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    #[command(flatten)]
    pub variant: VariantArgs,
    #[command(flatten)]
    pub context: ContextArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(flatten)]
    pub signing: SigningArgs,
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
}

#[derive(Args, Debug)]
pub struct PromoteArgs {
    #[command(flatten)]
    pub context: ContextArgs,
    /// Stage registry host [default: $ECR_REGISTRY_STAGE]
    #[arg(long, value_name = "HOST")]
    pub stage_registry: Option<String>,
    /// Prod registry host [default: $ECR_REGISTRY_PROD]
    #[arg(long, value_name = "HOST")]
    pub prod_registry: Option<String>,
    /// Stage repository [default: $ECR_REPOSITORY_STAGE, $ECR_REPOSITORY, batch-probe]
    #[arg(long, value_name = "NAME")]
    pub stage_repository: Option<String>,
    /// Prod repository [default: $ECR_REPOSITORY_PROD, $ECR_REPOSITORY, batch-probe]
    #[arg(long, value_name = "NAME")]
    pub prod_repository: Option<String>,
    /// AWS profile for reading stage [default: $STAGE_AWS_PROFILE, else --profile]
    #[arg(long, value_name = "PROFILE")]
    pub stage_profile: Option<String>,
    /// AWS profile for writing prod [default: $PROD_AWS_PROFILE, else --profile]
    #[arg(long, value_name = "PROFILE")]
    pub prod_profile: Option<String>,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// The branch a release commit must be on [default: the event payload's
    /// repository.default_branch under GitHub Actions, else origin/HEAD]
    #[arg(long, value_name = "BRANCH")]
    pub default_branch: Option<String>,
    /// Verify stage's and prod's signatures with this public key: a file, or
    /// the stage signing key in KMS (awskms:///alias/NAME)
    #[arg(long, env = "COSIGN_PUBLIC_KEY", value_name = "KEY", default_value = crate::cosign::DEFAULT_PUBLIC_KEY)]
    pub verify_key: String,
}

impl PromoteArgs {
    /// One side's target flags, spelled `--stage-...` or `--prod-...`.
    pub fn flags(&self, env: Env) -> Flags<'_> {
        let (prefix, registry, repository) = match env {
            Env::Prod => ("prod-", &self.prod_registry, &self.prod_repository),
            _ => ("stage-", &self.stage_registry, &self.stage_repository),
        };
        Flags {
            prefix,
            registry: registry.as_deref(),
            repository: repository.as_deref(),
        }
    }

    /// How to log in to one side: its own profile when one is named,
    /// else the shared `--profile`.
    pub fn aws(&self, env: Env) -> AwsArgs {
        let (flag, var) = match env {
            Env::Prod => (&self.prod_profile, "PROD_AWS_PROFILE"),
            _ => (&self.stage_profile, "STAGE_AWS_PROFILE"),
        };
        AwsArgs {
            profile: non_empty(flag.clone())
                .or_else(|| env_var(var))
                .or_else(|| self.aws.profile.clone()),
            ..self.aws.clone()
        }
    }
}

#[derive(Args, Debug)]
pub struct RehearseArgs {
    /// Run each stage's real workflow file under act instead of its xtask command
    #[arg(long)]
    pub workflows: bool,
    /// Leave the rig running afterwards, to inspect the registries
    #[arg(long)]
    pub keep: bool,
    /// Release a commit that never reached main: the release stage must fail
    #[arg(long)]
    pub broken_release: bool,
    /// Repository name in the rig's registries [default: rehearsal-<time>]
    #[arg(long, value_name = "NAME")]
    pub repository: Option<String>,
}

/// Every argument of `command` and of its subcommands.
fn all_arguments(command: &clap::Command) -> Vec<clap::Arg> {
    let own = command.get_arguments().cloned();
    own.chain(command.get_subcommands().flat_map(all_arguments))
        .collect()
}

/// The command line. Help, `--version` and bad flags end the process as
/// clap ends it, except a bad value that came from a flag's variable
/// (`XTASK_NETWORK=fast`): clap would blame the flag, which was never typed,
/// so that is bad input naming the variable.
pub fn parse() -> Result<Cli, Usage> {
    Cli::try_parse().map_err(|err| {
        // Lossy: `--root` may be a path that is not UTF-8, which clap handles.
        let args: Vec<String> = std::env::args_os()
            .skip(1)
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        Usage(bad_variable(&err, &args).unwrap_or_else(|| err.exit()))
    })
}

/// What to say when clap's `err` is about a value that `args` did not give,
/// so it came from the flag's variable.
fn bad_variable(err: &clap::Error, args: &[String]) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    use std::error::Error as _;
    let context = |kind| match err.get(kind) {
        Some(ContextValue::String(text)) => Some(text.clone()),
        Some(ContextValue::Strings(texts)) => Some(texts.join(", ")),
        _ => None,
    };
    if ![ErrorKind::InvalidValue, ErrorKind::ValueValidation].contains(&err.kind()) {
        return None;
    }
    // "--network <MODE>": the flag, then its value's placeholder.
    let arg = context(ContextKind::InvalidArg)?;
    let flag = arg.split(' ').next()?;
    if args
        .iter()
        .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
    {
        return None;
    }
    let variable = all_arguments(&Cli::command())
        .iter()
        .filter(|a| a.get_long().is_some_and(|long| flag == format!("--{long}")))
        .find_map(|a| Some(a.get_env()?.to_string_lossy().into_owned()))?;
    let value = std::env::var_os(&variable)?.to_string_lossy().into_owned();
    let why = match (context(ContextKind::ValidValue), err.source()) {
        (Some(valid), _) => format!("possible values: {valid}"),
        (None, Some(source)) => source.to_string(),
        (None, None) => "not a value it takes".into(),
    };
    let invalid = context(ContextKind::InvalidValue).unwrap_or_default();
    Some(format!(
        "{variable}={value:?} (the variable behind {flag}) is not valid: invalid value '{invalid}': {why}; fix {variable} or unset it"
    ))
}

/// The variables the flags fall back to (`XTASK_NETWORK` for `--network`...),
/// as parsing should see them: empty counts as unset (clap would take "" as
/// the flag's value and blame the flag), and a list's blank lines
/// (`XTASK_BUILD_ARGS`, one per line) are no items, as a YAML block (`|`)
/// always ends with one. Called first thing in `main`, before any thread.
pub fn normalize_flag_variables() {
    for arg in all_arguments(&Cli::command()) {
        let Some(name) = arg.get_env() else { continue };
        let Some(value) = std::env::var_os(name) else {
            continue;
        };
        let value = match (arg.get_value_delimiter(), value.to_str()) {
            (Some(delimiter), Some(text)) => {
                let items: Vec<&str> = text
                    .split(delimiter)
                    .filter(|item| !item.trim().is_empty())
                    .collect();
                items.join(&delimiter.to_string()).into()
            }
            _ => value,
        };
        if value.is_empty() {
            std::env::remove_var(name);
        } else {
            std::env::set_var(name, value);
        }
    }
}

/// A value as its flag spells it (`--progress rawjson`): clap's own name for it.
pub fn flag_value(value: impl ValueEnum) -> String {
    let value = value.to_possible_value().expect("no value is skipped");
    value.get_name().to_string()
}

/// An environment variable's value; set but empty counts as unset, so
/// `ECR_REPOSITORY_PROD=` falls back as if it were not there, never to "".
pub fn env_var(key: &str) -> Option<String> {
    non_empty(std::env::var(key).ok())
}

pub fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_flag_variable_is_found_for_the_empty_rule() {
        let arguments = all_arguments(&Cli::command());
        let names: Vec<_> = arguments.iter().filter_map(|arg| arg.get_env()).collect();
        for name in [
            "XTASK_BUILD_ARGS",
            "XTASK_NETWORK",
            "XTASK_SMOKE",
            "XTASK_MIN_FREE_GB",
        ] {
            assert!(names.iter().any(|n| *n == name), "{name} in {names:?}");
        }
        assert_eq!(non_empty(Some(String::new())), None);
        assert_eq!(non_empty(Some("x".into())), Some("x".into()));
    }
}
