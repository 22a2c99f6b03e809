//! `push`: push images already built into the local engine, every tag
//! (`latest-*` last) once each is checked to name one local image, and
//! report the digest the registry received.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};

use super::build::{report, Outcome};
use super::signatures;
use crate::cli::PushArgs;
use crate::cosign::Key;
use crate::error::Usage;
use crate::exec::{self, Reply, Runner};
use crate::plan::Image;
use crate::target::Target;
use crate::{docker, github, tags};

pub fn run(args: PushArgs, runner: &Runner, root: &Path) -> Result<()> {
    let target = super::push_target(&args.target)?;
    super::login::refuse_beside_no_login(&args.aws, &[])?;
    super::login::check_region(&target, &args.aws, args.target.env)?;
    let plan = super::load_plan(
        runner,
        root,
        &args.variant,
        &args.context,
        &target.image(),
        Some(args.target.env),
    )?;
    let key = signatures::signing_key(&args.signing, args.target.env, true, root)?;
    super::require_push_tools(runner, !args.aws.no_login, key.is_some())?;
    if let Some(key) = &key {
        signatures::check_key(runner, root, key)?;
    }
    for image in &plan.images {
        check_local(runner, image)?;
    }
    super::login::login(runner, &target, &args.aws, args.target.env)?;
    let what = format!("push {} to {}", plan.variants(), target.image());
    let group = github::group(&format!("{what} ({})", plan.context));
    let outcomes: Vec<Outcome> = plan
        .images
        .iter()
        .map(|image| push_one(runner, image, &target, key.as_ref()))
        .collect();
    drop(group);
    signatures::push_summary(runner, &outcomes, key.as_ref());
    report(runner, &outcomes, true)
}

/// Every tag of `image` names one local image, checked before anything is
/// pushed: a tag left from another commit's build (a `git pull` since the
/// build) would otherwise go out beside this commit's.
fn check_local(runner: &Runner, image: &Image) -> Result<()> {
    let variant = &image.variant;
    let build = format!("build it first: cargo xtask build --variant {variant}, with this push's --env, --registry, --repository and context flags");
    let query = docker::local_ids(&image.references());
    let ids = match runner.ask(&exec::prefix(variant), &query) {
        Reply::DryRun => return Ok(()),
        Reply::Out(text) => text,
        Reply::Failed { why, .. } if why.contains("No such image") => bail!(Usage(format!(
            "{variant}: not every tag of this commit's image is in the local engine ({}); {build}",
            super::reason(&why)
        ))),
        Reply::Failed { why, .. } => bail!("cannot read the local {variant} images: {why}"),
    };
    let distinct: BTreeSet<&str> = ids.lines().map(str::trim).collect();
    ensure!(distinct.len() <= 1, Usage(format!(
        "{variant}: the tags {} name {} different local images, so some are another build's; {build}",
        image.tags.join(", "),
        distinct.len()
    )));
    Ok(())
}

/// Push every tag of one image, `latest-*` last (a failed push leaves it
/// where it was); for stage, sign what arrived by its digest before
/// `latest-*` moves to it.
fn push_one(runner: &Runner, image: &Image, target: &Target, key: Option<&Key>) -> Outcome {
    let prefix = exec::prefix(&image.variant);
    let (fixed, moving): (Vec<&String>, Vec<&String>) =
        image.tags.iter().partition(|tag| tags::is_immutable(tag));
    let push = |tags: &[&String]| -> Result<()> {
        for tag in tags {
            let reference = format!("{}:{tag}", image.image);
            runner
                .run_with_retry(&prefix, &docker::push(&reference))
                .with_context(|| format!("push of {reference} ({}) failed", image.variant))?;
        }
        Ok(())
    };
    Outcome::of(image, || {
        push(&fixed)?;
        let digest = runner
            .read(&prefix, &docker::repo_digests(&image.references()[0]))?
            .map(|text| docker::parse_repo_digest(&text, &image.image))
            .transpose()?;
        if let Some(key) = key {
            signatures::sign(runner, &prefix, target, digest.as_deref(), key)?;
        }
        push(&moving)?;
        Ok(digest)
    })
}
