//! The rehearsal's stages: the pipeline's events in order, each played
//! either by the `cargo xtask` command its workflow's job runs, with the
//! GitHub Actions environment the workflow would give it, or by the
//! workflow file itself under act.

use std::path::Path;

use super::act::{self, payload, Play};
use super::in_rig;
use super::workspace::{Commits, Workspace, PR_BRANCH};
use crate::step::Step;

/// Stand-ins for the Dockerfiles' base images, made by `rig/bases` from
/// Debian packages: no base image can be pulled inside the rig. The build
/// stage runs on the host's architecture and cross-compiles; the runtime base
/// is each variant's own architecture.
const BUILD_ARGS: [&str; 2] = [
    "BUILD_IMAGE=rig/rust:bookworm-cross",
    "RUNTIME_IMAGE=rig/debian:bookworm-{arch}",
];

/// The rig's engine has no bridge network, and the stand-in build image
/// already holds everything the Dockerfiles' RUN steps would download.
const NETWORK: &str = "none";

/// One stage of the rehearsal: an event and the workflow that handles it.
pub struct Stage {
    pub title: String,
    pub play: Play,
    /// The commit the workflow's own checkout step checks out (a pull
    /// request's head, not the merge act starts from): a stage played by
    /// its command checks it out in the clone first.
    pub checkout: String,
}

/// The pipeline's events, in order: pull request #1, its merge, the release
/// of `release_sha` as `release_tag`, and a manual re-promote of the merge.
pub fn pipeline(commits: &Commits, release_tag: &str, release_sha: &str) -> Vec<Stage> {
    let merged = commits.merged.as_str();
    let pr = payload::pull_request(1, &commits.pr_head, PR_BRANCH, "rehearsal");
    let release = payload::release(release_tag, "main");
    let dispatch = payload::dispatch(serde_json::json!({ "sha": merged }));
    let stage = |title: String, play: Play, checkout: &str| Stage {
        title,
        play,
        checkout: checkout.to_string(),
    };
    vec![
        stage(
            "pull request #1: both variants built for their platforms and pushed to dev".into(),
            Play::new("dev", "pull_request", "dev", pr, merged),
            &commits.pr_head,
        ),
        stage(
            "merge to main: built and pushed to stage with the commit's tags".into(),
            Play::new("stage", "push", "stage", payload::push(merged), merged),
            merged,
        ),
        stage(
            format!("release {release_tag}: gate, digest-preserving copy to prod, verification"),
            Play::new("release", "release", "prod", release, release_sha),
            release_sha,
        ),
        stage(
            "manual re-promote (workflow_dispatch): a no-op for tags already in prod".into(),
            Play::new("re-promote", "workflow_dispatch", "prod", dispatch, merged),
            merged,
        ),
    ]
}

/// What the workflows' jobs get from act's environment: `cargo xtask
/// build` reads the stand-in bases, the network and `--smoke` from these
/// `XTASK_*` variables.
pub(super) fn workflow_env(root: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("XTASK_BUILD_ARGS", BUILD_ARGS.join("\n")),
        ("XTASK_NETWORK", NETWORK.to_string()),
        ("XTASK_SMOKE", "true".to_string()),
        (
            "CARGO_TARGET_DIR",
            root.join(act::JOB_TARGET_DIR).display().to_string(),
        ),
    ]
}

/// A stage played by the `cargo xtask` command its workflow runs, with the
/// GitHub Actions environment the workflow would give it.
pub(super) fn command_step(workspace: &Workspace, stage: &Stage, xtask: &str) -> Step {
    let play = &stage.play;
    let payload = workspace.payload(&play.name);
    let env = [
        ("GITHUB_ACTIONS", "true".to_string()),
        ("GITHUB_EVENT_NAME", play.event.into()),
        ("GITHUB_EVENT_PATH", payload.display().to_string()),
        ("GITHUB_SHA", play.checkout.clone()),
        ("GITHUB_REF", "refs/heads/main".into()),
        (
            "GITHUB_STEP_SUMMARY",
            payload.with_extension("summary.md").display().to_string(),
        ),
        ("ECR_REPOSITORY", workspace.repository.clone()),
    ];
    let clone = workspace.clone_dir().display().to_string();
    let mut args = vec!["--root", clone.as_str()];
    // prod.yml promotes; dev.yml and stage.yml build for their environment.
    match play.workflow {
        "prod" => args.push("promote"),
        env => {
            args.extend(["build", "--push", "--smoke", "--network", NETWORK]);
            for arg in BUILD_ARGS {
                args.extend(["--build-arg", arg]);
            }
            args.extend(["--env", env]);
        }
    }
    in_rig(&env, Step::new(xtask, args))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commits() -> Commits {
        Commits {
            pr_head: "1".repeat(40),
            merged: "2".repeat(40),
        }
    }

    #[test]
    fn each_event_runs_its_workflow_on_its_commit() {
        let stages = pipeline(&commits(), "v1", &"3".repeat(40));
        // The commits by their first digit: 2 merged, 3 released.
        let plays: Vec<[&str; 4]> = stages
            .iter()
            .map(|s| {
                [
                    s.play.name.as_str(),
                    &s.play.checkout[..1],
                    s.play.event,
                    s.play.workflow,
                ]
            })
            .collect();
        assert_eq!(
            plays,
            [
                ["dev", "2", "pull_request", "dev"],
                ["stage", "2", "push", "stage"],
                ["release", "3", "release", "prod"],
                ["re-promote", "2", "workflow_dispatch", "prod"],
            ]
        );
    }

    #[test]
    fn workflow_builds_get_the_stand_in_bases_from_the_environment() {
        let root = Path::new("/repo");
        let workspace = Workspace::new(root, "r");
        let stages = pipeline(&commits(), "v1", &"3".repeat(40));
        assert_eq!(
            stages[0].play.step(&workspace, &workflow_env(root)).to_string(),
            "rig/rig exec env 'XTASK_BUILD_ARGS=BUILD_IMAGE=rig/rust:bookworm-cross\n\
             RUNTIME_IMAGE=rig/debian:bookworm-{arch}' XTASK_NETWORK=none XTASK_SMOKE=true \
             CARGO_TARGET_DIR=/repo/target/rehearsal/cargo-target \
             rig/act-event run --repository r --checkout 2222222222222222222222222222222222222222 \
             /repo/target/rehearsal/r/repo pull_request dev /repo/target/rehearsal/r/events/dev.json"
        );
    }

    #[test]
    fn commands_get_the_github_environment_of_their_event() {
        let workspace = Workspace::new(Path::new("/repo"), "r");
        let stages = pipeline(&commits(), "v1", &"3".repeat(40));
        let step = command_step(&workspace, &stages[2], "/bin/xtask").to_string();
        assert!(
            step.starts_with(
                "rig/rig exec env GITHUB_ACTIONS=true GITHUB_EVENT_NAME=release \
                 GITHUB_EVENT_PATH=/repo/target/rehearsal/r/events/release.json \
                 GITHUB_SHA=3333333333333333333333333333333333333333 "
            ),
            "{step}"
        );
        assert!(
            step.ends_with(
                "ECR_REPOSITORY=r /bin/xtask --root /repo/target/rehearsal/r/repo promote"
            ),
            "{step}"
        );
    }

    #[test]
    fn payloads_name_the_commits_the_tags_come_from() {
        let stages = pipeline(&commits(), "v1", &"3".repeat(40));
        let payload = |i: usize| &stages[i].play.payload;
        assert_eq!(payload(0)["pull_request"]["head"]["sha"], "1".repeat(40));
        assert_eq!(payload(1)["after"], "2".repeat(40));
        assert_eq!(payload(2)["release"]["tag_name"], "v1");
        assert_eq!(payload(3)["inputs"]["sha"], "2".repeat(40));
    }
}
