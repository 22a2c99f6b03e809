//! `push`: push images already built into the local engine, every tag, and
//! report the digest the registry received.

use std::path::Path;

use anyhow::{Context, Result};

use super::build::{report, Outcome, PUSH_ATTEMPTS};
use crate::cli::PushArgs;
use crate::docker;
use crate::exec::{require_tools, Runner};
use crate::plan::Image;

pub fn run(args: PushArgs, runner: &Runner, root: &Path) -> Result<()> {
    let target = super::target(&args.target)?;
    let plan = super::load_plan(runner, root, &args.variant, &args.context, &target.image())?;
    if !runner.dry_run {
        let mut tools = vec![docker::TOOL];
        if !args.aws.no_login {
            tools.push(crate::aws::TOOL);
        }
        require_tools(&tools)?;
    }
    super::login::login(runner, &target, &args.aws, &args.target.env.to_string())?;
    let outcomes: Vec<Outcome> = plan
        .images
        .iter()
        .map(|image| push_one(runner, image))
        .collect();
    report(runner, &outcomes, "pushed")
}

fn push_one(runner: &Runner, image: &Image) -> Outcome {
    let prefix = format!("[{}] ", image.variant);
    Outcome::of(image, || {
        for reference in image.references() {
            runner
                .run_with_retry(&prefix, &docker::push(&reference), PUSH_ATTEMPTS)
                .with_context(|| format!("push of {reference} ({}) failed", image.variant))?;
        }
        runner
            .read(&prefix, &docker::repo_digests(&image.references()[0]))?
            .map(|text| docker::parse_repo_digest(&text, &image.image))
            .transpose()
    })
}
