//! The workflows themselves (`dev.yml`, `stage.yml`, `prod.yml`) run with
//! act on the rig, through the pieces `cargo xtask rehearse --workflows` is
//! made of: the same workspace (the working tree committed as a pull request
//! and merged into a clone's `main`), the same act runs (`rig/act-event`,
//! the stand-ins in `rig/actions/`, the rig's settings as repository
//! variables), the rehearsal's own four events, and the same registry
//! read-back. The Dockerfiles are FROM-scratch fixtures: these runs test the
//! workflows, not the images (`tests/dockerfiles.rs` and the rehearsal build
//! those).
//!
//! [`SCENARIOS`] is played in order, one act run each, and each sees what
//! the earlier ones pushed. Every check is reported (PASS/FAIL) and the test
//! fails at the end if any failed. To add an assertion, add a line to a
//! scenario's check; to add an act run, add a row.

mod common;

use std::path::Path;

use common::signature_tag;

use xtask::exec::Runner;
use xtask::tasks::rehearse::act::{payload, Play, JOB_TARGET_DIR};
use xtask::tasks::rehearse::pipeline;
use xtask::tasks::rehearse::registries::{self, Snapshot};
use xtask::tasks::rehearse::workspace::{Commits, Workspace};

/// The emulator's default account, whose roles the workflows must assume
/// (rig/act-event passes it as the account variables).
const ACCOUNT: &str = "123456789012";
const RELEASE_TAG: &str = "v1.2.3";
const OFF_MAIN_TAG: &str = "v9.9.9-off-main";
const UNSIGNED_TAG: &str = "v1.2.4-unsigned";
/// A branch whose commit never reaches main.
const SIDE_BRANCH: &str = "side";
const DEPENDABOT_PR: u32 = 43;
const FORK_PR: u32 = 44;

/// The matrix legs: variant, architecture, and the GitHub-hosted runner of
/// that architecture (docs/pipeline.md: Docker builds on the architecture
/// it targets).
const LEGS: [(&str, &str, &str); 2] = [
    ("gpu", "amd64", "ubuntu-latest"),
    ("cpu", "arm64", "ubuntu-24.04-arm"),
];

/// One act run and what must hold after it.
struct Scenario {
    play: fn(&World) -> Play,
    /// Whether act must succeed.
    succeeds: bool,
    check: fn(&mut Checks, &Run),
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        play: |w| w.stage("dev"),
        succeeds: true,
        check: dev_pull_request,
    },
    Scenario {
        // Someone else re-runs it: the PR's author decides, not the actor.
        play: |w| {
            let head = &w.commits.pr_head;
            let pr = payload::pull_request(
                DEPENDABOT_PR,
                head,
                "dependabot/cargo/serde-1.0.999",
                "dependabot[bot]",
            );
            Play::new(
                "dev-dependabot",
                "pull_request",
                "dev",
                pr,
                &w.commits.merged,
            )
            .with_act_args(&["--actor", "octocat", "-v"])
        },
        succeeds: true,
        check: |c, run| dev_skipped(c, run, DEPENDABOT_PR),
    },
    Scenario {
        play: |w| {
            let mut pr = payload::pull_request(FORK_PR, &w.commits.pr_head, "patch-1", "someone");
            pr["pull_request"]["head"]["repo"]["full_name"] = "someone/batch-probe".into();
            Play::new("dev-fork", "pull_request", "dev", pr, &w.commits.merged)
                .with_act_args(&["-v"])
        },
        succeeds: true,
        check: |c, run| dev_skipped(c, run, FORK_PR),
    },
    // One matrix leg per act run: act evaluates `runs-on` on a node its
    // parallel legs share, so one leg can log or use another's value; only
    // single-leg runs are evidence of each leg's runner.
    Scenario {
        play: |w| dispatch_leg(w, LEGS[0]),
        succeeds: true,
        check: |c, run| dev_dispatch_leg(c, run, LEGS[0]),
    },
    Scenario {
        play: |w| dispatch_leg(w, LEGS[1]),
        succeeds: true,
        check: |c, run| dev_dispatch_leg(c, run, LEGS[1]),
    },
    Scenario {
        play: |w| w.stage("stage"),
        succeeds: true,
        check: stage_push,
    },
    Scenario {
        play: |w| w.stage("release"),
        succeeds: true,
        check: prod_release,
    },
    Scenario {
        play: |w| w.stage("re-promote"),
        succeeds: true,
        check: prod_dispatch,
    },
    // A commit on a side branch, built into stage by a manual stage run, so
    // stage holds good images for it: only "not on main" can stop its release.
    Scenario {
        play: |_| {
            Play::new(
                "stage-side",
                "workflow_dispatch",
                "stage",
                payload::dispatch(serde_json::json!({})),
                SIDE_BRANCH,
            )
        },
        succeeds: true,
        check: stage_side,
    },
    Scenario {
        play: |_| {
            Play::new(
                "prod-off-main",
                "release",
                "prod",
                payload::release(OFF_MAIN_TAG, SIDE_BRANCH),
                SIDE_BRANCH,
            )
        },
        succeeds: false,
        check: prod_off_main,
    },
    // Something other than the stage pipeline pushes over main's commit in
    // stage (here dev.yml, pointed at the stage registry): tags and labels
    // as stage's, no signature. Its release must be refused.
    Scenario {
        play: |w| {
            let stage = std::env::var("ECR_REGISTRY_STAGE").expect("set by the rig");
            let dispatch = payload::dispatch(serde_json::json!({}));
            Play::new(
                "stage-unsigned",
                "workflow_dispatch",
                "dev",
                dispatch,
                &w.commits.merged,
            )
            // `XTASK_CACHE=none`: a build, rather than a tag of stage's
            // signed image, which the build would find already there.
            .with_act_args(&[
                "--var",
                &format!("ECR_REGISTRY_DEV={stage}"),
                "--env",
                "XTASK_CACHE=none",
            ])
        },
        succeeds: true,
        check: stage_unsigned,
    },
    Scenario {
        play: |w| {
            let release = payload::release(UNSIGNED_TAG, "main");
            Play::new(
                "prod-unsigned",
                "release",
                "prod",
                release,
                &w.commits.merged,
            )
        },
        succeeds: false,
        check: prod_unsigned,
    },
];

fn dispatch_leg(w: &World, (variant, _, _): (&str, &str, &str)) -> Play {
    let dispatch = payload::dispatch(serde_json::json!({}));
    Play::new(
        &format!("dev-dispatch-{variant}"),
        "workflow_dispatch",
        "dev",
        dispatch,
        &w.commits.merged,
    )
    .with_act_args(&["--matrix", &format!("variant:{variant}"), "-v"])
}

fn dev_pull_request(c: &mut Checks, run: &Run) {
    c.expect(
        "both legs and the plan succeeded",
        run.count("🏁  Job succeeded") == 3,
    );
    let pr8 = &run.world.commits.pr_head[..8];
    for (variant, arch, _) in LEGS {
        for what in ["PR-1", pr8, "latest"] {
            let tag = format!("{what}-{arch}-{variant}");
            c.expect(format!("dev has {tag}"), run.after.has("dev", &tag));
        }
        // The setup-buildx stand-in keeps the containerd-store builder,
        // which reads and writes the leg's own registry cache (a failed
        // export would fail the build).
        let cache = format!("cache-{arch}-{variant}");
        c.expect(
            format!("the {variant} build read and wrote {cache}"),
            run.log
                .contains(&format!(":{cache} --cache-to type=registry,ref="))
                && run.log.contains(&format!(
                    ":{cache},mode=max,image-manifest=true,oci-mediatypes=true"
                )),
        );
        let key = ("dev".to_string(), cache.clone());
        c.expect(
            format!("dev has {cache}, written by this run"),
            !run.before.caches.contains(&key) && run.after.caches.contains(&key),
        );
        let tag = format!("PR-1-{arch}-{variant}");
        let image = run.after.image("dev", &tag);
        c.expect(
            format!("dev {tag} is an {arch} image"),
            image.is_some_and(|i| i.architecture == arch),
        );
        c.expect(
            format!("dev {tag} is labelled with the PR head commit"),
            image.is_some_and(|i| i.revision.as_deref() == Some(&run.world.commits.pr_head)),
        );
    }
    // dev.yml checks out the PR head (the actions/checkout stand-in names
    // the commit it checked out): the image the label names is the image built.
    c.expect(
        "dev built the PR head commit, not GitHub's merge commit",
        run.log.contains(&format!(
            "rig stand-in for actions/checkout: {}",
            run.world.commits.pr_head
        )),
    );
    c.expect(
        "the setup-buildx stand-in kept a builder that can export a cache",
        run.log.contains("rig stand-in for docker/setup-buildx-action: keeping builder default (driver docker), which can export a build cache"),
    );
    // A plain line, or a warning when the disk is short (as it may be on
    // the machine running this test): either way, the free space is named.
    c.expect(
        "the runner's disk was reported before building",
        ["disk: ", "::warning::only "]
            .iter()
            .any(|start| run.log.contains(start))
            && run.log.contains("where the builder keeps its data"),
    );
    c.expect(
        "the dev role was assumed",
        run.log.contains(&format!(
            "assumed arn:aws:iam::{ACCOUNT}:role/xtask-dev-push"
        )),
    );
}

/// A pull request dev must not build (Dependabot's, a fork's): the plan
/// job's `if:` skips it, so nothing runs and nothing reaches dev.
fn dev_skipped(c: &mut Checks, run: &Run, pr: u32) {
    c.expect(
        "plan skipped by its if:",
        run.log
            .contains("Skipping job 'plan' due to 'github.event_name"),
    );
    c.expect("no job ran", run.count("🏁") == 0);
    let tag = format!("PR-{pr}-amd64-gpu");
    c.expect(format!("dev has no {tag}"), !run.after.has("dev", &tag));
}

fn dev_dispatch_leg(c: &mut Checks, run: &Run, (variant, arch, runner): (&str, &str, &str)) {
    let builds = run
        .log
        .lines()
        .filter(|l| l.contains("🏁") && l.contains("/build "))
        .count();
    let this_leg = run.count(&format!(
        "/build {variant} (linux/{arch})] 🏁  Job succeeded"
    ));
    c.expect("only that leg ran", builds == 1 && this_leg == 1);
    let evaluated = evaluated_runners(&run.log);
    c.expect(
        format!("the {variant} leg's runs-on evaluated to {runner} (act logged {evaluated:?})"),
        evaluated == [runner],
    );
    let tag = format!("workflow_dispatch-{arch}-{variant}");
    c.expect(format!("dev has {tag}"), run.after.has("dev", &tag));
    // The pull request's run wrote this leg's cache; this build found it
    // (BuildKit says so, or logs "failed to configure registry cache
    // importer ... not found", which is what the first build logged).
    let cache = format!("cache-{arch}-{variant}");
    let dev = std::env::var("ECR_REGISTRY_DEV").expect("set by the rig");
    let imports = run.log.lines().any(|l| {
        l.contains(&format!("importing cache manifest from {dev}/"))
            && l.trim_end().ends_with(&cache)
    });
    c.expect(
        format!("the build read {cache}, which the pull request's run wrote"),
        imports
            && run.log.contains("inferred cache manifest type")
            && !run
                .log
                .contains("failed to configure registry cache importer"),
    );
}

fn stage_push(c: &mut Checks, run: &Run) {
    let merged8 = &run.world.commits.merged[..8];
    for (variant, arch, _) in LEGS {
        for what in [merged8, "latest"] {
            let tag = format!("{what}-{arch}-{variant}");
            c.expect(format!("stage has {tag}"), run.after.has("stage", &tag));
        }
    }
    c.expect(
        "stage has no dev tags (PR-1)",
        !run.after.has("stage", "PR-1-amd64-gpu"),
    );
    // The variable reaches the role's session, which must outlast the build.
    c.expect(
        "the stage role's session lasts STAGE_ROLE_DURATION_SECONDS (5400)",
        run.log.contains("(session GitHubActions, 5400s, "),
    );
    for (variant, arch, _) in LEGS {
        let digest = run
            .after
            .digest("stage", &format!("{merged8}-{arch}-{variant}"));
        let signature = digest.map(signature_tag).unwrap_or_default();
        c.expect(
            format!("stage has {variant}'s signature {signature}"),
            run.after.has("stage", &signature),
        );
    }
}

/// Every `<what>-<arch>-<variant>` in prod, at the digest of stage's
/// `<merged sha8>` image of the same variant.
fn prod_has_stages_images(c: &mut Checks, run: &Run, what: &str) {
    let merged8 = &run.world.commits.merged[..8];
    for (variant, arch, _) in LEGS {
        let tag = format!("{what}-{arch}-{variant}");
        let stage = run
            .after
            .digest("stage", &format!("{merged8}-{arch}-{variant}"));
        c.expect(format!("prod has {tag}"), run.after.has("prod", &tag));
        c.expect(
            format!("prod {tag} has stage's digest ({merged8}-{arch}-{variant})"),
            stage.is_some() && run.after.digest("prod", &tag) == stage,
        );
        let signature = stage.map(signature_tag).unwrap_or_default();
        c.expect(
            format!("prod has {variant}'s signature, as stage's"),
            run.after.digest("prod", &signature).is_some()
                && run.after.digest("prod", &signature) == run.after.digest("stage", &signature),
        );
    }
}

fn prod_release(c: &mut Checks, run: &Run) {
    let read = format!("assumed arn:aws:iam::{ACCOUNT}:role/xtask-stage-read");
    let push = format!("assumed arn:aws:iam::{ACCOUNT}:role/xtask-prod-push");
    c.expect(
        "stage read role, then prod role",
        run.log
            .find(&read)
            .is_some_and(|at| run.log[at..].contains(&push)),
    );
    for what in [RELEASE_TAG, &run.world.commits.merged[..8], "latest"] {
        prod_has_stages_images(c, run, what);
    }
}

fn prod_dispatch(c: &mut Checks, run: &Run) {
    prod_has_stages_images(c, run, "workflow_dispatch");
}

fn stage_side(c: &mut Checks, run: &Run) {
    let tag = format!("{}-arm64-cpu", &run.world.side[..8]);
    c.expect(format!("stage has {tag}"), run.after.has("stage", &tag));
}

fn prod_off_main(c: &mut Checks, run: &Run) {
    c.expect(
        "promote said the commit is not on main",
        run.log.contains("is not on origin/main"),
    );
    for (variant, arch, _) in LEGS {
        for what in [OFF_MAIN_TAG, &run.world.side[..8]] {
            let tag = format!("{what}-{arch}-{variant}");
            c.expect(format!("prod has no {tag}"), !run.after.has("prod", &tag));
        }
    }
    let latest = |s: &Snapshot| s.digest("prod", "latest-arm64-cpu").map(String::from);
    c.expect(
        "prod latest-arm64-cpu is unchanged",
        latest(&run.before).is_some() && latest(&run.before) == latest(&run.after),
    );
}

fn stage_unsigned(c: &mut Checks, run: &Run) {
    let merged8 = &run.world.commits.merged[..8];
    for (variant, arch, _) in LEGS {
        let tag = format!("{merged8}-{arch}-{variant}");
        let (before, after) = (
            run.before.digest("stage", &tag),
            run.after.digest("stage", &tag),
        );
        c.expect(
            format!("stage {tag} moved to another image"),
            before.is_some() && after.is_some() && before != after,
        );
        let signature = after.map(signature_tag).unwrap_or_default();
        c.expect(
            format!("stage has no signature for the new {tag}"),
            !run.after.has("stage", &signature),
        );
    }
}

fn prod_unsigned(c: &mut Checks, run: &Run) {
    c.expect(
        "promote refused the unsigned images",
        run.log.contains("unsigned: stage has no signature for"),
    );
    for (variant, arch, _) in LEGS {
        let tag = format!("{UNSIGNED_TAG}-{arch}-{variant}");
        c.expect(format!("prod has no {tag}"), !run.after.has("prod", &tag));
    }
    let prod = |s: &Snapshot| {
        s.tags("prod")
            .into_iter()
            .map(|tag| (tag.to_string(), s.digest("prod", tag).map(String::from)))
            .collect::<Vec<_>>()
    };
    c.expect(
        "nothing reached prod: every prod tag as before",
        !prod(&run.before).is_empty() && prod(&run.before) == prod(&run.after),
    );
}

/// What every scenario may refer to.
struct World {
    commits: Commits,
    /// The commit on [`SIDE_BRANCH`].
    side: String,
    /// The rehearsal's own events, played as `cargo xtask rehearse
    /// --workflows` plays them.
    pipeline: Vec<Play>,
}

impl World {
    fn stage(&self, name: &str) -> Play {
        let play = self.pipeline.iter().find(|p| p.name == name);
        play.unwrap_or_else(|| panic!("the rehearsal has no stage {name}"))
            .clone()
    }
}

/// What one act run left: its log, and the registries before and after.
struct Run<'a> {
    world: &'a World,
    log: String,
    before: Snapshot,
    after: Snapshot,
}

impl Run<'_> {
    /// The lines of the log that contain `needle`.
    fn count(&self, needle: &str) -> usize {
        self.log
            .lines()
            .filter(|line| line.contains(needle))
            .count()
    }
}

/// The runners a leg's `runs-on: ${{ matrix.runner }}` evaluated to, as act
/// logs it with `-v`: `... expression '${{ matrix.runner }}' evaluated to
/// 'X'`, or `'%!t(string=X)'`.
fn evaluated_runners(log: &str) -> Vec<&str> {
    let marker = "expression '${{ matrix.runner }}' evaluated to '";
    let mut runners: Vec<&str> = log
        .lines()
        .filter_map(|line| {
            let rest = &line[line.find(marker)? + marker.len()..];
            let value = &rest[..rest.find('\'')?];
            let value = value
                .strip_prefix("%!t(string=")
                .map_or(value, |v| v.trim_end_matches(')'));
            Some(value)
        })
        .collect();
    runners.sort_unstable();
    runners.dedup();
    runners
}

/// Every check, reported as it is made, like a test suite of its own.
#[derive(Default)]
struct Checks {
    scenario: String,
    passed: usize,
    failed: Vec<String>,
}

impl Checks {
    fn expect(&mut self, what: impl std::fmt::Display, ok: bool) {
        let what = format!("{}: {what}", self.scenario);
        if ok {
            eprintln!("PASS {what}");
            self.passed += 1;
        } else {
            eprintln!("FAIL {what}");
            self.failed.push(what);
        }
    }
}

/// FROM-scratch Dockerfiles instead of the real ones, whose base images are
/// not in the rig.
fn write_fixtures(clone: &Path) {
    for (variant, _, _) in LEGS {
        std::fs::write(
            clone.join(format!("Dockerfile-{variant}")),
            format!("FROM scratch\nCOPY fixture-{variant}.txt /fixture.txt\n"),
        )
        .unwrap();
        std::fs::write(
            clone.join(format!("fixture-{variant}.txt")),
            format!("workflow test fixture: {variant}\n"),
        )
        .unwrap();
    }
    std::fs::write(clone.join(".dockerignore"), "*\n!fixture-*.txt\n").unwrap();
}

#[test]
#[ignore = "needs the rig: make test"]
fn workflows_under_act_push_promote_and_refuse_what_they_should() {
    common::rig();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let runner = Runner::new(root, false, false);
    let workspace = Workspace::new(root, &common::unique("workflows"));
    workspace.create(&runner).unwrap();
    workspace.clone_tree(&runner, root, "main").unwrap();
    write_fixtures(&workspace.clone_dir());
    let commits = workspace.pull_request(&runner).unwrap().unwrap();
    let side = workspace
        .side_commit(&runner, SIDE_BRANCH)
        .unwrap()
        .unwrap();
    let pipeline = pipeline(&commits, RELEASE_TAG, &commits.merged);
    let world = World {
        commits,
        side,
        pipeline: pipeline.into_iter().map(|stage| stage.play).collect(),
    };
    registries::login(&runner, &workspace.repository).unwrap();
    // Only what the jobs would not set up themselves: a target directory of
    // their own (see act::JOB_TARGET_DIR).
    let env = [(
        "CARGO_TARGET_DIR",
        root.join(JOB_TARGET_DIR).display().to_string(),
    )];

    let mut checks = Checks {
        scenario: "matrix".into(),
        ..Checks::default()
    };
    // The legs, as the workflows' plan job computes them, and the runner
    // each must get.
    let matrix = common::run(common::xtask(&workspace.clone_dir()).arg("matrix"));
    let matrix: serde_json::Value = serde_json::from_slice(&matrix.stdout).unwrap();
    let mut legs: Vec<(&str, &str, &str)> = matrix["include"]
        .as_array()
        .unwrap()
        .iter()
        .map(|leg| {
            let field = |key: &str| leg[key].as_str().unwrap_or_default();
            (field("variant"), field("arch"), field("runner"))
        })
        .collect();
    legs.sort_unstable_by_key(|(variant, _, _)| LEGS.iter().position(|leg| leg.0 == *variant));
    checks.expect(format!("the legs are {LEGS:?} ({legs:?})"), legs == LEGS);

    let mut before = registries::read(&runner, &workspace.repository).unwrap();
    let mut times = Vec::new();
    let (mut compiled, mut reused) = (Vec::new(), Vec::new());
    for scenario in SCENARIOS {
        let play = (scenario.play)(&world);
        checks.scenario = play.name.clone();
        let prefix = format!("[{}] ", play.name);
        let log = runner.log_path(&prefix);
        play.write_payload(&workspace).unwrap();
        let started = std::time::Instant::now();
        let result = runner.run(&prefix, &play.step(&workspace, &env));
        times.push(format!(
            "{} {:.0}s",
            play.name,
            started.elapsed().as_secs_f64()
        ));
        eprintln!("act: {result:?}; log: {}", log.display());
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("rust-cache: Compiling xtask v") {
            compiled.push(play.name.clone());
        } else if text.contains("rust-cache: Fresh xtask v") {
            reused.push(play.name.clone());
        }
        for line in text
            .lines()
            .filter(|l| ["🏁", "❗", "❌"].iter().any(|m| l.contains(m)))
        {
            eprintln!("  | {line}");
        }
        let verdict = if scenario.succeeds {
            "succeeded"
        } else {
            "failed"
        };
        checks.expect(
            format!("act {verdict}"),
            result.is_ok() == scenario.succeeds,
        );
        let after = registries::read(&runner, &workspace.repository).unwrap();
        let run = Run {
            world: &world,
            log: text,
            before,
            after,
        };
        (scenario.check)(&mut checks, &run);
        before = run.after;
    }

    // Every run has the same xtask sources: the rust-cache stand-in lets
    // cargo compile xtask in the first job at most, and the others reuse it.
    checks.scenario = "rust-cache stand-in".into();
    checks.expect(
        format!("xtask was compiled in at most one run ({compiled:?}) and reused in the others ({reused:?})"),
        compiled.len() <= 1 && !reused.is_empty(),
    );
    eprintln!("\nact run times: {}", times.join(", "));
    for (env, _) in registries::REGISTRIES {
        eprintln!("  {env:<5} {}", before.tags(env).join(" "));
    }
    eprintln!(
        "\nworkflows: {} passed, {} failed",
        checks.passed,
        checks.failed.len()
    );
    assert!(
        checks.failed.is_empty(),
        "failed:\n{}",
        checks.failed.join("\n")
    );
}

#[test]
fn runs_on_is_read_from_acts_verbose_log() {
    let log = "[dev/build] expression '${{ matrix.runner }}' evaluated to '%!t(string=ubuntu-24.04-arm)'\n\
               [dev/build] expression '${{ matrix.runner }}' evaluated to 'ubuntu-24.04-arm'\n\
               other line";
    assert_eq!(evaluated_runners(log), ["ubuntu-24.04-arm"]);
    assert!(evaluated_runners("nothing").is_empty());
}

/// The branches a workflow's `on.push` trigger names, from its
/// `branches: [...]` line (the form these workflows use).
fn push_branches(workflow: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../.github/workflows")
        .join(workflow);
    let text = std::fs::read_to_string(&path).unwrap();
    let on = text.split("\non:\n").nth(1).expect("an on: block");
    let push = on.split("\n  push:\n").nth(1).expect("a push trigger");
    let line = push
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("branches:"))
        .expect("a branches filter");
    line.trim_start_matches("branches:")
        .trim()
        .trim_matches(['[', ']'])
        .split(',')
        .map(|b| b.trim().trim_matches('\'').to_string())
        .collect()
}

/// GitHub's branch filters cannot name the default branch: stage.yml takes
/// every branch and checks it, and ci.yml names both usual default
/// branches, so a `master` repository's pushes are checked too.
#[test]
fn pushes_to_a_main_or_master_default_branch_trigger_ci_and_stage() {
    assert_eq!(push_branches("stage.yml"), ["**"]);
    let ci = push_branches("ci.yml");
    assert!(
        ["main", "master"].iter().all(|b| ci.iter().any(|c| c == b)),
        "ci.yml on.push.branches: {ci:?}"
    );
}

/// The rules the earlier workflows broke, or that the brief sets, read from
/// the files in a plain `cargo test`: so GitHub's own ci checks a workflow
/// edit too, where act (which proves the whole runs) does not run.
#[test]
fn the_workflows_keep_the_rules_the_earlier_ones_broke() {
    let read = |name: &str| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../.github/workflows")
            .join(name);
        std::fs::read_to_string(&path).unwrap()
    };
    // On a release event the ref is the tag: a job that compared it to
    // the default branch was skipped at every release, silently.
    let prod = read("prod.yml");
    for line in prod.lines().map(str::trim).filter(|l| l.starts_with("if:")) {
        assert!(
            !line.contains("github.ref") && !line.contains("ref_name"),
            "prod.yml: {line}"
        );
    }
    assert!(
        prod.contains("\n    environment: prod\n"),
        "prod.yml runs in the prod environment"
    );
    // dev: a newer push to the pull request cancels the older run; stage
    // and prod: every run queues and none is cancelled halfway.
    let concurrency = |text: &str| -> Vec<String> {
        let block = text
            .split("\nconcurrency:\n")
            .nth(1)
            .expect("a concurrency block");
        block
            .lines()
            .take_while(|l| l.starts_with("  "))
            .map(|l| l.trim().to_string())
            .filter(|l| !l.starts_with('#') && !l.starts_with("group:"))
            .collect()
    };
    assert_eq!(concurrency(&read("dev.yml")), ["cancel-in-progress: true"]);
    for name in ["stage.yml", "prod.yml"] {
        assert_eq!(
            concurrency(&read(name)),
            ["cancel-in-progress: false", "queue: max"],
            "{name}"
        );
    }
    // Not one queue for both: a prod run waiting for the environment's
    // reviewers holds its group, and in stage's would hold every stage build.
    let group = |text: &str| -> String {
        let line = text
            .lines()
            .find(|l| l.starts_with("  group: "))
            .expect("a group");
        line.trim_start_matches("  group: ").to_string()
    };
    assert_eq!(group(&prod), "prod");
    assert!(
        group(&read("stage.yml")).ends_with("|| 'stage' }}"),
        "stage.yml"
    );
    // A build job frees the disk, then sets up a builder that can export a
    // cache, then builds.
    for name in ["dev.yml", "stage.yml"] {
        let text = read(name);
        let at = |needle: &str| {
            text.find(needle)
                .unwrap_or_else(|| panic!("{name}: no {needle}"))
        };
        assert!(
            at("- name: Free disk space") < at("driver: docker-container")
                && at("driver: docker-container") < at("run: cargo xtask build --push"),
            "{name}: the build job's steps are out of order"
        );
    }
}

/// The rust-cache stand-in (rig/actions/rust-cache/build-xtask) reuses a
/// build only for the sources it was made from: a fresh copy of the same
/// sources finds it fresh; changed sources, and then the first ones again,
/// are compiled.
#[test]
#[ignore = "needs the rig: make test"]
fn the_rust_cache_stand_in_reuses_a_build_only_of_the_same_sources() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let scratch = common::scratch_dir("rust-cache");
    let target = scratch.join("target");
    let copy = |name: &str| {
        let dir = scratch.join(name);
        let cloned = std::process::Command::new("git")
            .args(["clone", "--quiet"])
            .arg(root)
            .arg(&dir)
            .status()
            .unwrap();
        assert!(cloned.success());
        dir
    };
    let build = |workspace: &Path| {
        let output = common::run(
            std::process::Command::new("bash")
                .arg(root.join("rig/actions/rust-cache/build-xtask"))
                .env("GITHUB_WORKSPACE", workspace)
                .env("CARGO_TARGET_DIR", &target),
        );
        assert!(output.status.success(), "{output:?}");
        let said = String::from_utf8_lossy(&output.stdout).into_owned();
        eprintln!("{}: {said}", workspace.display());
        said
    };
    let first = copy("first");
    assert!(build(&first).contains("Compiling xtask v"));
    assert!(build(&copy("again")).contains("Fresh xtask v"));
    let changed = copy("changed");
    let lib = changed.join("xtask/src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(&lib, format!("{source}// changed\n")).unwrap();
    assert!(build(&changed).contains("Compiling xtask v"));
    assert!(build(&copy("back")).contains("Compiling xtask v"));
}
