//! `login`: Docker logs in to an environment's registry with an ECR password
//! from the aws CLI, passed on stdin, never on a command line.

use anyhow::{bail, ensure, Result};

use crate::cli::{AwsArgs, LoginArgs};
use crate::error::Usage;
use crate::exec::{self, Runner, SecretSourceFailed};
use crate::step::Step;
use crate::target::{Env, Target};
use crate::{aws, docker};

/// The login flags, refused where no login happens (a build without
/// `--push` or `--cache registry`): whoever typed them expects them to
/// matter.
pub fn refuse_unused(aws: &AwsArgs) -> Result<()> {
    let flags = [
        ("--region", non_blank(aws.region.as_deref()).is_some()),
        ("--profile", non_blank(aws.profile.as_deref()).is_some()),
        ("--no-login", aws.no_login),
    ];
    match flags.into_iter().find(|(_, given)| *given) {
        Some((flag, _)) => bail!(Usage(format!(
            "{flag} is for the registry login, and a build without --push or --cache registry logs in nowhere; add --push (or --cache registry), or drop {flag}"
        ))),
        None => Ok(()),
    }
}

pub fn run(args: LoginArgs, runner: &Runner) -> Result<()> {
    ensure!(!args.aws.no_login, Usage(
        "login --no-login would do nothing: --no-login is for build, push and promote, to reuse the login this command makes; leave it out".into()
    ));
    let target = super::target(&args.target)?;
    check_region(&target, &args.aws, args.target.env)?;
    runner.require_tools(&[docker::TOOL, aws::TOOL])?;
    login(runner, &target, &args.aws, args.target.env)
}

/// The login step for `target`: the region comes from a flag, else from the
/// ECR host name, else the aws CLI's settings.
pub fn login_step(target: &Target, region: Option<&str>, profile: Option<&str>) -> Step {
    let region = non_blank(region).map(str::trim).or(target.ecr_region());
    let profile = non_blank(profile).map(str::trim);
    docker::login(&target.registry, aws::ecr_password(region, profile))
}

/// An empty or blank value (`--profile "$UNSET"`) counts as not given.
fn non_blank(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.trim().is_empty())
}

/// `--region` or `--profile` beside `--no-login`, which would do nothing
/// with them: bad input, checked before anything runs.
/// `more` are a command's own such flags (promote's `--stage-profile`).
pub fn refuse_beside_no_login(
    aws: &AwsArgs,
    more: &[(&str, &Option<String>)],
) -> Result<(), Usage> {
    if !aws.no_login {
        return Ok(());
    }
    let typed = [("--region", &aws.region), ("--profile", &aws.profile)];
    match typed.iter().chain(more).find(|(_, value)| non_blank(value.as_deref()).is_some()) {
        Some((flag, _)) => Err(Usage(format!(
            "{flag} is for the registry login, and --no-login skips it; drop {flag}, or --no-login to log in through the aws CLI"
        ))),
        None => Ok(()),
    }
}

/// A `--region` that is not the ECR host's own is bad input: the password
/// the aws CLI gives logs in to that region's registries only, so the login
/// would be refused, after whatever ran before it: each command checks it
/// before its first step.
pub fn check_region(target: &Target, aws: &AwsArgs, env: Env) -> Result<(), Usage> {
    let region = non_blank(aws.region.as_deref()).map(str::trim);
    match (region, target.ecr_region()) {
        (Some(given), Some(host)) if !aws.no_login && given != host => Err(Usage(format!(
            "--region {given} is not the region of the {env} registry {} ({host}): an ECR password logs in to one region's registries only; leave --region out, the host names its region",
            target.registry
        ))),
        _ => Ok(()),
    }
}

/// Log in unless told to reuse an existing login.
pub fn login(runner: &Runner, target: &Target, aws: &AwsArgs, env: Env) -> Result<()> {
    let registry = &target.registry;
    if aws.no_login {
        // Whether Docker holds credentials for it is the credential
        // store's to say, not xtask's: a refusal names the login to check.
        eprintln!("not logging in to {registry} (--no-login): Docker's own credentials for it are used, if it has any");
        return Ok(());
    }
    let step = login_step(target, aws.region.as_deref(), aws.profile.as_deref());
    // Its own prefix and log: promote's two logins run at once.
    runner.run(&exec::prefix(&env.to_string()), &step).map_err(|err| {
        // Blame what failed: the aws CLI's password, or the registry's
        // answer to docker login (down, unknown host, login refused).
        let why = if err.is::<SecretSourceFailed>() {
            "the aws CLI gave no ECR password; check the AWS credentials (profile, role, region) for that account"
        } else {
            "the registry did not accept docker login (its answer follows); check that the registry host is right and up, and that this account may use it"
        };
        err.context(format!("login to the {env} registry {registry} failed: {why}"))
    })
}
