//! GitHub's events, as its webhooks deliver them, through the built binary:
//! `plan --format json` for what dev and stage would build, and
//! `--dry-run promote --no-login` (prod.yml's command) for what prod would
//! get. Each payload in `tests/events/` is shaped like GitHub's own, with
//! `@NAME@` placeholders for the fixture's commits and default branch. Each
//! case expects its tags, or its exit code and message; no rig is needed.
//!
//! The fixture repository: on its default branch, an older commit with gpu
//! and cpu, then the head, which dropped cpu; a `feature` branch off it. The
//! remote-tracking refs are those an `actions/checkout` with
//! `fetch-depth: 0` leaves.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{fake_ecr_registries, run, stderr, stdout, unique, Fixture};
use serde_json::Value;

/// The commits of one fixture repository.
struct Repo {
    fixture: Fixture,
    branch: &'static str,
    old: String,
    head: String,
    side: String,
}

impl Repo {
    fn new(branch: &'static str) -> Repo {
        let fixture = Fixture::on_branch(
            &format!("events-{branch}"),
            r#"{"gpu": "linux/amd64", "cpu": "linux/arm64"}"#,
            &["gpu", "cpu"],
            branch,
        );
        let old = fixture.head();
        let head = fixture.drop_variant("cpu", r#"{"gpu": "linux/amd64"}"#);
        fixture.git(&["checkout", "--quiet", "-b", "feature"]);
        let side = fixture.commit("side work");
        fixture.git(&["checkout", "--quiet", branch]);
        for (name, sha) in [(branch, &head), ("feature", &side)] {
            fixture.git(&["update-ref", &format!("refs/remotes/origin/{name}"), sha]);
        }
        Repo {
            fixture,
            branch,
            old,
            head,
            side,
        }
    }

    /// `text` with the placeholders filled in.
    fn fill(&self, text: &str) -> String {
        text.replace("@DEFAULT_BRANCH@", self.branch)
            .replace("@OLD_SHA@", &self.old)
            .replace("@SHA@", &self.head)
            .replace("@SIDE_SHA@", &self.side)
            .replace("@HEAD_SHA@", &self.side)
            .replace("@MERGE_SHA@", MERGE_SHA)
            .replace("@OLD8@", &self.old[..8])
            .replace("@SHA8@", &self.head[..8])
            .replace("@SIDE8@", &self.side[..8])
    }
}

/// GitHub's merge commit of a pull request: never in the fixture, never in a tag.
const MERGE_SHA: &str = "9999999999999999999999999999999999999999";
/// A commit the checkout does not have.
const UNKNOWN_SHA: &str = "8888888888888888888888888888888888888888";

#[derive(Clone, Copy)]
enum Run {
    Plan,
    Promote,
}

enum Expect {
    /// Exit 0 with exactly these tags (plan: every image's; promote: every
    /// tag copied to prod), in any order.
    Tags(&'static [&'static str]),
    /// This exit code, and stderr containing this.
    Fails(i32, &'static str),
}
use Expect::{Fails, Tags};

struct Case {
    payload: &'static str,
    event: &'static str,
    default_branch: &'static str,
    github_sha: &'static str,
    run: Run,
    expect: Expect,
}

const fn case(
    payload: &'static str,
    event: &'static str,
    default_branch: &'static str,
    github_sha: &'static str,
    run: Run,
    expect: Expect,
) -> Case {
    Case {
        payload,
        event,
        default_branch,
        github_sha,
        run,
        expect,
    }
}

const CASES: &[Case] = &[
    // ---- pull requests (dev): the head commit, never the merge commit
    case("pull_request_opened", "pull_request", "main", "@MERGE_SHA@", Run::Plan,
        Tags(&["latest-amd64-gpu", "@SIDE8@-amd64-gpu", "PR-42-amd64-gpu"])),
    case("pull_request_synchronize", "pull_request", "main", "@MERGE_SHA@", Run::Plan,
        Tags(&["latest-amd64-gpu", "@SIDE8@-amd64-gpu", "PR-42-amd64-gpu"])),
    case("pull_request_reopened", "pull_request", "master", "@MERGE_SHA@", Run::Plan,
        Tags(&["latest-amd64-gpu", "@SIDE8@-amd64-gpu", "PR-7-amd64-gpu"])),
    case("pull_request_from_fork", "pull_request", "main", "@MERGE_SHA@", Run::Plan,
        Tags(&["latest-amd64-gpu", "@SIDE8@-amd64-gpu", "PR-43-amd64-gpu"])),
    case("pull_request_target_opened", "pull_request_target", "main", "@SHA@", Run::Plan,
        Tags(&["latest-amd64-gpu", "@SIDE8@-amd64-gpu", "PR-44-amd64-gpu"])),
    case("pull_request_without_head_sha", "pull_request", "main", "@MERGE_SHA@", Run::Plan,
        Fails(2, "pull_request.head.sha in the event payload (GITHUB_EVENT_PATH=")),
    case("pull_request_short_head_sha", "pull_request", "main", "@MERGE_SHA@", Run::Plan,
        Fails(2, "): \"abc1234\" is not a full commit SHA")),
    // ---- pushes (stage): only a new commit on the default branch
    case("push_default_branch", "push", "main", "@SHA@", Run::Plan,
        Tags(&["latest-amd64-gpu", "@SHA8@-amd64-gpu"])),
    case("push_default_branch", "push", "master", "@SHA@", Run::Plan,
        Tags(&["latest-amd64-gpu", "@SHA8@-amd64-gpu"])),
    case("push_main_to_a_master_repository", "push", "master", "@SHA@", Run::Plan,
        Fails(2, "the push is to refs/heads/main, not to the default branch master")),
    case("push_other_branch", "push", "main", "@SIDE_SHA@", Run::Plan,
        Fails(2, "the push is to refs/heads/feature, not to the default branch main")),
    case("push_tag", "push", "main", "@SHA@", Run::Plan,
        Fails(2, "the push is to refs/tags/v1.2.3, not to the default branch main")),
    case("push_deleting_branch", "push", "main", "0000000000000000000000000000000000000000", Run::Plan,
        Fails(2, "is true: this push deletes refs/heads/feature, so there is no commit to build")),
    case("push_default_branch", "push", "main", "abc123", Run::Plan,
        Fails(2, "GITHUB_SHA: \"abc123\" is not a full commit SHA")),
    // ---- manual runs (dev, stage): any branch builds under workflow_dispatch
    case("workflow_dispatch_default_branch", "workflow_dispatch", "main", "@SHA@", Run::Plan,
        Tags(&["latest-amd64-gpu", "@SHA8@-amd64-gpu", "workflow_dispatch-amd64-gpu"])),
    case("workflow_dispatch_other_branch", "workflow_dispatch", "main", "@SIDE_SHA@", Run::Plan,
        Tags(&["latest-amd64-gpu", "@SIDE8@-amd64-gpu", "workflow_dispatch-amd64-gpu"])),
    case("schedule", "schedule", "main", "@SHA@", Run::Plan,
        Fails(2, "GITHUB_EVENT_NAME=schedule has no tags in this pipeline")),
    // ---- releases (prod)
    case("release_published", "release", "main", "@SHA@", Run::Plan,
        Tags(&["latest-amd64-gpu", "@SHA8@-amd64-gpu", "v1.2.3-amd64-gpu"])),
    case("release_published", "release", "main", "@SHA@", Run::Promote,
        Tags(&["@SHA8@-amd64-gpu", "v1.2.3-amd64-gpu", "latest-amd64-gpu"])),
    case("release_published", "release", "master", "@SHA@", Run::Promote,
        Tags(&["@SHA8@-amd64-gpu", "v1.2.3-amd64-gpu", "latest-amd64-gpu"])),
    case("release_prerelease", "release", "main", "@SHA@", Run::Promote,
        Tags(&["@SHA8@-amd64-gpu", "v2.0.0-rc.1-amd64-gpu"])),
    case("release_draft", "release", "main", "@SHA@", Run::Promote,
        Fails(2, "release.draft in the event payload (GITHUB_EVENT_PATH=")),
    case("release_tag_latest", "release", "main", "@SHA@", Run::Promote,
        Fails(2, "release tag \"latest\" reads as the moving latest-<arch>-<variant> tag")),
    case("release_tag_pr", "release", "main", "@SHA@", Run::Promote,
        Fails(2, "release tag \"PR-12\" reads as a pull request's PR-<number> tag")),
    case("release_tag_sha8", "release", "main", "@SHA@", Run::Promote,
        Fails(2, "release tag \"deadbeef\" reads as a commit's <sha8> tag")),
    case("release_tag_cache", "release", "main", "@SHA@", Run::Promote,
        Fails(2, "release tag \"cache-2026\" reads as a registry cache tag")),
    case("release_tag_make", "release", "main", "@SHA@", Run::Promote,
        Fails(2, "release tag \"make-01234567\" reads as a terminal build's make-<sha8> tag")),
    case("release_tag_slash", "release", "main", "@SHA@", Run::Promote,
        Fails(2, "release tag \"release/1.0\" cannot be used in image tags")),
    case("release_tag_long", "release", "main", "@SHA@", Run::Promote,
        Fails(2, " is 120 characters; the limit is 118")),
    // Named by its source, in promote and in a build.
    case("release_tag_long", "release", "main", "@SHA@", Run::Promote,
        Fails(2, "-release_tag_long.json): release tag \"v111")),
    case("release_tag_long", "release", "main", "@SHA@", Run::Plan,
        Fails(2, "-release_tag_long.json): release tag \"v111")),
    case("release_published", "release", "main", "@SIDE_SHA@", Run::Promote,
        Fails(1, "commit: FAILED: commit @SIDE8@ is not on origin/main: only commits merged to main (repository.default_branch in the event payload")),
    // A merge after the last fetch is not in origin/main yet: said, with the fix.
    case("release_published", "release", "main", "@SIDE_SHA@", Run::Promote,
        Fails(1, "are promoted to prod (origin/main as this checkout last fetched it: if the commit was merged since, git fetch origin and re-run)")),
    case("release_published", "release", "trunk", "@SHA@", Run::Promote,
        Fails(2, "the default branch trunk (repository.default_branch in the event payload (GITHUB_EVENT_PATH=")),
    case("release_published", "release", "main", UNKNOWN_SHA, Run::Promote,
        Fails(2, "commit 8888888888888888888888888888888888888888 is not in this checkout")),
    case("release_without_repository", "release", "main", "@SHA@", Run::Promote,
        Fails(2, "repository.default_branch in the event payload (GITHUB_EVENT_PATH=")),
    // ---- manual re-promotes (prod): the `sha` input, else the run's commit;
    // the variants are those of that commit's own .aws-architecture
    case("workflow_dispatch_sha_input_empty", "workflow_dispatch", "main", "@SHA@", Run::Promote,
        Tags(&["@SHA8@-amd64-gpu", "latest-amd64-gpu", "workflow_dispatch-amd64-gpu"])),
    case("workflow_dispatch_sha_input_older", "workflow_dispatch", "master", "@SIDE_SHA@", Run::Promote,
        Tags(&["@OLD8@-amd64-gpu", "latest-amd64-gpu", "workflow_dispatch-amd64-gpu",
               "@OLD8@-arm64-cpu", "latest-arm64-cpu", "workflow_dispatch-arm64-cpu"])),
    case("workflow_dispatch_other_branch", "workflow_dispatch", "main", "@SIDE_SHA@", Run::Promote,
        Fails(1, "commit @SIDE8@ is not on origin/main")),
    case("workflow_dispatch_sha_input_short", "workflow_dispatch", "main", "@SHA@", Run::Promote,
        Fails(2, "inputs.sha in the event payload (GITHUB_EVENT_PATH=")),
    case("pull_request_opened", "pull_request", "main", "@MERGE_SHA@", Run::Promote,
        Fails(2, "promote runs for a release or a manual re-promote, not a pull request #42")),
];

fn payloads_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/events")
}

/// The tags a run ended with: the plan's, or prod's in the promotion's copies.
fn tags_of(run: Run, stdout: &str, stderr: &str) -> Vec<String> {
    match run {
        Run::Plan => {
            let plan: Value = serde_json::from_str(stdout).expect("plan prints JSON");
            plan["images"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|image| image["tags"].as_array().unwrap().clone())
                .map(|tag| tag.as_str().unwrap().to_string())
                .collect()
        }
        Run::Promote => stderr
            .lines()
            .filter_map(|line| line.split_once("$ skopeo copy ").map(|(_, c)| c))
            .map(|copy| copy.rsplit_once(":").unwrap().1.to_string())
            // Each variant's signature copy (cosign's `sha256-<digest>.sig`)
            // is not an image tag.
            .filter(|tag| !tag.starts_with("sha256-"))
            .collect(),
    }
}

#[test]
fn every_github_event_gets_its_tags_or_exit_2_before_anything_runs() {
    let repos = [Repo::new("main"), Repo::new("master")];
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("events"));
    std::fs::create_dir_all(&work).unwrap();
    assert!(CASES.len() >= 25);
    let mut failures = Vec::new();
    for (n, case) in CASES.iter().enumerate() {
        let repo = repos
            .iter()
            .find(|r| r.branch == case.default_branch)
            .unwrap_or(&repos[0]);
        let template =
            std::fs::read_to_string(payloads_dir().join(format!("{}.json", case.payload))).unwrap();
        // A default branch the checkout lacks is named only in the payload.
        let payload = template.replace("@DEFAULT_BRANCH@", case.default_branch);
        let event_path = work.join(format!("{n}-{}.json", case.payload));
        std::fs::write(&event_path, repo.fill(&payload)).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
        command
            .current_dir(&repo.fixture.root)
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_EVENT_NAME", case.event)
            .env("GITHUB_EVENT_PATH", &event_path)
            .env("GITHUB_SHA", repo.fill(case.github_sha))
            .env("SOURCE_DATE_EPOCH", "1700000000");
        fake_ecr_registries(&mut command)
            .env("ECR_REPOSITORY", "batch-probe")
            .env_remove("ECR_REGISTRY_DEV")
            .env_remove("ECR_REPOSITORY_STAGE")
            .env_remove("ECR_REPOSITORY_PROD")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env_remove("XTASK_ROOT");
        match case.run {
            Run::Plan => command.args(["plan", "--format", "json"]),
            // A KMS key reference: a dry run never reads it (prod.yml's
            // COSIGN_PUBLIC_KEY variable may name one).
            Run::Promote => command
                .args(["--dry-run", "promote", "--no-login"])
                .env("COSIGN_PUBLIC_KEY", "awskms:///alias/events-test"),
        };
        let output = run(&mut command);
        let (out, err) = (stdout(&output), stderr(&output));
        let what = format!(
            "{} ({}, default branch {}, {})",
            case.payload,
            case.event,
            case.default_branch,
            match case.run {
                Run::Plan => "plan",
                Run::Promote => "promote",
            }
        );
        match &case.expect {
            Tags(expected) => {
                let mut want: Vec<String> = expected.iter().map(|t| repo.fill(t)).collect();
                let mut got = if output.status.success() {
                    tags_of(case.run, &out, &err)
                } else {
                    Vec::new()
                };
                want.sort();
                got.sort();
                if !output.status.success() || got != want {
                    failures.push(format!(
                        "{what}: exit {:?}, tags {got:?}, expected {want:?}\n{err}",
                        output.status.code()
                    ));
                }
            }
            Fails(code, message) => {
                let message = repo.fill(message);
                if output.status.code() != Some(*code) || !err.contains(&message) {
                    failures.push(format!(
                        "{what}: exit {:?}, expected {code} with {message:?}; stderr:\n{err}",
                        output.status.code()
                    ));
                }
                // Refused before anything ran: no command line echoed.
                if *code == 2 && err.lines().any(|l| l.contains("$ ")) {
                    failures.push(format!(
                        "{what}: ran or printed steps before refusing:\n{err}"
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n\n")
    );
}
