//! `push`: push images already built into the local engine, every tag, and
//! report the digest the registry received.

use std::path::Path;

use anyhow::{Context, Result};

use super::build::{report, Outcome};
use super::signatures;
use crate::cli::PushArgs;
use crate::cosign::Key;
use crate::exec::{self, Runner};
use crate::plan::Image;
use crate::target::Target;
use crate::{docker, github};

pub fn run(args: PushArgs, runner: &Runner, root: &Path) -> Result<()> {
    let target = super::push_target(&args.target)?;
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

/// Push every tag of one image; for stage, sign what arrived by its digest.
fn push_one(runner: &Runner, image: &Image, target: &Target, key: Option<&Key>) -> Outcome {
    let prefix = exec::prefix(&image.variant);
    Outcome::of(image, || {
        for reference in image.references() {
            runner
                .run_with_retry(&prefix, &docker::push(&reference))
                .with_context(|| format!("push of {reference} ({}) failed", image.variant))?;
        }
        let digest = runner
            .read(&prefix, &docker::repo_digests(&image.references()[0]))?
            .map(|text| docker::parse_repo_digest(&text, &image.image))
            .transpose()?;
        if let Some(key) = key {
            signatures::sign(runner, &prefix, target, digest.as_deref(), key)?;
        }
        Ok(digest)
    })
}
