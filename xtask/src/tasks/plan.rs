//! `plan` and `matrix`: what would be built, for people and for GitHub Actions.

use std::path::Path;

use anyhow::Result;

use crate::cli::{Format, MatrixArgs, PlanArgs};
use crate::exec::Runner;
use crate::github;

pub fn plan(args: PlanArgs, runner: &Runner, root: &Path) -> Result<()> {
    let image = super::image_name(&args.target)?;
    let plan = super::load_plan(runner, root, &args.variant, &args.context, &image, None)?;
    match args.format {
        Format::Table => super::print_out(&plan.table()),
        Format::Json => super::print_out(&format!("{}\n", serde_json::to_string_pretty(&plan)?)),
    }
}

pub fn matrix(args: MatrixArgs, root: &Path) -> Result<()> {
    let matrix = crate::plan::matrix(&super::architectures(root)?.variants).to_string();
    if args.github_output {
        github::set_output("matrix", &matrix)?;
    }
    super::print_out(&format!("{matrix}\n"))
}
