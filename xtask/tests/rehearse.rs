//! `cargo xtask rehearse` on the rig: the whole pipeline with the real
//! Dockerfiles (from stand-in bases), then a rehearsal with a broken release.
//! One test, so the two rehearsals never share the rig at the same time.

mod common;

use std::path::Path;

use common::{rig, run, stderr, stdout, tags, unique};

#[test]
fn rehearsal_runs_the_pipeline_and_a_broken_release_fails_at_its_stage() {
    let rig = rig();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();

    let repository = unique("rehearsal");
    let full = run(common::xtask(root).args(["rehearse", "--keep", "--repository", &repository]));
    assert!(full.status.success());
    let table = stdout(&full);
    for env in ["dev", "stage", "prod"] {
        assert!(table.lines().any(|l| l.starts_with(env)), "no {env} rows in:\n{table}");
    }
    let prod_rows: Vec<&str> = table.lines().filter(|l| l.starts_with("prod")).collect();
    assert_eq!(prod_rows.len(), 8, "sha8, release, workflow_dispatch and latest for both variants:\n{table}");
    assert!(prod_rows.iter().all(|l| l.trim_end().ends_with("yes")), "{table}");
    assert!(tags(&rig.dev, &repository).iter().any(|t| t == "PR-1-arm64-cpu"));
    let err = stderr(&full);
    for stage in ["dev", "stage", "release", "re-promote"] {
        assert!(err.contains(&format!("==> stage {stage} held")), "{stage} not announced as held");
    }

    let broken_repository = unique("rehearsal-broken");
    let broken = run(common::xtask(root).args([
        "rehearse",
        "--keep",
        "--broken-release",
        "--repository",
        &broken_repository,
    ]));
    assert_eq!(broken.status.code(), Some(1));
    let err = stderr(&broken);
    assert!(err.contains("==> stage release FAILED"), "{err}");
    assert!(err.contains("re-run just this stage: rig/rig exec"), "{err}");
    assert!(err.contains("is not on main"), "{err}");
    assert!(!err.contains("==> stage re-promote"), "ran past the failed stage");
    assert!(tags(&rig.stage, &broken_repository).len() == 4, "stage was rehearsed");
    assert!(tags(&rig.prod, &broken_repository).is_empty(), "prod was touched");
}
