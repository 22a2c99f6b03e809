//! On the rig: inputs a new user hands the pipeline, checked against real
//! registries and the aws CLI. A repository whose default branch is
//! `master`, promoted by prod.yml's own commands; a re-promote of a commit
//! whose variants the branch head no longer has; a dirty tree; a login to a
//! registry that is down, or that refuses the password.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// The `run:` commands of prod.yml's steps, in order, as argument lists
/// after `cargo xtask`. They must be plain commands: no shell expansion,
/// everything else comes from the event.
fn prod_yml_commands() -> Vec<Vec<String>> {
    let workflow = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.github/workflows/prod.yml");
    let text = std::fs::read_to_string(workflow).unwrap();
    let commands: Vec<Vec<String>> = text
        .lines()
        .filter_map(|line| line.trim().strip_prefix("run: cargo xtask "))
        .map(|args| {
            assert!(
                !args.contains(['$', '"', '\'']),
                "prod.yml passes promote something through the shell: {args}"
            );
            args.split_whitespace().map(str::to_string).collect()
        })
        .collect();
    assert_eq!(
        commands.last().map(|c| c[0].as_str()),
        Some("promote"),
        "{commands:?}"
    );
    commands
}

fn prod_tags(sha: &str, release: &str, variants: &[(&str, &str)]) -> Vec<String> {
    let mut tags: Vec<String> = variants
        .iter()
        .flat_map(|(variant, arch)| {
            [&sha[..8], release, "latest"].map(|what| format!("{what}-{arch}-{variant}"))
        })
        .collect();
    tags.sort();
    tags
}

/// A release on a repository whose default branch is `master`, through
/// prod.yml's exact steps (`login --env stage`, `login --env prod`,
/// `promote --no-login`), with a payload shaped like GitHub's and the refs an
/// `actions/checkout` with `fetch-depth: 0` leaves.
#[test]
#[ignore = "needs the rig: make test"]
fn a_release_on_a_master_repository_through_prod_yml() {
    let rig = rig();
    let fixture = Fixture::on_branch(
        "master-repo",
        r#"{"gpu": "linux/amd64", "cpu": "linux/arm64"}"#,
        &["gpu", "cpu"],
        "master",
    );
    let sha = fixture.head();
    let repo = unique("master-repo");
    stage_push(&fixture, None, &repo, &[]);
    fixture.git(&["update-ref", "refs/remotes/origin/master", &sha]);

    let template = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/events/release_published.json"),
    )
    .unwrap();
    let event = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("master-release.json"));
    std::fs::write(&event, template.replace("@DEFAULT_BRANCH@", "master")).unwrap();
    let summary = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("summary.md"));
    let docker_config = fresh_docker_config();
    for args in prod_yml_commands() {
        // As a workflow step runs it: in the checkout, no --root.
        let output = run(Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(&args)
            .current_dir(&fixture.root)
            .env_remove("XTASK_ROOT")
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_EVENT_NAME", "release")
            .env("GITHUB_EVENT_PATH", &event)
            .env("GITHUB_SHA", &sha)
            .env("GITHUB_REF", "refs/tags/v1.2.3")
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("ECR_REPOSITORY", &repo)
            .env("DOCKER_CONFIG", &docker_config));
        assert_eq!(output.status.code(), Some(0), "{args:?}");
    }
    let variants = [("gpu", "amd64"), ("cpu", "arm64")];
    assert_eq!(tags(&rig.prod, &repo), prod_tags(&sha, "v1.2.3", &variants));
    for (variant, arch) in variants {
        let stage_ref = format!("{}/{repo}:{}-{arch}-{variant}", rig.stage, &sha[..8]);
        let prod_ref = format!("{}/{repo}:v1.2.3-{arch}-{variant}", rig.prod);
        assert_eq!(raw_digest(&prod_ref), raw_digest(&stage_ref), "{prod_ref}");
    }
}

/// A manual re-promote runs on a branch head, whose .aws-architecture may
/// list fewer variants than the commit it promotes: every variant of that
/// commit reaches prod.
#[test]
#[ignore = "needs the rig: make test"]
fn a_re_promote_takes_the_variants_of_the_commit_not_of_the_checkout() {
    let rig = rig();
    let fixture = Fixture::standard("repromote-variants");
    let old = fixture.head();
    let repo = unique("repromote-variants");
    stage_push(&fixture, None, &repo, &[]);
    // The head drops cpu; the checkout is the head.
    let head = fixture.drop_variant("cpu", r#"{"gpu": "linux/amd64"}"#);
    fixture.git(&["update-ref", "refs/remotes/origin/main", &head]);

    let output = run(fixture.xtask().args([
        "promote",
        "--context",
        "dispatch",
        "--sha",
        &old,
        "--default-branch",
        "main",
        "--stage-repository",
        &repo,
        "--prod-repository",
        &repo,
    ]));
    assert_eq!(output.status.code(), Some(0));
    let variants = [("gpu", "amd64"), ("cpu", "arm64")];
    assert_eq!(
        tags(&rig.prod, &repo),
        prod_tags(&old, "workflow_dispatch", &variants)
    );
    let cpu = format!("{}/{repo}:{}-arm64-cpu", rig.prod, &old[..8]);
    let info = inspect(&cpu, "arm64").unwrap_or_else(|| panic!("no {cpu}"));
    assert_eq!(
        info["Labels"]["org.opencontainers.image.revision"].as_str(),
        Some(old.as_str())
    );
}

/// A new, untracked source file makes the tree dirty: a push to stage from
/// it under the commit's tags is refused before anything runs, and a plain
/// push gets only `make-<sha8>-dirty` tags and a dirty revision label.
#[test]
#[ignore = "needs the rig: make test"]
fn a_dirty_tree_is_never_pushed_under_clean_tags() {
    let rig = rig();
    let fixture = Fixture::standard("dirty-push");
    let sha = fixture.head();
    let repo = unique("dirty-push");
    std::fs::create_dir_all(fixture.root.join("app/src")).unwrap();
    std::fs::write(fixture.root.join("app/src/x.rs"), "fn new() {}\n").unwrap();

    let log = ToolLog::new("dirty-push-tools", &["docker", "aws"]);
    for claim in [["--context", "push"], ["--sha", sha.as_str()]] {
        let output = run(fixture
            .xtask()
            .args(["build", "--push", "--env", "stage", "--repository", &repo])
            .args(claim)
            .env("PATH", log.path()));
        assert_eq!(output.status.code(), Some(2), "{claim:?}");
        assert!(
            stderr(&output).contains("the working tree has uncommitted changes"),
            "{claim:?}: {}",
            stderr(&output)
        );
    }
    assert_eq!(log.calls(), Vec::<String>::new(), "a refused build ran");
    assert_eq!(tags(&rig.stage, &repo), Vec::<String>::new());

    let output = run(fixture.xtask().args([
        "build",
        "--push",
        "--env",
        "stage",
        "--variant",
        "gpu",
        "--repository",
        &repo,
    ]));
    assert_eq!(output.status.code(), Some(0));
    let dirty = format!("make-{}-dirty-amd64-gpu", &sha[..8]);
    assert_eq!(tags(&rig.stage, &repo), std::slice::from_ref(&dirty));
    let info = inspect(&format!("{}/{repo}:{dirty}", rig.stage), "amd64").unwrap();
    assert_eq!(
        info["Labels"]["org.opencontainers.image.revision"].as_str(),
        Some(format!("{sha}-dirty").as_str())
    );
}

/// The last line of stderr: the error xtask ends with.
fn error_line(output: &std::process::Output) -> String {
    let err = stderr(output);
    err.lines()
        .rfind(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in:\n{err}"))
        .to_string()
}

/// A failed login says what failed: the registry's own answer when docker
/// login failed (down, or the password refused), the aws CLI's when it did;
/// AWS credentials are blamed only then.
#[test]
#[ignore = "needs the rig: make test"]
fn a_failed_login_names_what_failed() {
    rig();
    let fixture = Fixture::standard("login-errors");
    let login = |registry: &str, extra: &[&str]| {
        run(fixture
            .xtask()
            .args(["login", "--registry", registry])
            .args(extra)
            .env("DOCKER_CONFIG", fresh_docker_config()))
    };

    let mut down = Registry::start("login-down", 5231, None);
    down.stop();
    let output = login(&down.address, &[]);
    assert_eq!(output.status.code(), Some(1));
    let error = error_line(&output);
    assert!(
        error.contains(&format!(
            "login to the dev registry {} failed",
            down.address
        )) && error.contains("connection refused")
            && !error.contains("AWS credentials"),
        "{error}"
    );

    let htpasswd = Command::new("htpasswd")
        .args(["-Bbn", "AWS", "not-the-emulator-token"])
        .output()
        .unwrap();
    let refusing = Registry::start(
        "login-refused",
        5232,
        Some(&String::from_utf8_lossy(&htpasswd.stdout)),
    );
    let output = login(&refusing.address, &[]);
    assert_eq!(output.status.code(), Some(1));
    let error = error_line(&output);
    assert!(
        error.to_ascii_lowercase().contains("unauthorized") && !error.contains("AWS credentials"),
        "{error}"
    );

    let output = login(&refusing.address, &["--profile", "no-such-profile"]);
    assert_eq!(output.status.code(), Some(1));
    let error = error_line(&output);
    assert!(
        error.contains("check the AWS credentials")
            && error.contains("`aws ecr get-login-password --profile no-such-profile` failed")
            && error.contains("no-such-profile"),
        "{error}"
    );
}
