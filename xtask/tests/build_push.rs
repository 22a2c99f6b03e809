//! `build` and `push` on the rig: the real engine, BuildKit, registries that
//! require a login, and the aws CLI against the emulator.

mod common;

use std::path::Path;
use std::process::Command;

use common::{
    arch_of, fresh_docker_config, inspect, reported_digest, rig, run, stderr, stdout, tags, unique,
    Fixture, Registry,
};

#[test]
#[ignore = "needs the rig: make test"]
fn build_push_both_variants_through_the_real_login() {
    let rig = rig();
    let fixture = Fixture::standard("push");
    let sha = fixture.head();
    let repo = unique("push").to_lowercase();
    let output = run(fixture
        .xtask()
        .args(["--verbose", "build", "--push", "--env", "dev"])
        .args(["--repository", &repo])
        .env("DOCKER_CONFIG", fresh_docker_config()));
    assert!(output.status.success());
    let expected: Vec<String> = {
        let mut t = vec![
            "latest-amd64-gpu".to_string(),
            format!("make-{}-amd64-gpu", &sha[..8]),
            "latest-arm64-cpu".to_string(),
            format!("make-{}-arm64-cpu", &sha[..8]),
        ];
        t.sort();
        t
    };
    assert_eq!(tags(&rig.dev, &repo), expected);
    for variant in ["gpu", "cpu"] {
        let reported = reported_digest(&stdout(&output), variant);
        for what in ["latest".to_string(), format!("make-{}", &sha[..8])] {
            let reference = format!("{}/{repo}:{what}-{}-{variant}", rig.dev, arch_of(variant));
            let image = inspect(&reference, arch_of(variant)).unwrap();
            assert_eq!(image["Architecture"], arch_of(variant), "{reference}");
            assert_eq!(image["Os"], "linux");
            assert_eq!(
                image["Digest"],
                reported.as_str(),
                "{reference}: digest differs from the build's"
            );
            assert_eq!(
                image["Labels"]["org.opencontainers.image.revision"],
                sha.as_str()
            );
            assert_eq!(image["Labels"]["org.opencontainers.image.variant"], variant);
        }
    }
    // Both variants ran at once, each line of BuildKit's (shown with
    // --verbose) marked with its variant.
    let err = stderr(&output);
    assert!(
        err.lines().any(|l| l.starts_with("[gpu] #"))
            && err.lines().any(|l| l.starts_with("[cpu] #"))
    );
    assert!(err.contains("[cpu] architecture check: linux/arm64, as asked"));
}

#[test]
#[ignore = "needs the rig: make test"]
fn the_registry_refuses_a_push_without_login() {
    let rig = rig();
    let fixture = Fixture::standard("nologin");
    let repo = unique("nologin").to_lowercase();
    let output = run(fixture
        .xtask()
        .args([
            "build",
            "--push",
            "--no-login",
            "--variant",
            "gpu",
            "--repository",
            &repo,
        ])
        .env("DOCKER_CONFIG", fresh_docker_config()));
    assert_eq!(output.status.code(), Some(1));
    // The first step that needs the login is the read of the commit's tag
    // (is its image there already?): refused, it fails the variant before
    // anything is built, with the registry's answer.
    let err = stderr(&output);
    assert!(
        err.contains("gpu: cannot tell whether ")
            && err.contains("docker buildx imagetools inspect: ")
            && err.contains("authorization failed"),
        "{err}"
    );
    assert!(!err.contains("docker buildx build"), "{err}");
    assert!(tags(&rig.dev, &repo).is_empty());
}

/// The commands a run printed, each with its prefix.
fn commands(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.contains("$ "))
        .map(String::from)
        .collect()
}

#[test]
#[ignore = "needs the rig: make test"]
fn dry_run_matches_the_real_run_command_for_command() {
    rig();
    let fixture = Fixture::standard("parity");
    let repo = unique("parity").to_lowercase();
    let args = ["build", "--push", "--repository", &repo];
    let config = fresh_docker_config();
    let dry = run(fixture
        .xtask()
        .arg("--dry-run")
        .args(args)
        .env("DOCKER_CONFIG", &config));
    let real = run(fixture.xtask().args(args).env("DOCKER_CONFIG", &config));
    assert!(dry.status.success() && real.status.success());
    let mut dry = commands(&stderr(&dry));
    let mut real = commands(&stderr(&real));
    // Concurrent variants interleave differently from run to run.
    dry.sort();
    real.sort();
    assert_eq!(dry, real);
    // The login; per variant the read of its commit tag, the build, its
    // push, the architecture check.
    assert_eq!(real.len(), 9, "{real:?}");
}

#[test]
#[ignore = "needs the rig: make test"]
fn registry_down_during_push_fails_clearly_and_a_rerun_finishes() {
    rig();
    let mut registry = Registry::start("down", 5210, None);
    let fixture = Fixture::standard("down");
    let repo = unique("down").to_lowercase();
    let config = fresh_docker_config();
    let login = run(fixture
        .xtask()
        .args(["login", "--registry", &registry.address])
        .env("DOCKER_CONFIG", &config));
    assert!(login.status.success());
    registry.stop();
    let address = registry.address.clone();
    let push = |config: &Path| {
        run(fixture
            .xtask()
            .args([
                "build",
                "--push",
                "--no-login",
                "--registry",
                &address,
                "--repository",
                &repo,
            ])
            .env("DOCKER_CONFIG", config))
    };
    let failed = push(&config);
    assert_eq!(failed.status.code(), Some(1));
    let err = stderr(&failed);
    assert!(err.contains("2 of 2 variants failed"), "{err}");
    // The read of each commit tag (is its image there already?) is the
    // first step to reach the registry; nothing is built without it.
    for variant in ["gpu", "cpu"] {
        let says = format!("{variant}: cannot tell whether 127.0.0.1:5210/");
        assert!(
            err.contains(&says) && err.contains("connection refused"),
            "{err}"
        );
    }
    assert!(!err.contains("docker buildx build"), "{err}");
    assert!(
        stdout(&failed)
            .lines()
            .filter(|l| l.contains("FAILED"))
            .count()
            == 2
    );

    registry.resume();
    let again = push(&config);
    assert!(again.status.success());
    assert_eq!(tags(&address, &repo).len(), 4);
}

#[test]
#[ignore = "needs the rig: make test"]
fn a_build_that_fails_runs_once_and_names_buildkits_answer() {
    let rig = rig();
    let fixture = Fixture::standard("fails");
    // A Dockerfile error fails the same way every time: retrying the step
    // would build again (from nothing under `--cache none`) for nothing.
    std::fs::write(
        fixture.root.join("Dockerfile-gpu"),
        "FROM scratch\nCOPY no-such-file /x\n",
    )
    .unwrap();
    fixture.commit("a broken gpu Dockerfile");
    let repo = unique("fails").to_lowercase();
    let output = run(fixture
        .xtask()
        .args(["build", "--push", "--env", "dev", "--cache", "none"])
        .args(["--variant", "gpu", "--repository", &repo])
        .env("DOCKER_CONFIG", fresh_docker_config()));
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    let builds = commands(&err)
        .iter()
        .filter(|c| c.contains("$ docker buildx build"))
        .count();
    assert_eq!(builds, 1, "the failed build ran {builds} times:\n{err}");
    assert!(!err.contains("retrying"), "{err}");
    assert!(
        err.contains("build of gpu for linux/amd64 failed")
            && err.contains("no-such-file")
            && err.contains("not found"),
        "{err}"
    );
    assert!(tags(&rig.dev, &repo).is_empty());
}

#[test]
#[ignore = "needs the rig: make test"]
fn missing_tools_are_named_before_anything_runs() {
    let rig = rig();
    let fixture = Fixture::standard("tools");
    let repo = unique("tools").to_lowercase();
    let bin = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("only-git"));
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(common::which("git"), bin.join("git")).unwrap();
    let output = run(fixture
        .xtask()
        .args(["build", "--push", "--repository", &repo])
        .env("PATH", &bin));
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("`docker` is not on PATH (install Docker"),
        "{err}"
    );
    assert!(
        err.contains("`aws` is not on PATH (install the AWS CLI"),
        "{err}"
    );
    assert!(!err.contains("$ "), "something ran: {err}");
    assert!(tags(&rig.dev, &repo).is_empty());
}

#[test]
#[ignore = "needs the rig: make test"]
fn wrong_registry_password_fails_clearly_and_never_shows_a_secret() {
    rig();
    let htpasswd = Command::new("htpasswd")
        .args(["-Bbn", "AWS", "not-the-emulator-token"])
        .output()
        .unwrap();
    assert!(htpasswd.status.success());
    let registry = Registry::start(
        "badpass",
        5211,
        Some(&String::from_utf8_lossy(&htpasswd.stdout)),
    );
    let fixture = Fixture::standard("badpass");
    let output = run(fixture
        .xtask()
        .args(["build", "--push", "--registry", &registry.address])
        .env("DOCKER_CONFIG", fresh_docker_config()));
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains(&format!(
            "login to the dev registry {} failed",
            registry.address
        )),
        "{err}"
    );
    assert!(
        !err.contains("buildx build"),
        "built after a failed login: {err}"
    );
    let token = common::ecr_token();
    assert!(
        !err.contains(&token) && !stdout(&output).contains(&token),
        "the password leaked"
    );
}

#[test]
#[ignore = "needs the rig: make test"]
fn build_loads_locally_then_push_reports_the_registry_digest_and_clean_removes_it() {
    let rig = rig();
    let fixture = Fixture::standard("local");
    let repo = unique("local").to_lowercase();
    let config = fresh_docker_config();
    let build = run(fixture
        .xtask()
        .args(["build", "--repository", &repo])
        .env("DOCKER_CONFIG", &config));
    assert!(build.status.success());
    // Quiet by default: BuildKit's steps are in each variant's log, not on stderr.
    let err = stderr(&build);
    for variant in ["gpu", "cpu"] {
        let log = fixture
            .root
            .join(format!("target/xtask/logs/{variant}.log"));
        assert!(
            err.contains(&format!("[{variant}] (output: {})", log.display())),
            "{err}"
        );
        let log = std::fs::read_to_string(&log).unwrap();
        assert!(log.lines().any(|l| l.starts_with("#1 ")), "{log}");
    }
    assert!(!err.lines().any(|l| l.contains("] #")), "{err}");
    let image = format!("{}/{repo}", rig.dev);
    let local = Command::new("docker")
        .args([
            "image",
            "inspect",
            "--format",
            "{{.Os}}/{{.Architecture}}",
            &format!("{image}:latest-arm64-cpu"),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&local.stdout).trim(), "linux/arm64");
    assert!(
        tags(&rig.dev, &repo).is_empty(),
        "build without --push pushed"
    );

    // A commit since the build: its tags are not in the engine, and nothing
    // is pushed (it used to push `latest-*`, the earlier build's, first).
    let built = fixture.head();
    fixture.commit("later");
    let push = run(fixture
        .xtask()
        .args(["push", "--repository", &repo])
        .env("DOCKER_CONFIG", &config));
    let err = stderr(&push);
    assert_eq!(push.status.code(), Some(2), "{err}");
    assert!(
        err.contains("not every tag of this commit's image is in the local engine (")
            && err.contains("build it first: cargo xtask build --variant "),
        "{err}"
    );
    assert!(!err.contains("$ docker push"), "{err}");
    assert_eq!(tags(&rig.dev, &repo), Vec::<String>::new());
    fixture.git(&["checkout", "--quiet", &built]);

    let push = run(fixture
        .xtask()
        .args(["push", "--repository", &repo])
        .env("DOCKER_CONFIG", &config));
    assert!(push.status.success());
    for variant in ["gpu", "cpu"] {
        let reported = reported_digest(&stdout(&push), variant);
        let served = common::digest(
            &format!("{image}:latest-{}-{variant}", arch_of(variant)),
            arch_of(variant),
        );
        assert_eq!(served.as_deref(), Some(reported.as_str()));
    }

    let clean = run(fixture.xtask().args(["clean", "--repository", &repo]));
    assert!(clean.status.success());
    let left = Command::new("docker")
        .args(["image", "ls", "-q", &image])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&left.stdout).trim().is_empty(),
        "clean left images"
    );
}

/// Under GitHub Actions: log groups, and a step summary with every image,
/// tag and digest.
#[test]
#[ignore = "needs the rig: make test"]
fn github_actions_mode_groups_the_log_and_writes_a_summary() {
    let rig = rig();
    let fixture = Fixture::standard("summary");
    let repo = unique("summary").to_lowercase();
    let summary = fixture.root.with_extension("summary.md");
    let event = fixture.root.with_extension("event.json");
    let push = r#"{"ref": "refs/heads/main", "repository": {"default_branch": "main"}}"#;
    std::fs::write(&event, push).unwrap();
    let output = run(fixture
        .xtask()
        .args(["build", "--push", "--repository", &repo])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_EVENT_NAME", "push")
        .env("GITHUB_EVENT_PATH", &event)
        .env("GITHUB_SHA", fixture.head())
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("DOCKER_CONFIG", fresh_docker_config()));
    assert!(output.status.success());
    let err = stderr(&output);
    assert!(
        err.contains(&format!(
            "::group::build and push gpu, cpu to {}/{repo} (push to the default branch)",
            rig.dev
        )) && err.contains("::endgroup::"),
        "{err}"
    );
    let summary = std::fs::read_to_string(summary).unwrap();
    let sha8 = &fixture.head()[..8];
    for variant in ["gpu", "cpu"] {
        let arch = arch_of(variant);
        let digest =
            common::digest(&format!("{}/{repo}:{sha8}-{arch}-{variant}", rig.dev), arch).unwrap();
        // The image table's row: variant, platform, result, digest, time, tags.
        let tag = format!("{sha8}-{arch}-{variant}");
        let row = summary
            .lines()
            .find(|l| l.starts_with(&format!("| {variant} |")) && l.contains(&tag))
            .unwrap_or_else(|| panic!("no image row for {variant} with {tag}:\n{summary}"));
        assert!(row.contains(&digest), "{row}");
    }
}

/// A re-run for the same commit (GitHub's "Re-run all jobs") tags the
/// image the registry already holds instead of building it again: a rebuild
/// would push another digest under `<sha8>` (an image is dated by its build),
/// which promote refuses once prod holds the first. `--cache none` builds
/// everything again.
#[test]
#[ignore = "needs the rig: make test"]
fn a_rerun_for_the_same_commit_tags_the_pushed_image_instead_of_rebuilding() {
    let rig = rig();
    let fixture = Fixture::standard("rerun");
    let repo = unique("rerun").to_lowercase();
    let event = fixture.root.with_extension("event.json");
    let push = r#"{"ref": "refs/heads/main", "repository": {"default_branch": "main"}}"#;
    std::fs::write(&event, push).unwrap();
    let stage = |extra: &[&str]| {
        let output = run(fixture
            .xtask()
            .args(["build", "--push", "--repository", &repo])
            .args(extra)
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_EVENT_NAME", "push")
            .env("GITHUB_EVENT_PATH", &event)
            .env("GITHUB_SHA", fixture.head()));
        let (out, err) = (stdout(&output), stderr(&output));
        assert_eq!(output.status.code(), Some(0), "{err}");
        (out, err)
    };
    let sha8 = &fixture.head()[..8];
    let digests = || -> Vec<(String, String)> {
        ["gpu", "cpu"]
            .iter()
            .map(|variant| {
                let arch = arch_of(variant);
                let at = |what: &str| {
                    let reference = format!("{}/{repo}:{what}-{arch}-{variant}", rig.dev);
                    common::digest(&reference, arch).unwrap()
                };
                (at(sha8), at("latest"))
            })
            .collect()
    };
    let (_, first) = stage(&[]);
    assert!(!first.contains("already this commit's image"), "{first}");
    let built = digests();

    let (table, again) = stage(&[]);
    for variant in ["gpu", "cpu"] {
        let reference = format!("{}/{repo}:{sha8}-{}-{variant}", rig.dev, arch_of(variant));
        let says = format!("[{variant}] {reference} is already this commit's image (");
        assert!(again.contains(&says), "{again}");
        let row = table.lines().find(|l| l.starts_with(variant)).unwrap();
        assert!(row.contains(" reused "), "{table}");
    }
    assert!(!again.contains("docker buildx build"), "rebuilt: {again}");
    assert_eq!(digests(), built, "a re-run moved a tag to another digest");

    let (_, rebuilt) = stage(&["--cache", "none"]);
    assert!(
        !rebuilt.contains("already this commit's image"),
        "{rebuilt}"
    );
    assert!(rebuilt.contains("docker buildx build"), "{rebuilt}");
}

/// `clean` removes this repository's images, under both names a build
/// gives them (in the registry, and bare), by reference: another project's
/// name for the very same image stays. The shared build cache stays too, and
/// clean says how to empty it.
#[test]
#[ignore = "needs the rig: make test"]
fn clean_removes_this_repositorys_images_and_nothing_else() {
    let rig = rig();
    let fixture = Fixture::new("clean", r#"{"gpu": "linux/amd64"}"#, &["gpu"]);
    let repo = unique("clean").to_lowercase();
    let build = run(fixture.xtask().args(["build", "--repository", &repo]));
    assert!(build.status.success());
    let ours = format!("{}/{repo}:latest-amd64-gpu", rig.dev);
    let bare = format!("{repo}:local");
    let theirs = format!("{repo}-theirs:latest");
    for name in [&bare, &theirs] {
        let tag = run(Command::new("docker").args(["tag", &ours, name]));
        assert!(tag.status.success());
    }

    let clean = run(fixture.xtask().args(["clean", "--repository", &repo]));
    assert!(clean.status.success());
    let names = |filter: &str| -> String {
        let output = Command::new("docker")
            .args(["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"])
            .args(["--filter", &format!("reference={filter}")])
            .output()
            .unwrap();
        assert!(output.status.success());
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    assert_eq!(
        names(&format!("{}/{repo}:*", rig.dev)),
        "",
        "clean left ours"
    );
    assert_eq!(names(&format!("{repo}:*")), "", "clean left the bare name");
    assert_eq!(
        names(&format!("{repo}-theirs:*")),
        theirs,
        "clean took theirs"
    );
    let err = stderr(&clean);
    assert!(
        err.contains("build cache: left alone") && err.contains("`docker builder prune --all`"),
        "{err}"
    );
    assert!(
        !err.contains("$ docker builder prune"),
        "clean pruned: {err}"
    );
    let _ = Command::new("docker")
        .args(["image", "rm", &theirs])
        .output();
}
