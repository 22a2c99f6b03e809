//! `cargo xtask rehearse` on the rig: the whole pipeline with the real
//! Dockerfiles (from stand-in bases), then a rehearsal with a broken
//! release. One test, so the rehearsals never share the rig at the same time.
//! `--workflows` plays the same stages under act with the same pieces as
//! `tests/workflows.rs`, which runs them: act runs once per scenario.

mod common;

use std::path::Path;
use std::process::Output;

use common::{rig, run, stderr, stdout, tags, unique, Rig};

#[test]
#[ignore = "needs the rig: make test"]
fn rehearsals_run_the_pipeline_and_a_broken_release_fails() {
    let rig = rig();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();

    let repository = unique("rehearsal");
    let full = rehearse(root, &repository, &[]);
    assert_full_rehearsal(&rig, &full, &repository);

    // From a clone whose default branch is master, as many repositories'
    // is (it used to clone `main`, and fail): the same rig, by RIG_DIR.
    let master = common::scratch_dir("rehearsal-master").join("repo");
    let dest = master.display().to_string();
    common::git_in(
        root,
        &["clone", "--quiet", &root.display().to_string(), &dest],
    );
    common::git_in(&master, &["branch", "--move", "master"]);
    let broken_repository = unique("rehearsal-broken");
    let broken = rehearse(&master, &broken_repository, &["--broken-release"]);
    assert_eq!(broken.status.code(), Some(1));
    let err = stderr(&broken);
    assert!(err.contains("==> stage release FAILED"), "{err}");
    assert!(err.contains(" clone --quiet --branch master "), "{err}");
    // The hint checks out what the stage ran on, then runs the stage.
    let hint = err
        .lines()
        .find_map(|l| l.trim().strip_prefix("re-run just this stage: "))
        .unwrap_or_default();
    assert!(
        hint.starts_with("git -C ") && hint.contains(" checkout --quiet --detach "),
        "{err}"
    );
    assert!(hint.contains(" && rig/rig exec "), "{err}");
    assert!(err.contains("is not on origin/main"), "{err}");
    assert!(
        !err.contains("==> stage re-promote"),
        "ran past the failed stage"
    );
    // A containerd-store engine also exports the cache-<arch>-<variant> tags.
    let stage_tags = tags(&rig.stage, &broken_repository);
    let images: Vec<&String> = stage_tags
        .iter()
        .filter(|t| !t.starts_with("cache-"))
        .collect();
    assert_eq!(images.len(), 4, "stage was rehearsed: {stage_tags:?}");
    assert!(
        tags(&rig.prod, &broken_repository).is_empty(),
        "prod was touched"
    );
}

/// Every stage held, and the closing table shows prod at stage's digests.
fn assert_full_rehearsal(rig: &Rig, output: &Output, repository: &str) {
    assert!(output.status.success());
    let table = stdout(output);
    for env in ["dev", "stage", "prod"] {
        assert!(
            table.lines().any(|l| l.starts_with(env)),
            "no {env} rows in:\n{table}"
        );
    }
    let prod_rows: Vec<&str> = table.lines().filter(|l| l.starts_with("prod")).collect();
    // cosign's signature tags (`sha256-<digest>.sig`) came along, one per
    // variant, as their own rows.
    let (signatures, images): (Vec<&str>, Vec<&str>) = prod_rows.iter().partition(|l| {
        l.split_whitespace()
            .nth(1)
            .is_some_and(|t| t.ends_with(".sig"))
    });
    assert_eq!(
        images.len(),
        8,
        "sha8, release, workflow_dispatch and latest for both variants:\n{table}"
    );
    assert_eq!(signatures.len(), 2, "a signature per variant:\n{table}");
    assert!(
        prod_rows.iter().all(|l| l.trim_end().ends_with("yes")),
        "{table}"
    );
    assert!(tags(&rig.dev, repository)
        .iter()
        .any(|t| t == "PR-1-arm64-cpu"));
    let err = stderr(output);
    // Quiet: the builds' own output (each line prefixed with its variant)
    // is in the stages' logs, whose paths are printed.
    assert!(
        !err.lines()
            .any(|l| l.starts_with("[gpu] ") || l.starts_with("[cpu] ")),
        "tool output on the terminal:\n{err}"
    );
    let log = stage_log(&err, "dev");
    assert!(
        std::fs::read_to_string(&log).unwrap().contains("[cpu] "),
        "no build output in {log}"
    );
    for stage in ["dev", "stage", "release", "re-promote"] {
        assert!(
            err.contains(&format!("==> stage {stage} held")),
            "{stage} not announced as held"
        );
    }
}

/// `cargo xtask rehearse --keep --repository REPO EXTRA...`.
fn rehearse(root: &Path, repository: &str, extra: &[&str]) -> std::process::Output {
    run(common::xtask(root)
        .args(["rehearse", "--keep", "--repository", repository])
        .args(extra))
}

/// The log file the runner names for a stage: `[dev] (output: PATH)`.
fn stage_log(stderr: &str, stage: &str) -> String {
    let announced = format!("[{stage}] (output: ");
    stderr
        .lines()
        .find_map(|l| l.strip_prefix(&announced))
        .map(|path| path.trim_end_matches(')').to_string())
        .unwrap_or_else(|| panic!("no log named for stage {stage}:\n{stderr}"))
}
