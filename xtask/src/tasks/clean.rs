//! `clean`: remove this repository's local images, by name, and nothing else.
//!
//! The build cache stays: xtask creates no builder of its own, so its builds
//! share the current builder's cache with every other project, and no record
//! in it says which repository made it. `clean` prints the command that
//! empties that cache instead of guessing.

use anyhow::Result;

use crate::cli::{env_var, TargetArgs};
use crate::docker;
use crate::error::Usage;
use crate::exec::Runner;
use crate::target::repository_name;

pub fn run(target: TargetArgs, runner: &Runner) -> Result<()> {
    // Both names a build may have used: in the registry, and local-only.
    let mut names = vec![super::image_name(&target)?];
    let bare = repository_name(target.env, target.flags(), &env_var).map_err(Usage)?;
    if !names.contains(&bare) {
        names.push(bare);
    }
    runner.require_tools(&[docker::TOOL])?;
    for name in names {
        let Some(listing) = runner.read("", &docker::list_images(&name))? else {
            let remove = docker::remove_images(&[]);
            eprintln!("dry run: every image that listing names would go, with `{remove} ...`");
            continue;
        };
        let references: Vec<String> = listing.split_whitespace().map(String::from).collect();
        if references.is_empty() {
            eprintln!("no local images named {name}");
        } else {
            runner.run("", &docker::remove_images(&references))?;
        }
    }
    eprintln!(
        "build cache: left alone. xtask creates no builder of its own, so the current builder's cache holds every project's builds, and nothing in it says which repository made what; `{}` empties it, for all of them",
        docker::prune_build_cache()
    );
    Ok(())
}
