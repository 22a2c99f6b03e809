//! The built binary, end to end, without the rig: plan, matrix, dry runs and
//! bad input. A fake `docker`/`aws`/`skopeo` on `PATH` records any call, to
//! prove that bad input runs nothing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{fake_ecr_registries, run, stderr, stdout, xtask, Fixture, ToolLog};
use serde_json::Value;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Recording stand-ins for the external tools git aside: a test that
/// must run nothing shows it by their empty log.
fn stand_ins(name: &str) -> ToolLog {
    ToolLog::fake(name, &["docker", "aws", "skopeo"])
}

#[test]
fn plan_json_on_the_shipped_repository() {
    let output = run(xtask(&workspace_root())
        .args(["plan", "--format", "json"])
        .env_remove("ECR_REGISTRY_DEV"));
    assert!(output.status.success());
    let plan: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let images = plan["images"].as_array().unwrap();
    let by_variant = |v: &str| images.iter().find(|i| i["variant"] == v).unwrap().clone();
    let (gpu, cpu) = (by_variant("gpu"), by_variant("cpu"));
    assert_eq!(
        (gpu["platform"].as_str(), gpu["arch"].as_str()),
        (Some("linux/amd64"), Some("amd64"))
    );
    assert_eq!(
        (cpu["platform"].as_str(), cpu["runner"].as_str()),
        (Some("linux/arm64"), Some("ubuntu-24.04-arm"))
    );
    assert_eq!(gpu["dockerfile"], "Dockerfile-gpu");
    let git = |args: &[&str]| {
        let output = Command::new("git")
            .args(args)
            .current_dir(workspace_root())
            .output()
            .unwrap();
        String::from_utf8(output.stdout).unwrap()
    };
    let head = git(&["rev-parse", "HEAD"]);
    let sha8 = &head[..8];
    let tags: Vec<&str> = gpu["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    // A checkout being edited is dirty: then it gets only the dirty tag.
    let status = git(&["status", "--porcelain", "--untracked-files=normal"]);
    if status.trim().is_empty() {
        assert_eq!(
            tags,
            [
                "latest-amd64-gpu".to_string(),
                format!("make-{sha8}-amd64-gpu")
            ]
        );
    } else {
        assert_eq!(tags, [format!("make-{sha8}-dirty-amd64-gpu")]);
    }
    assert!(gpu["labels"]["org.opencontainers.image.revision"]
        .as_str()
        .unwrap()
        .starts_with(head.trim()));
}

#[test]
fn matrix_has_one_leg_per_variant_on_its_runner() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(common::unique("matrix"));
    std::fs::create_dir_all(&dir).unwrap();
    let github_output = dir.join("output");
    let output = run(xtask(&workspace_root())
        .args(["matrix", "--github-output"])
        .env("GITHUB_OUTPUT", &github_output));
    assert!(output.status.success());
    let matrix: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let legs: Vec<(String, String)> = matrix["include"]
        .as_array()
        .unwrap()
        .iter()
        .map(|leg| {
            (
                leg["variant"].as_str().unwrap().into(),
                leg["runner"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        legs,
        [
            ("gpu".into(), "ubuntu-latest".into()),
            ("cpu".into(), "ubuntu-24.04-arm".into())
        ]
    );
    let written = std::fs::read_to_string(github_output).unwrap();
    assert_eq!(written, format!("matrix={}", stdout(&output)));
}

#[test]
fn matrix_without_github_output_variable_is_bad_input() {
    // Set but empty counts as unset, as for every variable.
    for empty in [false, true] {
        let mut command = xtask(&workspace_root());
        command.args(["matrix", "--github-output"]);
        if empty {
            command.env("GITHUB_OUTPUT", "");
        } else {
            command.env_remove("GITHUB_OUTPUT");
        }
        let output = run(&mut command);
        assert_eq!(output.status.code(), Some(2), "empty: {empty}");
        assert!(
            stderr(&output).contains("GITHUB_OUTPUT is not set"),
            "empty: {empty}"
        );
    }
}

/// A `GITHUB_OUTPUT` that cannot be written (a missing directory, a
/// directory) is bad input too, exit 2, naming the variable. (It was exit 1.)
#[test]
fn matrix_with_an_unwritable_github_output_is_bad_input() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    for path in [dir.join("no-such-dir/out"), dir.to_path_buf()] {
        let output = run(xtask(&workspace_root())
            .args(["matrix", "--github-output"])
            .env("GITHUB_OUTPUT", &path));
        let stderr = stderr(&output);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{}: {stderr}",
            path.display()
        );
        let named = format!("cannot write to GITHUB_OUTPUT={} (", path.display());
        assert!(stderr.contains(&named), "{stderr}");
        assert!(
            stderr.contains("point it at a file that can be written"),
            "{stderr}"
        );
    }
}

/// Every malformed `.aws-architecture` exits 2, names the file and the
/// problem, and runs no external command.
#[test]
fn malformed_architecture_files_exit_2_and_run_nothing() {
    let cases: &[(&str, &str)] = &[
        ("not json", "invalid JSON"),
        ("[]", "expected a JSON object"),
        ("{}", "no variants"),
        (
            r#"{"gpu": "linux/arm64", "cpu": "linux/arm64"}"#,
            "AWS Batch GPU compute environments are amd64-only",
        ),
        (
            r#"{"gpu": "linux/amd64"}"#,
            "Dockerfile-cpu has no key \"cpu\"",
        ),
        (
            r#"{"gpu": "linux/amd64", "cpu": "linux/s390x"}"#,
            "key \"cpu\" has platform \"linux/s390x\"",
        ),
        (
            r#"{"gpu": 64, "cpu": "linux/arm64"}"#,
            "key \"gpu\" must be a string",
        ),
    ];
    let tools = stand_ins("malformed");
    for (content, expected) in cases {
        let fixture = Fixture::standard("malformed");
        std::fs::write(fixture.root.join(".aws-architecture"), content).unwrap();
        for args in [
            vec!["plan"],
            vec!["matrix"],
            vec!["build"],
            vec!["build", "--push", "--registry", "127.0.0.1:9"],
            vec!["push", "--registry", "127.0.0.1:9"],
        ] {
            let output = run(fixture.xtask().args(&args).env("PATH", tools.path()));
            assert_eq!(output.status.code(), Some(2), "{content} with {args:?}");
            let err = stderr(&output);
            assert!(
                err.contains(".aws-architecture") && err.contains(expected),
                "{content}: {err}"
            );
            assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        }
    }
    let missing = Fixture::standard("missing");
    std::fs::remove_file(missing.root.join(".aws-architecture")).unwrap();
    let output = run(missing.xtask().arg("build").env("PATH", tools.path()));
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains(".aws-architecture: not found in"));
    assert_eq!(tools.calls(), Vec::<String>::new(), "bad input ran");
}

#[test]
fn bad_flags_exit_2_and_run_nothing() {
    let tools = stand_ins("flags");
    let fixture = Fixture::standard("flags");
    let sha = fixture.head();
    let long = "v".repeat(119);
    let too_long =
        format!("--release-tag: release tag \"{long}\" is 119 characters; the limit is 118");
    for (args, expected) in [
        (
            vec!["build", "--variant", "tpu"],
            "--variant tpu: not in .aws-architecture; use one of: gpu, cpu, all",
        ),
        (
            vec!["build", "--push"],
            "no dev registry: pass --registry or set ECR_REGISTRY_DEV",
        ),
        (
            vec![
                "plan",
                "--context",
                "release",
                "--release-tag",
                "release/1.0",
            ],
            "--release-tag: release tag \"release/1.0\" cannot be used in image tags",
        ),
        (
            vec!["build", "--context", "release", "--release-tag", &long],
            &too_long,
        ),
        (
            vec!["plan", "--context", "pr"],
            "a pull request context needs --pr-number",
        ),
        (
            // GitHub numbers pull requests from 1: PR-0 tags no pull request.
            vec!["plan", "--context", "pr", "--pr-number", "0"],
            "invalid value '0' for '--pr-number <N>'",
        ),
        (vec!["plan", "--sha", "abc123"], "is not a full commit SHA"),
        (
            vec!["build", "--release-tag", "v1.2.3"],
            "--release-tag is for --context release, but this runs as --context terminal",
        ),
        (
            vec!["promote", "--context", "push"],
            "promote runs for a release or a manual re-promote",
        ),
        (
            vec!["login", "--no-login"],
            "login --no-login would do nothing",
        ),
        (
            // Host names are case-insensitive: one registry.
            vec![
                "promote",
                "--context",
                "dispatch",
                "--stage-registry",
                "Registry.example",
                "--prod-registry",
                "registry.example",
                "--stage-repository",
                "app",
                "--prod-repository",
                "app",
            ],
            "stage and prod are both Registry.example/app",
        ),
        (
            vec!["build", "--registry", "https://x/y", "--push"],
            "--registry \"https://x/y\" is not a registry host: it has a scheme",
        ),
        (
            vec!["build", "--push", "--env", "prod"],
            "--env prod: prod is written only by `cargo xtask promote`",
        ),
        (
            vec!["push", "--env", "prod"],
            "--env prod: prod is written only by `cargo xtask promote`",
        ),
        (
            vec!["build", "--push", "--env", "stage", "--registry", "r.example", "--context", "pr", "--pr-number", "3", "--signing-key", "awskms:///alias/stage"],
            "--env stage takes the default branch's images (--context push, dispatch or terminal), not a pull request #3's",
        ),
        (
            vec!["push", "--env", "stage", "--registry", "r.example", "--context", "release", "--release-tag", "v1.0.0", "--signing-key", "awskms:///alias/stage"],
            "--env stage takes the default branch's images (--context push, dispatch or terminal), not a release v1.0.0's",
        ),
        (
            vec!["build", "--cache", "registry"],
            "--cache registry keeps the cache in a registry: no dev registry: pass --registry or set ECR_REGISTRY_DEV",
        ),
        (
            vec!["build", "--cache", "registry", "--env", "prod"],
            "--cache registry keeps the cache in a registry: --env prod: prod is written only by `cargo xtask promote`",
        ),
        (
            vec!["build", "--min-free-gb", "99999999999"],
            "invalid value '99999999999' for '--min-free-gb <GB>': 99999999999 is not in 0..=1000000",
        ),
        (
            vec!["build", "--frobnicate"],
            "unexpected argument '--frobnicate'",
        ),
        // Flags that would do nothing: they used to be taken without a word.
        (
            vec!["build", "--no-login"],
            "--no-login is for the registry login, and a build without --push or --cache registry logs in nowhere; add --push (or --cache registry), or drop --no-login",
        ),
        (
            vec!["build", "--region", "eu-west-1"],
            "--region is for the registry login, and a build without --push or --cache registry logs in nowhere",
        ),
        (
            vec!["build", "--signing-key", "cosign.key"],
            "--signing-key signs stage pushes, and a build without --push pushes nothing; push with --env stage, or drop --signing-key",
        ),
        (
            vec!["push", "--registry", "r.example", "--signing-key", "cosign.key"],
            "--signing-key signs stage pushes, and dev pushes are not signed",
        ),
        // Login flags beside --no-login, and a region that is not the
        // host's: refused before any step (they used to be ignored, or
        // refused only after the local images' inspection ran).
        (
            vec!["push", "--registry", "r.example", "--no-login", "--region", "us-east-1"],
            "--region is for the registry login, and --no-login skips it; drop --region, or --no-login to log in through the aws CLI",
        ),
        (
            vec!["build", "--push", "--registry", "r.example", "--no-login", "--profile", "ci"],
            "--profile is for the registry login, and --no-login skips it",
        ),
        (
            vec!["promote", "--context", "release", "--release-tag", "v1.0.0", "--stage-registry", "r.example", "--prod-registry", "p.example", "--no-login", "--profile", "ci"],
            "--profile is for the registry login, and --no-login skips it",
        ),
        (
            vec!["promote", "--context", "release", "--release-tag", "v1.0.0", "--stage-registry", "r.example", "--prod-registry", "p.example", "--no-login", "--prod-profile", "prod"],
            "--prod-profile is for the registry login, and --no-login skips it",
        ),
        (
            vec!["push", "--registry", "1.dkr.ecr.us-east-1.amazonaws.com", "--region", "us-west-2"],
            "--region us-west-2 is not the region of the dev registry 1.dkr.ecr.us-east-1.amazonaws.com (us-east-1)",
        ),
        (
            vec!["build", "--push", "--registry", "1.dkr.ecr.us-east-1.amazonaws.com", "--region", "us-west-2"],
            "--region us-west-2 is not the region of the dev registry",
        ),
    ] {
        let output = run(fixture
            .xtask()
            .args(&args)
            .env("PATH", tools.path())
            .env_remove("ECR_REGISTRY_DEV")
            .env("GITHUB_SHA", &sha));
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&output).contains(expected),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    assert_eq!(tools.calls(), Vec::<String>::new(), "bad input ran");

    // COSIGN_KEY set for a whole workflow job reaches its every step: the
    // variable is not refused where the flag is.
    let output = run(fixture
        .xtask()
        .args(["--dry-run", "build"])
        .env("PATH", tools.path())
        .env("COSIGN_KEY", "awskms:///alias/job-wide"));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

/// `--dry-run` prints the login, each build and each check, hides the
/// password, and runs none of them.
#[test]
fn dry_run_prints_every_command_and_runs_none() {
    let tools = stand_ins("dry");
    let fixture = Fixture::standard("dry");
    let output = run(fixture
        .xtask()
        .args([
            "--dry-run",
            "build",
            "--push",
            "--registry",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            "--repository",
            "app",
        ])
        .env("PATH", tools.path()));
    assert!(output.status.success());
    let err = stderr(&output);
    let commands = common::commands(&err);
    // The login; for each variant the read of its commit tag (a re-run
    // tags the image already there), the build, its push (the build again,
    // cached, with the upload: retried alone) and the architecture check.
    assert_eq!(commands.len(), 9, "{err}");
    assert_eq!(
        commands[0],
        "aws ecr get-login-password --region eu-west-1 | docker login --username AWS --password-stdin 123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    );
    let sha8 = &fixture.head()[..8];
    for (variant, platform) in [("gpu", "linux/amd64"), ("cpu", "linux/arm64")] {
        let arch = &platform[6..];
        let builds: Vec<&&str> = commands.iter().filter(|c| c.starts_with(&format!("docker buildx build --platform {platform} --file Dockerfile-{variant}"))
            && c.contains(&format!("--tag 123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:make-{sha8}-{arch}-{variant}"))).collect();
        assert!(
            builds.len() == 2
                && builds[0].ends_with("--output type=cacheonly .")
                && builds[1].ends_with("--push ."),
            "{variant}: {commands:?}"
        );
        let reference = format!(
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:make-{sha8}-{arch}-{variant}"
        );
        let describe =
            format!("docker buildx imagetools inspect {reference} --format '{{{{json .}}}}'");
        assert!(
            commands.iter().any(|c| *c == describe),
            "{variant}: {commands:?}"
        );
        let note = format!("[{variant}] dry run: when {reference} is already this commit's image, a real run tags it instead of building");
        assert!(err.contains(&note), "{err}");
    }
    assert_eq!(tools.calls(), Vec::<String>::new(), "a dry run ran");
}

#[test]
fn github_event_decides_the_tags() {
    let fixture = Fixture::standard("event");
    let sha = fixture.head();
    let head = "fedcba9876543210fedcba9876543210fedcba98";
    let event = fixture.root.with_extension("event.json");
    std::fs::write(
        &event,
        format!(r#"{{"pull_request": {{"number": 42, "head": {{"sha": "{head}"}}}}}}"#),
    )
    .unwrap();
    let output = run(fixture
        .xtask()
        .args(["plan", "--format", "json", "--variant", "cpu"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_EVENT_NAME", "pull_request")
        .env("GITHUB_EVENT_PATH", &event)
        .env("GITHUB_SHA", &sha));
    assert!(output.status.success());
    let plan: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        plan["images"][0]["tags"],
        serde_json::json!(["latest-arm64-cpu", "fedcba98-arm64-cpu", "PR-42-arm64-cpu"])
    );
}

/// A payload that is JSON but not an object, or whose field's parent is not
/// an object, is bad input naming the file or the parent: it used to read
/// as a payload without that field.
#[test]
fn a_payload_that_is_not_an_object_is_bad_input() {
    let fixture = Fixture::standard("event-shape");
    let event = fixture.root.with_extension("event.json");
    let path = event.display().to_string();
    let cases = [
        ("[]", format!("GITHUB_EVENT_PATH={path}: not a JSON object")),
        (
            r#"{"pull_request": [42]}"#,
            format!("pull_request in the event payload (GITHUB_EVENT_PATH={path}) is [42], not an object"),
        ),
    ];
    for (payload, says) in cases {
        std::fs::write(&event, payload).unwrap();
        let output = run(fixture
            .xtask()
            .args(["plan", "--variant", "cpu"])
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_EVENT_NAME", "pull_request")
            .env("GITHUB_EVENT_PATH", &event)
            .env("GITHUB_SHA", fixture.head()));
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{payload}: {err}");
        assert!(err.contains(&says), "{payload}: {err}");
    }
}

#[test]
fn uncommitted_changes_are_marked_in_the_tag() {
    let fixture = Fixture::standard("dirty");
    std::fs::write(
        fixture.root.join("Dockerfile-cpu"),
        "FROM scratch\n# changed\n",
    )
    .unwrap();
    let output = run(fixture
        .xtask()
        .args(["plan", "--format", "json", "--variant", "cpu"]));
    let plan: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let sha8 = &fixture.head()[..8];
    // Only that tag: not `latest` either, which would move to uncommitted code.
    assert_eq!(
        plan["images"][0]["tags"],
        serde_json::json!([format!("make-{sha8}-dirty-arm64-cpu")])
    );
}

#[test]
fn help_lists_every_command() {
    let output = run(xtask(&workspace_root()).arg("--help"));
    let help = stdout(&output);
    for command in [
        "plan", "matrix", "build", "push", "login", "promote", "clean",
    ] {
        assert!(
            help.contains(&format!("  {command} ")),
            "{command} missing from:\n{help}"
        );
    }
    // As it is typed, not as the binary is named.
    assert!(
        help.contains("Usage: cargo xtask [OPTIONS] <COMMAND>"),
        "{help}"
    );
    let output = run(xtask(&workspace_root()).args(["build", "--help"]));
    assert!(
        stdout(&output).contains("Usage: cargo xtask build [OPTIONS]"),
        "{}",
        stdout(&output)
    );
}

/// `make dist-dev-all` is `cargo xtask build`: the same commands, in order.
#[test]
fn make_dist_dev_all_runs_the_same_commands_as_cargo_xtask_build() {
    let fixture = Fixture::standard("make");
    let xtask = format!(
        "{} --dry-run --root {}",
        env!("CARGO_BIN_EXE_xtask"),
        fixture.root.display()
    );
    let commands = |output: &std::process::Output| -> Vec<String> {
        let mut lines: Vec<String> = stderr(output)
            .lines()
            .filter(|l| l.contains("$ "))
            .map(String::from)
            .collect();
        lines.sort();
        lines
    };
    let via_make = run(Command::new("make")
        .args(["--no-print-directory", "-C"])
        .arg(workspace_root())
        .arg("dist-dev-all")
        .arg(format!("XTASK={xtask}"))
        .env("SOURCE_DATE_EPOCH", "1700000000"));
    let direct = run(fixture.xtask().args(["--dry-run", "build"]));
    assert!(via_make.status.success() && direct.status.success());
    assert_eq!(commands(&via_make), commands(&direct));
    assert_eq!(commands(&direct).len(), 4, "two builds and two checks");
}

#[test]
fn failures_are_annotated_under_github_actions() {
    let fixture = Fixture::standard("annotate");
    std::fs::write(fixture.root.join(".aws-architecture"), "{}").unwrap();
    let output = run(fixture.xtask().arg("plan").env("GITHUB_ACTIONS", "true"));
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).starts_with("::error::.aws-architecture: no variants"),
        "{}",
        stderr(&output)
    );
}

/// Under GitHub Actions a pushed build first reports the disk, asks the
/// builder whether it can export a cache, and reads and writes a registry
/// cache of each variant's own; its dry run shows each of those steps.
#[test]
fn ci_builds_report_the_disk_and_use_a_cache_per_variant_and_arch() {
    let tools = stand_ins("dry-ci");
    let fixture = Fixture::standard("dry-ci");
    let registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
    let event = tools.log.with_file_name("push.json");
    let push = r#"{"ref": "refs/heads/main", "repository": {"default_branch": "main"}}"#;
    std::fs::write(&event, push).unwrap();
    let output = run(fixture
        .xtask()
        .args(["--dry-run", "build", "--push", "--registry", registry])
        .args(["--repository", "app"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_EVENT_NAME", "push")
        .env("GITHUB_EVENT_PATH", &event)
        .env("GITHUB_SHA", fixture.head())
        .env("PATH", tools.path()));
    assert!(output.status.success());
    let err = stderr(&output);
    let commands = common::commands(&err);
    // The disk check as a real run makes it: `df` of the data root that
    // `docker info` answers (it printed only `docker info`).
    assert_eq!(
        &commands[..3],
        [
            "docker info --format '{{json .DockerRootDir}}'",
            "df -P -k '<DockerRootDir>'",
            "docker buildx inspect"
        ],
        "{err}"
    );
    // The cache flags depend on the builder's answer, which it did not read.
    let caveat = "dry run: the registry cache flags below apply if that builder can export a cache";
    assert!(err.contains(caveat), "{err}");
    for (variant, arch) in [("gpu", "amd64"), ("cpu", "arm64")] {
        let cache = format!("{registry}/app:cache-{arch}-{variant}");
        let builds: Vec<&&str> = commands
            .iter()
            .filter(|c| c.contains(&format!("--file Dockerfile-{variant}")))
            .collect();
        let [build, push] = builds[..] else {
            panic!("not a build and a push: {builds:?}")
        };
        // The build imports and exports the cache (a failed push keeps
        // it); the push imports it too (what the build only marked as
        // cached there), and exports nothing.
        assert!(
            build.contains(&format!("--cache-from type=registry,ref={cache} "))
                && build.contains(&format!(
                    "--cache-to type=registry,ref={cache},mode=max,image-manifest=true,oci-mediatypes=true "
                ))
                && build.contains("--provenance=false")
                && build.ends_with("--output type=cacheonly .")
                && !build.contains("--load"),
            "{build}"
        );
        assert!(
            push.ends_with("--push .")
                && push.contains(&format!("--cache-from type=registry,ref={cache} "))
                && !push.contains("--cache-to")
                && push.contains("--provenance=false"),
            "{push}"
        );
        // A pushed image is checked where it went: in the registry, never
        // loaded into the runner's engine (a docker-container builder has
        // nothing there to inspect).
        assert!(
            commands.contains(&format!(
                "docker buildx imagetools inspect {registry}/app:{}-{arch}-{variant} --format '{{{{json .Image}}}}'",
                &fixture.head()[..8]
            ).as_str()),
            "{variant}: {commands:?}"
        );
    }
    assert!(
        !commands
            .iter()
            .any(|c| c.starts_with("docker image inspect")),
        "{commands:?}"
    );
    assert_eq!(tools.calls(), Vec::<String>::new(), "a dry run ran");
}

/// `clean --dry-run` lists this repository's images under both names and
/// runs nothing; it names the command that empties the shared build cache,
/// and that command is not one of its steps.
#[test]
fn clean_dry_run_lists_both_names_and_leaves_the_build_cache() {
    let tools = stand_ins("clean-dry");
    let fixture = Fixture::standard("clean-dry");
    let output = run(fixture
        .xtask()
        .args(["--dry-run", "clean", "--registry", "127.0.0.1:9"])
        .args(["--repository", "app"])
        .env("PATH", tools.path()));
    assert!(output.status.success());
    let err = stderr(&output);
    assert_eq!(
        common::commands(&err),
        [
            "docker image ls --filter 'reference=127.0.0.1:9/app:*' --format '{{.Repository}}:{{.Tag}}'",
            "docker image ls --filter 'reference=app:*' --format '{{.Repository}}:{{.Tag}}'",
        ],
        "{err}"
    );
    assert!(
        err.contains("build cache: left alone") && err.contains("`docker builder prune --all`"),
        "{err}"
    );
    assert_eq!(tools.calls(), Vec::<String>::new(), "a dry run ran");
}

/// A blank profile or region (`--profile " "`) counts as unset too: it
/// reached the aws CLI, which failed the login (exit 1).
#[test]
fn blank_profiles_count_as_unset() {
    let fixture = Fixture::standard("blank-profile");
    let mut login = fixture.xtask();
    login.args(["--dry-run", "login", "--env", "stage"]);
    login.args(["--profile", " ", "--region", "  "]);
    fake_ecr_registries(&mut login);
    let output = run(&mut login);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert!(
        err.contains("$ aws ecr get-login-password --region us-east-1 | docker login"),
        "{err}"
    );
    assert!(!err.contains("--profile"), "{err}");
}

/// A `--region` other than the ECR host's is bad input, before any login:
/// the password would be for another region's registries, and docker login
/// refused it (exit 1, after promote's other login or build's checks). The
/// host's own region, given again, is fine.
#[test]
fn a_region_other_than_the_registry_hosts_is_bad_input() {
    let fixture = Fixture::standard("region");
    let login = |region: &str| {
        let mut command = fixture.xtask();
        command.args(["--dry-run", "login", "--env", "stage", "--region", region]);
        run(fake_ecr_registries(&mut command))
    };
    let output = login("us-east-1");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let output = login("eu-west-1");
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--region eu-west-1 is not the region of the stage registry 111111111111.dkr.ecr.us-east-1.amazonaws.com (us-east-1)"),
        "{err}"
    );
    assert_eq!(common::commands(&err), Vec::<&str>::new(), "{err}");

    let mut promote = fixture.xtask();
    promote.args(["--dry-run", "promote", "--context", "release"]);
    promote.args(["--release-tag", "v1.0.0", "--default-branch", "main"]);
    promote.args(["--region", "eu-west-1"]);
    promote.env("COSIGN_PUBLIC_KEY", "awskms:///alias/region-test");
    let output = run(fake_ecr_registries(&mut promote));
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--region eu-west-1 is not the region of the"),
        "{err}"
    );
    let logins = common::commands(&err)
        .into_iter()
        .filter(|c| c.contains(" login "));
    assert_eq!(logins.count(), 0, "{err}");
}

/// A reader that stops reading ends the output, not the run: `plan | head`
/// used to panic on the closed pipe (exit 101).
#[test]
fn a_closed_stdout_ends_the_output_not_the_run() {
    let fixture = Fixture::standard("closed-stdout");
    let mut child = fixture
        .xtask()
        .args(["plan", "--format", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Closed before xtask, which reads git first, writes anything.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// A variable set to "" is unset: a flag's variable does not become the
/// flag's value, `ECR_REPOSITORY_PROD=` falls back to `ECR_REPOSITORY`,
/// `STAGE_AWS_PROFILE=` passes no `--profile ''` to aws, and
/// `GITHUB_SERVER_URL=` makes no source label of `/<GITHUB_REPOSITORY>`.
#[test]
fn empty_variables_count_as_unset() {
    let fixture = Fixture::standard("empty-vars");
    let empty = [
        "XTASK_NETWORK",
        "XTASK_BUILD_ARGS",
        "XTASK_SMOKE",
        "XTASK_MIN_FREE_GB",
        "XTASK_PROGRESS",
        "ECR_REGISTRY_DEV",
        "ECR_REPOSITORY_DEV",
        "ECR_REPOSITORY_STAGE",
        "ECR_REPOSITORY_PROD",
        "STAGE_AWS_PROFILE",
        "PROD_AWS_PROFILE",
        "SOURCE_DATE_EPOCH",
        "COSIGN_KEY",
        "GITHUB_SERVER_URL",
    ];
    let with_empties = |command: &mut Command| {
        for name in empty {
            command.env(name, "");
        }
        fake_ecr_registries(command).env("ECR_REPOSITORY", "app");
        command.env("GITHUB_REPOSITORY", "octo/app");
    };
    let mut build = fixture.xtask();
    build.args(["--dry-run", "build"]);
    with_empties(&mut build);
    let output = run(&mut build);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stderr(&output).contains("--tag app:latest-amd64-gpu"));
    assert!(
        !stderr(&output).contains("image.source=/octo/app"),
        "{}",
        stderr(&output)
    );

    let mut promote = fixture.xtask();
    promote.args(["--dry-run", "promote", "--context", "release"]);
    promote.args(["--release-tag", "v1.0.0", "--default-branch", "main"]);
    with_empties(&mut promote);
    // The fixture commits no cosign.pub; a dry run never reads a KMS key.
    promote.env("COSIGN_PUBLIC_KEY", "awskms:///alias/empty-vars-test");
    let output = run(&mut promote);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let err = stderr(&output);
    let commands = common::commands(&err);
    let logins: Vec<&&str> = commands
        .iter()
        .filter(|c| c.contains("docker login"))
        .collect();
    assert_eq!(logins.len(), 2, "{commands:?}");
    assert!(
        logins.iter().all(|c| !c.contains("--profile")),
        "{logins:?}"
    );
    assert!(
        commands
            .iter()
            .filter(|c| c.starts_with("skopeo copy"))
            .all(|c| c.contains("docker://222222222222.dkr.ecr.us-east-1.amazonaws.com/app:")),
        "{commands:?}"
    );
}

/// A bad value from a flag's variable is blamed on the variable, which is
/// what the user must fix (clap itself names the flag); one given as the
/// flag is still blamed on the flag. Either way nothing runs.
#[test]
fn bad_flag_variables_are_named_not_their_flags() {
    let tools = stand_ins("flag-vars");
    let fixture = Fixture::standard("flag-vars");
    for (var, value, expected) in [
        (
            "XTASK_NETWORK",
            "fast",
            "XTASK_NETWORK=\"fast\" (the variable behind --network) is not valid: invalid value 'fast'",
        ),
        ("XTASK_MIN_FREE_GB", "ten", "XTASK_MIN_FREE_GB=\"ten\" (the variable behind --min-free-gb) is not valid"),
        ("XTASK_PROGRESS", "fancy", "XTASK_PROGRESS=\"fancy\" (the variable behind --progress) is not valid"),
        ("XTASK_SMOKE", "maybe", "XTASK_SMOKE=\"maybe\" (the variable behind --smoke) is not valid: invalid value 'maybe': expected true or false (or 1/0, yes/no, on/off)"),
        ("XTASK_BUILD_ARGS", "NOEQUALS", "XTASK_BUILD_ARGS=\"NOEQUALS\" (the variable behind --build-arg) is not valid: invalid value 'NOEQUALS': expected KEY=VALUE"),
        ("XTASK_BUILD_ARGS", "X=1\nVARIANT=gpu", "XTASK_BUILD_ARGS=\"X=1\\nVARIANT=gpu\" (the variable behind --build-arg) is not valid: invalid value 'VARIANT=gpu': VARIANT is set by cargo xtask from the variant and the commit; leave it out"),
    ] {
        let output = run(fixture
            .xtask()
            .args(["build"])
            .env(var, value)
            .env("PATH", tools.path()));
        assert_eq!(output.status.code(), Some(2), "{var}: {}", stderr(&output));
        let err = stderr(&output);
        assert!(err.contains(expected), "{var}: {err}");
        assert!(err.contains(&format!("fix {var} or unset it")), "{var}: {err}");
    }
    let output = run(fixture
        .xtask()
        .args(["build", "--network", "fast"])
        .env("XTASK_NETWORK", "fast")
        .env("PATH", tools.path()));
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("invalid value 'fast' for '--network <MODE>'"),
        "{}",
        stderr(&output)
    );
    assert!(
        !stderr(&output).contains("XTASK_NETWORK"),
        "{}",
        stderr(&output)
    );
    assert_eq!(tools.calls(), Vec::<String>::new(), "bad input ran");

    // CI's usual spellings of a switch are accepted, either way.
    for (value, smoke) in [
        ("1", true),
        ("yes", true),
        ("ON", true),
        ("0", false),
        ("off", false),
    ] {
        let output = run(fixture
            .xtask()
            .args(["--dry-run", "build", "--variant", "gpu"])
            .env("XTASK_SMOKE", value)
            .env("PATH", tools.path()));
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(0), "XTASK_SMOKE={value}: {err}");
        assert_eq!(
            err.contains("docker run"),
            smoke,
            "XTASK_SMOKE={value}: {err}"
        );
    }

    // With --push the smoke check runs the pushed digest, and the dry run
    // prints that command, not a run of the tag.
    let output = run(fixture
        .xtask()
        .args([
            "--dry-run",
            "build",
            "--push",
            "--smoke",
            "--variant",
            "gpu",
        ])
        .args([
            "--registry",
            "r.example",
            "--repository",
            "app",
            "--no-login",
        ])
        .env("PATH", tools.path()));
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{err}");
    let runs: Vec<&str> = err.lines().filter(|l| l.contains("$ docker run")).collect();
    assert!(
        runs.len() == 1 && runs[0].ends_with(" 'r.example/app@<digest>' check"),
        "{err}"
    );

    // XTASK_BUILD_ARGS as a workflow writes it, a YAML block (`|`), ends
    // with a newline and may hold blank lines: they are no items. (The
    // trailing newline used to be refused as a build argument "".)
    let output = run(fixture
        .xtask()
        .args(["--dry-run", "build", "--variant", "gpu"])
        .env(
            "XTASK_BUILD_ARGS",
            "BUILD_IMAGE=b:1\n\nRUNTIME_IMAGE=r:{arch}\n",
        )
        .env("PATH", tools.path()));
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{err}");
    let args = "--build-arg BUILD_IMAGE=b:1 --build-arg RUNTIME_IMAGE=r:amd64";
    assert!(err.contains(args), "{err}");
}

/// `XTASK_ROOT=` counts as unset, as every variable does: the root is then
/// found upwards from the working directory.
#[test]
fn an_empty_xtask_root_is_unset() {
    let fixture = Fixture::standard("empty-root");
    let below = fixture.root.join("src");
    std::fs::create_dir_all(&below).unwrap();
    let output = run(Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["plan", "--format", "json"])
        .current_dir(&below)
        .env("XTASK_ROOT", "")
        .env_remove("GITHUB_ACTIONS"));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

/// Stand-ins for a login whose `docker` repeats its stdin, the ECR password,
/// and fails: as a tool quoting what it was given in its error would.
fn echoing_login(name: &str) -> ToolLog {
    ToolLog::with(name, &["aws", "docker", "skopeo", "cosign"], |tool| {
        match tool {
            "aws" => "echo SUPERSECRET123\n".into(),
            // The local images are there: a push reads them first.
            "docker" => "[ \"$1\" = image ] && exit 0\necho \"denied: password $(cat) rejected\" >&2\nexit 1\n".into(),
            _ => "exit 1\n".into(),
        }
    })
}

/// Everything a run left where a person could read it: its output and its logs.
fn everything_shown(fixture: &Fixture, output: &std::process::Output) -> String {
    let mut shown = stdout(output) + &stderr(output);
    let logs = fixture.root.join("target/xtask/logs");
    for entry in std::fs::read_dir(&logs).into_iter().flatten() {
        shown += &std::fs::read_to_string(entry.unwrap().path()).unwrap();
    }
    shown
}

/// The password never reaches the terminal, a log file or the error, even
/// from a tool that repeats it: every line of a step fed a secret is
/// redacted, with `--verbose` and under GitHub Actions too.
#[test]
fn a_tool_that_repeats_the_password_never_shows_it() {
    let tools = echoing_login("echo-secret");
    for extra in [&[][..], &["--verbose"][..]] {
        for actions in ["false", "true"] {
            let fixture = Fixture::standard("echo-secret");
            let mut command = fixture.xtask();
            command.args(extra).args(["login", "--env", "stage"]);
            fake_ecr_registries(&mut command)
                .env("PATH", tools.path())
                .env("GITHUB_ACTIONS", actions);
            let output = run(&mut command);
            assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
            let shown = everything_shown(&fixture, &output);
            assert!(
                !shown.contains("SUPERSECRET123"),
                "{extra:?} {actions}: {shown}"
            );
            assert!(shown.contains("denied: password *** rejected"), "{shown}");
        }
    }
}

/// The key password in COSIGN_PASSWORD never shows either, from a cosign
/// that repeats it (in its log, its error, or a read's answer): it used to
/// be masked only when it was a step's stdin.
#[test]
fn a_tool_that_repeats_the_signing_password_never_shows_it() {
    let digest = format!("sha256:{}", "a".repeat(64));
    let tools = ToolLog::with("echo-cosign", &["docker", "cosign"], |tool| match tool {
        "docker" => format!("[ \"$1\" = image ] && echo '[\"r.example/app@{digest}\"]'\nexit 0\n"),
        _ => {
            // The key check passes; the signature repeats the password.
            "[ \"$1\" = public-key ] && exit 0\necho \"error: decrypting the key with password $COSIGN_PASSWORD failed\" >&2\nexit 1\n"
                .into()
        }
    });
    let fixture = Fixture::standard("echo-cosign");
    let output = run(fixture
        .xtask()
        .args([
            "push",
            "--env",
            "stage",
            "--registry",
            "r.example",
            "--repository",
            "app",
        ])
        .args([
            "--no-login",
            "--variant",
            "cpu",
            "--signing-key",
            "awskms:///alias/stage",
        ])
        .env("COSIGN_PASSWORD", "SIGNINGSECRET456")
        .env("PATH", tools.path()));
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        tools.calls().iter().any(|c| c.starts_with("cosign sign")),
        "{:?}",
        tools.calls()
    );
    let shown = everything_shown(&fixture, &output);
    assert!(!shown.contains("SIGNINGSECRET456"), "{shown}");
    assert!(shown.contains("with password *** failed"), "{shown}");
}

/// A push whose tags name different local images (one left from another
/// commit's build under a tag this one reuses) pushes nothing, exit 2.
#[test]
fn a_push_of_tags_that_name_different_images_pushes_nothing() {
    let tools = ToolLog::with("mixed-ids", &["docker", "aws"], |tool| match tool {
        "docker" => "[ \"$1\" = image ] && printf 'sha256:1\\nsha256:2\\n'\nexit 0\n".into(),
        _ => "exit 0\n".into(),
    });
    let fixture = Fixture::standard("mixed-ids");
    let output = run(fixture
        .xtask()
        .args([
            "push",
            "--registry",
            "r.example",
            "--repository",
            "app",
            "--variant",
            "cpu",
        ])
        .env("PATH", tools.path()));
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    let sha8 = &fixture.head()[..8];
    let says = format!("cpu: the tags latest-arm64-cpu, make-{sha8}-arm64-cpu name 2 different local images, so some are another build's; build it first: cargo xtask build --variant cpu, with this push's --env, --registry, --repository and context flags");
    assert!(err.contains(&says), "{err}");
    let calls = tools.calls();
    assert!(
        !calls
            .iter()
            .any(|c| c.starts_with("docker push") || c.starts_with("docker login")),
        "{calls:?}"
    );
}

/// The variants build at the same time: with a docker whose builds each
/// take a second, the two builds overlap (one after the other, the second
/// would start after the first ended).
/// An earlier build's metadata file never passes for this one's: a build
/// that writes none is an error, not the earlier digest. (It reported the
/// earlier build's digest, which stage would have signed.)
#[test]
fn an_earlier_builds_metadata_is_never_taken_for_this_ones() {
    let fixture = Fixture::standard("stale-metadata");
    let stale = format!("sha256:{}", "5".repeat(64));
    let dir = fixture.root.join("target/xtask");
    std::fs::create_dir_all(&dir).unwrap();
    let metadata = format!(
        r#"{{"containerimage.digest": "{stale}", "containerimage.config.digest": "{stale}"}}"#
    );
    std::fs::write(dir.join("cpu-metadata.json"), metadata).unwrap();
    let script = r#"case "$1 $2" in
"image inspect") echo '[{"Os": "linux", "Architecture": "arm64"}]' ;;
esac
exit 0
"#;
    let tools = ToolLog::with("stale-metadata", &["docker"], |_| script.to_string());
    let output = run(fixture
        .xtask()
        .args(["build", "--variant", "cpu"])
        .env("PATH", tools.path()));
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("BuildKit wrote no metadata file"), "{err}");
    assert!(!err.contains("555555555555"), "{err}");
}

/// A stand-in docker whose builds take a second each and note when they ran
/// in `<fixture>.times.log`; and those spans, earliest first.
fn timed_builds(fixture: &Fixture, name: &str) -> (ToolLog, impl Fn() -> Vec<(f64, f64)>) {
    let times = fixture.root.with_extension("times.log");
    let script = format!(
        r#"case "$1 $2" in
"buildx build")
  start=$(date +%s.%N)
  prev=
  for arg in "$@"; do
    [ "$prev" = --metadata-file ] && metadata=$arg
    prev=$arg
  done
  sleep 1
  echo '{{"containerimage.digest": "sha256:{digest}"}}' >"$metadata"
  echo "$start $(date +%s.%N)" >>'{times}' ;;
"image inspect")
  case "$3" in *amd64*) arch=amd64 ;; *) arch=arm64 ;; esac
  echo "[{{\"Os\": \"linux\", \"Architecture\": \"$arch\"}}]" ;;
esac
exit 0
"#,
        digest = "b".repeat(64),
        times = times.display()
    );
    let tools = ToolLog::with(name, &["docker"], |_| script.clone());
    let spans = move || {
        let text = std::fs::read_to_string(&times).unwrap();
        let mut spans: Vec<(f64, f64)> = text
            .lines()
            .map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                (fields[0].parse().unwrap(), fields[1].parse().unwrap())
            })
            .collect();
        spans.sort_by(|a, b| a.0.total_cmp(&b.0));
        spans
    };
    (tools, spans)
}

#[test]
fn the_variants_build_concurrently() {
    let fixture = Fixture::standard("concurrent");
    let (tools, spans) = timed_builds(&fixture, "concurrent");
    let output = run(fixture.xtask().args(["build"]).env("PATH", tools.path()));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let spans = spans();
    assert_eq!(spans.len(), 2, "{spans:?}");
    assert!(
        spans[1].0 < spans[0].1,
        "the builds did not overlap: {spans:?}"
    );
}

/// The signing password is masked in what is shown, never in a tool's
/// answer that xtask reads: a password that is also a word of the answer
/// (`arm64`) made the image's platform read as `linux/***`, and the build
/// failed its platform check.
#[test]
fn a_password_that_is_a_word_of_an_answer_leaves_the_answer_whole() {
    let fixture = Fixture::standard("password-in-answer");
    let (tools, _) = timed_builds(&fixture, "password-in-answer");
    let output = run(fixture
        .xtask()
        .args(["build", "--variant", "cpu"])
        .env("COSIGN_PASSWORD", "arm64")
        .env("PATH", tools.path()));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // Shown, it is still masked: the platform check's error names it.
    let tools = ToolLog::with("password-in-error", &["docker"], |_| {
        "[ \"$1 $2\" = 'image inspect' ] && echo '[{\"Os\": \"linux\", \"Architecture\": \"s390x\"}]'\n[ \"$1 $2\" = 'buildx build' ] && for a; do [ \"$p\" = --metadata-file ] && echo '{\"containerimage.digest\": \"sha256:'$(printf b%.0s $(seq 64))'\"}' >\"$a\"; p=$a; done\nexit 0\n".into()
    });
    let output = run(fixture
        .xtask()
        .args(["build", "--variant", "cpu"])
        .env("COSIGN_PASSWORD", "s390x")
        .env("PATH", tools.path()));
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("linux/***"), "{err}");
    assert!(!err.contains("s390x"), "{err}");
}

/// Two runs in one checkout take turns: each writes its variants' metadata
/// files, logs and the signing key's public half under target/xtask/, which
/// the other would overwrite or remove (two builds reported one digest).
/// The second says whom it waits for; a dry run writes nothing and waits
/// for no one.
#[test]
fn two_runs_in_one_checkout_take_turns() {
    let fixture = Fixture::standard("take-turns");
    let (tools, spans) = timed_builds(&fixture, "take-turns");
    let start = || {
        fixture
            .xtask()
            .args(["build", "--variant", "gpu"])
            .env("PATH", tools.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    // The second starts once the first holds the turn (it has written its
    // name into the lock): started together, a slow start under load could
    // begin the second after the first had finished.
    let first = start();
    let lock = fixture.root.join("target/xtask/lock");
    let held = || std::fs::read_to_string(&lock).is_ok_and(|holder| holder.starts_with("pid "));
    for _ in 0..400 {
        if held() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert!(held(), "the first run never took its turn");
    let second = start();
    let dry_run = run(fixture
        .xtask()
        .args(["--dry-run", "build", "--variant", "gpu"]));
    let pids = [first.id(), second.id()];
    let outputs = [first, second].map(|child| child.wait_with_output().unwrap());
    let errs = outputs.each_ref().map(stderr);
    for output in &outputs {
        assert_eq!(output.status.code(), Some(0), "{errs:?}");
    }
    // The second names the run it waits for: the first, by its pid.
    let waited = errs.each_ref().map(|e| {
        e.contains("waiting for the other cargo xtask")
            && e.contains(&format!("(pid {}: xtask --root ", pids[0]))
            && e.contains(" build --variant gpu; it holds ")
    });
    assert_eq!(waited, [false, true], "{errs:?}");
    assert!(
        !stderr(&dry_run).contains("waiting"),
        "{}",
        stderr(&dry_run)
    );
    let spans = spans();
    assert_eq!(spans.len(), 2, "{spans:?}");
    assert!(
        spans[0].1 <= spans[1].0,
        "the two builds overlapped: {spans:?}"
    );
}

/// Bad input is found before the first step, and so before the wait for
/// another run's turn: it exits 2 at once, never after the other run's
/// whole build. The turn is held here, by this test.
#[test]
fn bad_input_never_waits_for_another_runs_turn() {
    let fixture = Fixture::standard("turn-bad-input");
    let dir = fixture.root.join("target/xtask");
    std::fs::create_dir_all(&dir).unwrap();
    let lock = std::fs::File::create(dir.join("lock")).unwrap();
    lock.lock().unwrap();
    for args in [
        &["build", "--repository", "BAD_Name"][..],
        &["push", "--env", "prod"],
        &["promote", "--context", "pr", "--pr-number", "1"],
    ] {
        let output = run(fixture.xtask().args(args));
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.contains("waiting"), "{args:?}: {err}");
    }
}

/// Under GitHub Actions a failure's `::error::` line comes after its group
/// is closed, so the log shows it unfolded: for push and promote, whose
/// steps are grouped.
#[test]
fn a_failure_is_never_folded_inside_a_log_group() {
    let tools = echoing_login("fold");
    let fixture = Fixture::standard("fold");
    let sha = fixture.head();
    let promote = [
        "promote",
        "--context",
        "release",
        "--release-tag",
        "v1.0.0",
        "--default-branch",
        "main",
    ];
    let push = [
        "push",
        "--env",
        "dev",
        "--context",
        "push",
        "--variant",
        "gpu",
        "--no-login",
    ];
    for args in [&promote[..], &push[..]] {
        let mut command = fixture.xtask();
        command.args(args);
        fake_ecr_registries(&mut command)
            .env("PATH", tools.path())
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_SHA", &sha)
            .env(
                "ECR_REGISTRY_DEV",
                "333333333333.dkr.ecr.us-east-1.amazonaws.com",
            )
            .env("COSIGN_PUBLIC_KEY", "awskms:///alias/fold-test");
        let output = run(&mut command);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{args:?}: {}",
            stderr(&output)
        );
        let err = stderr(&output);
        let lines: Vec<&str> = err.lines().collect();
        let at = |prefix: &str| lines.iter().rposition(|l| l.starts_with(prefix));
        let (group, end, error) = (at("::group::"), at("::endgroup::"), at("::error::"));
        assert!(group.is_some(), "{args:?}: no group in\n{err}");
        assert!(
            group < end && end < error,
            "{args:?}: the error is folded in\n{err}"
        );
    }
}

/// Stage and prod may be different accounts: when both logins fail, both
/// are named, each from its own log, so one re-run can follow both fixes.
#[test]
fn both_failed_promote_logins_are_named() {
    let tools = echoing_login("logins");
    let fixture = Fixture::standard("logins");
    let mut command = fixture.xtask();
    command.args(["promote", "--context", "release", "--release-tag", "v1.0.0"]);
    command.args(["--default-branch", "main"]);
    fake_ecr_registries(&mut command)
        .env("PATH", tools.path())
        .env("COSIGN_PUBLIC_KEY", "awskms:///alias/logins-test");
    let output = run(&mut command);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    let error = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_default();
    for env in ["stage", "prod"] {
        assert!(
            error.contains(&format!("login to the {env} registry")),
            "{env}: {err}"
        );
        assert!(
            error.contains(&format!("target/xtask/logs/{env}.log")),
            "{env}: {err}"
        );
    }
}

/// A path that is not UTF-8 is a path like any other: a bad flag beside it
/// is still clap's usage error (exit 2), never a panic.
#[test]
fn a_root_that_is_not_utf8_never_panics() {
    use std::os::unix::ffi::OsStrExt;
    let root = std::ffi::OsStr::from_bytes(b"/tmp/not-utf8-\xff");
    let output = run(Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("--root")
        .arg(root)
        .args(["build", "--network", "fast"]));
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("invalid value 'fast'"),
        "{}",
        stderr(&output)
    );
}

/// A dev push of gpu under GitHub Actions whose docker push fails, with
/// its job summary at `summary`.
fn failed_push(name: &str, summary: impl Fn(&Fixture) -> PathBuf) -> std::process::Output {
    let tools = echoing_login(name);
    let fixture = Fixture::standard(name);
    run(fixture
        .xtask()
        .args([
            "push",
            "--env",
            "dev",
            "--context",
            "push",
            "--variant",
            "gpu",
        ])
        .arg("--no-login")
        .env("PATH", tools.path())
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_SHA", fixture.head())
        .env("GITHUB_STEP_SUMMARY", summary(&fixture))
        .env(
            "ECR_REGISTRY_DEV",
            "333333333333.dkr.ecr.us-east-1.amazonaws.com",
        ))
}

/// The job summary of a push that failed says so: it listed a failed
/// variant under "Images pushed" like one that went through.
#[test]
fn a_failed_push_is_failed_in_the_job_summary() {
    let written = Path::new(env!("CARGO_TARGET_TMPDIR")).join(common::unique("summary.md"));
    let output = failed_push("summary", |_| written.clone());
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let summary = std::fs::read_to_string(&written).unwrap();
    let gpu = summary
        .lines()
        .find(|l| l.starts_with("| gpu | linux/amd64 |"))
        .unwrap_or_default();
    assert!(gpu.contains("| FAILED |"), "{summary}");
    // A dev push is never signed: no section says so on every run.
    assert!(!summary.contains("### Signatures"), "{summary}");
    // The output is in the job's log, above the error; the runner's file
    // goes with the job.
    assert!(
        stderr(&output).contains("(its output is above)"),
        "{}",
        stderr(&output)
    );
}

/// A job summary that cannot be written never hides the run's own error:
/// the failed variant is still the error, and the summary is a warning.
/// (It used to be the error, "cannot write GITHUB_STEP_SUMMARY", alone.)
#[test]
fn an_unwritable_job_summary_never_hides_a_failed_push() {
    // A directory: appending to it fails.
    let output = failed_push("summary-dir", |fixture| fixture.root.clone());
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("::error::1 of 1 variants failed:"),
        "{stderr}"
    );
    let warning = "::warning::cannot write GITHUB_STEP_SUMMARY=";
    assert!(stderr.contains(warning), "{stderr}");
}

/// `rehearse --repository` names the workspace directory that is emptied
/// first: a path out of `target/rehearsal/` is bad input, and nothing is
/// removed or run. (It used to delete the directory it named.)
#[test]
fn a_rehearsal_repository_is_a_name_never_a_path() {
    let fixture = Fixture::standard("rehearse-name");
    let victim = fixture.root.join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("important.txt"), "keep\n").unwrap();
    std::fs::create_dir_all(fixture.root.join("target/rehearsal")).unwrap();
    let absolute = victim.display().to_string();
    for name in ["../../victim", absolute.as_str(), "", "App"] {
        let output = run(fixture.xtask().args(["rehearse", "--repository", name]));
        let stderr = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{name:?}: {stderr}");
        assert!(
            stderr.contains(&format!("--repository \"{name}\" is not a repository name")),
            "{name:?}: {stderr}"
        );
        assert!(
            victim.join("important.txt").is_file(),
            "{name:?} removed it"
        );
    }
}

/// rehearse starts from the branch `origin/HEAD` names (`git clone` sets it
/// to the remote's default), before `main` or `master`: here `trunk`, beside
/// a stale `main`. (It took `main`, and refused a clone with neither.)
#[test]
fn a_rehearsal_starts_from_the_default_branch_origin_names() {
    let fixture = Fixture::standard("rehearse-trunk");
    fixture.git(&["checkout", "--quiet", "-b", "trunk"]);
    fixture.git(&["update-ref", "refs/remotes/origin/trunk", "HEAD"]);
    let origin = "refs/remotes/origin/trunk";
    fixture.git(&["symbolic-ref", "refs/remotes/origin/HEAD", origin]);
    let output = run(fixture.xtask().args(["rehearse", "--dry-run"]));
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(" clone --quiet --branch trunk "),
        "{stderr}"
    );
    assert!(stderr.contains(" branch --move trunk main"), "{stderr}");
}

/// A token in the clone's origin URL (how some CI checkouts authenticate)
/// never reaches the source label, which is stored with the image, nor the
/// printed build command.
#[test]
fn a_token_in_the_origin_url_never_reaches_the_label() {
    let fixture = Fixture::standard("origin-token");
    let url = "https://x-access-token:ghp_SECRET123@github.com/org/app.git";
    fixture.git(&["remote", "add", "origin", url]);
    let output = run(fixture
        .xtask()
        .args(["plan", "--format", "json", "--variant", "gpu"]));
    let plan: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        plan["images"][0]["labels"]["org.opencontainers.image.source"],
        "https://github.com/org/app"
    );
    let output = run(fixture
        .xtask()
        .args(["--dry-run", "build", "--variant", "gpu"]));
    let shown = stdout(&output) + &stderr(&output);
    assert!(output.status.success(), "{shown}");
    assert!(!shown.contains("ghp_SECRET123"), "{shown}");
}

/// A signing key pasted into `COSIGN_KEY`, where its path belongs, is bad
/// input whose error never repeats it; `--help` shows no variable's value.
#[test]
fn a_key_pasted_into_cosign_key_is_never_repeated() {
    let fixture = Fixture::standard("pasted-key");
    let key = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nSECRETKEY42\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n";
    let output = run(fixture
        .xtask()
        .args(["--dry-run", "build", "--push", "--env", "stage"])
        .env("COSIGN_KEY", key)
        .env("COSIGN_PASSWORD", "pw")
        .env(
            "ECR_REGISTRY_STAGE",
            "111111111111.dkr.ecr.us-east-1.amazonaws.com",
        ));
    let shown = stdout(&output) + &stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains("COSIGN_KEY (the variable behind --signing-key) holds key material"),
        "{shown}"
    );
    // Given by the flag, the error names the flag alone.
    let output = run(fixture
        .xtask()
        .args(["--dry-run", "build", "--push", "--env", "stage"])
        .args(["--signing-key", "no-such.key"])
        .env("COSIGN_KEY", "other.key")
        .env("COSIGN_PASSWORD", "pw")
        .env(
            "ECR_REGISTRY_STAGE",
            "111111111111.dkr.ecr.us-east-1.amazonaws.com",
        ));
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--signing-key: there is no key file") && !err.contains("COSIGN_KEY"),
        "{err}"
    );
    assert!(!shown.contains("SECRETKEY42"), "{shown}");
    let output = run(fixture
        .xtask()
        .args(["build", "--help"])
        .env("COSIGN_KEY", "SECRETKEY42"));
    assert!(
        !stdout(&output).contains("SECRETKEY42"),
        "{}",
        stdout(&output)
    );
}

/// `SOURCE_DATE_EPOCH` past the end of 9999, which RFC 3339 cannot write,
/// is bad input naming the variable: it used to panic (exit 101).
#[test]
fn a_source_date_epoch_out_of_range_is_bad_input_not_a_panic() {
    let fixture = Fixture::standard("epoch");
    for value in ["253402300800", "18446744073709551615", "soon"] {
        let output = run(fixture
            .xtask()
            .args(["plan"])
            .env("SOURCE_DATE_EPOCH", value));
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{value}: {err}");
        assert!(
            err.contains(&format!("SOURCE_DATE_EPOCH={value} is not a number of seconds since 1970 (at most 253402300799")),
            "{value}: {err}"
        );
        // Not the commit's time, which the README advises against: it
        // changes per commit, and so rebuilds every step.
        assert!(
            err.contains("unset it, as the workflows do: the image is then dated now")
                && !err.contains("git log"),
            "{value}: {err}"
        );
    }
    let output = run(fixture
        .xtask()
        .args(["plan", "--format", "json"])
        .env("SOURCE_DATE_EPOCH", "253402300799"));
    let plan: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        plan["images"][0]["labels"]["org.opencontainers.image.created"],
        "9999-12-31T23:59:59Z"
    );
}

/// `clean` checks its input before it looks for docker: a bad registry is
/// named even on a machine without docker.
#[test]
fn clean_names_bad_input_before_a_missing_docker() {
    let fixture = Fixture::standard("clean-input");
    let output = run(fixture
        .xtask()
        .arg("clean")
        .env("ECR_REGISTRY_DEV", "bad_host")
        .env("PATH", "/nonexistent"));
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("ECR_REGISTRY_DEV \"bad_host\" is not a registry host"),
        "{err}"
    );
}

/// A checkout whose path is not UTF-8 is a checkout like any other: the
/// turn's lock, which names the command line, panicked on it (exit 101).
#[test]
fn a_root_whose_path_is_not_utf8_runs() {
    use std::os::unix::ffi::OsStrExt;
    let fixture = Fixture::standard("not-utf8");
    let mut name = fixture.root.file_name().unwrap().as_bytes().to_vec();
    name.extend(b"-\xff");
    let root = fixture
        .root
        .with_file_name(std::ffi::OsStr::from_bytes(&name));
    std::fs::rename(&fixture.root, &root).unwrap();
    let tools = ToolLog::fake("not-utf8-tools", &["docker"]);
    let output = run(xtask(&root).arg("clean").env("PATH", tools.path()));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(!tools.calls().is_empty(), "clean asked docker nothing");
}

/// Outside a git checkout a build cannot know its commit: bad input, whose
/// fix is the checkout, not `--sha` (a build tags what is checked out).
#[test]
fn a_build_outside_a_git_checkout_is_told_to_run_in_one() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(common::unique("no-git"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(".aws-architecture"), r#"{"gpu": "linux/amd64"}"#).unwrap();
    std::fs::write(dir.join("Dockerfile-gpu"), "FROM scratch\n").unwrap();
    let output = run(xtask(&dir)
        .args(["plan", "--sha", "0123456789abcdef0123456789abcdef01234567"])
        // This checkout's own repository is above the directory: git must
        // not find it.
        .env("GIT_CEILING_DIRECTORIES", dir.parent().unwrap()));
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("run it in a git checkout of the repository"),
        "{err}"
    );
    assert!(!err.contains("--sha"), "{err}");

    // Under GitHub Actions the event names the commit; the build still
    // needs the checkout of it, which it says.
    let event = dir.join("push.json");
    let push = r#"{"ref": "refs/heads/main", "repository": {"default_branch": "main"}}"#;
    std::fs::write(&event, push).unwrap();
    let sha = "1111111111111111111111111111111111111111";
    let output = run(xtask(&dir)
        .args(["--dry-run", "build"])
        .env("GIT_CEILING_DIRECTORIES", dir.parent().unwrap())
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_EVENT_NAME", "push")
        .env("GITHUB_EVENT_PATH", &event)
        .env("GITHUB_SHA", sha));
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    let says = format!("a build runs in a git checkout of the commit it tags, {sha}");
    assert!(err.contains(&says), "{err}");
}

/// A promotion's public key: the default, `cosign.pub`, is named as the
/// default with how to make it; another file, or key material pasted where
/// a path belongs, is named as given, and a public key asks no password.
#[test]
fn a_missing_verify_key_is_named_as_the_user_gave_it() {
    let fixture = Fixture::standard("verify-key");
    let promote = |key: Option<&str>| {
        let mut command = fixture.xtask();
        command.args(["--dry-run", "promote", "--context", "dispatch"]);
        command.args([
            "--stage-registry",
            "s.example",
            "--prod-registry",
            "p.example",
        ]);
        command
            .args(["--default-branch", "main"])
            .env_remove("COSIGN_PUBLIC_KEY");
        if let Some(key) = key {
            command.env("COSIGN_PUBLIC_KEY", key);
        }
        let output = run(&mut command);
        assert_eq!(output.status.code(), Some(2), "{key:?}");
        stderr(&output)
    };
    let default = promote(None);
    assert!(
        default.contains(
            "--verify-key (COSIGN_PUBLIC_KEY; by default cosign.pub): there is no key file"
        ),
        "{default}"
    );
    assert!(
        default.contains("commit the stage signing key's public half as cosign.pub"),
        "{default}"
    );
    let other = promote(Some("keys/other.pub"));
    assert!(
        other
            .contains("COSIGN_PUBLIC_KEY (the variable behind --verify-key): there is no key file"),
        "{other}"
    );
    assert!(!other.contains("cosign.pub"), "{other}");
    let pasted = promote(Some(
        "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n",
    ));
    assert!(pasted.contains("holds key material"), "{pasted}");
    assert!(!pasted.contains("COSIGN_PASSWORD"), "{pasted}");
}

/// Under GitHub Actions the event names the commit, and the build uses the
/// checkout: a checkout of another commit, or of that commit with a file
/// an earlier step changed, is refused before anything runs, since its
/// images would carry the named commit's tags and label.
#[test]
fn a_build_refuses_a_checkout_other_than_the_events_commit() {
    let fixture = Fixture::standard("checkout-event");
    let old = fixture.head();
    let new = fixture.drop_variant("cpu", r#"{"gpu": "linux/amd64"}"#);
    // Outside the checkout: a file in it would be a change.
    let event = fixture.root.with_extension("push.json");
    let payload = serde_json::json!({
        "ref": "refs/heads/main",
        "after": new,
        "repository": {"default_branch": "main"},
    });
    std::fs::write(&event, payload.to_string()).unwrap();
    // The exit code and stderr of a dry-run build at the event's commit.
    let build = || {
        let output = run(fixture
            .xtask()
            .args(["--dry-run", "build", "--variant", "gpu"])
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_EVENT_NAME", "push")
            .env("GITHUB_EVENT_PATH", &event)
            .env("GITHUB_SHA", &new));
        let err = stderr(&output);
        assert!(
            output.status.code() == Some(0) || !err.contains("docker buildx"),
            "a refused build ran: {err}"
        );
        (output.status.code(), err)
    };
    for (checkout, code) in [(&old, 2), (&new, 0)] {
        fixture.git(&["checkout", "--quiet", checkout]);
        let (status, err) = build();
        assert_eq!(status, Some(code), "at {checkout}: {err}");
        if code == 2 {
            let says = format!(
                "the checkout is at {}, but the tags name commit {new}",
                &old[..8]
            );
            assert!(err.contains(&says), "{err}");
        }
    }
    // The named commit, with a file a step before the build wrote.
    std::fs::write(fixture.root.join("generated.txt"), "from a step\n").unwrap();
    let (status, err) = build();
    assert_eq!(status, Some(2), "{err}");
    // An `::error::` annotation, whose line breaks are `%0A`.
    let says = format!(
        "the checkout of {new} has uncommitted changes (git status --porcelain):%0A?? generated.txt%0A"
    );
    assert!(err.contains(&says), "{err}");
    // A terminal build under Actions names no event commit: its tags say dirty.
    let output = run(fixture
        .xtask()
        .args([
            "--dry-run",
            "build",
            "--variant",
            "gpu",
            "--context",
            "terminal",
        ])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_EVENT_NAME", "push")
        .env("GITHUB_EVENT_PATH", &event)
        .env("GITHUB_SHA", &new));
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!(":make-{}-dirty-amd64-gpu", &new[..8])),
        "{err}"
    );
    // A long list is cut, and says so.
    for n in 0..11 {
        std::fs::write(fixture.root.join(format!("gen-{n:02}.txt")), "x\n").unwrap();
    }
    let (status, err) = build();
    assert_eq!(status, Some(2), "{err}");
    assert!(
        err.contains("%0A?? gen-09.txt%0A... and 2 more%0Aso its images"),
        "{err}"
    );
}

/// A build that writes only its cache to a registry (`--cache registry`
/// without `--push`) logs in to it first, as a push does: it used to run
/// no login, and so failed late at the cache export without one.
#[test]
fn a_registry_cache_alone_logs_in_first() {
    let fixture = Fixture::standard("cache-login");
    let output = run(fixture
        .xtask()
        .args([
            "--dry-run",
            "build",
            "--cache",
            "registry",
            "--variant",
            "gpu",
        ])
        .env(
            "ECR_REGISTRY_DEV",
            "333333333333.dkr.ecr.us-east-1.amazonaws.com",
        ));
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{err}");
    let commands = common::commands(&err);
    let login = commands.iter().position(|c| c.contains("| docker login "));
    let build = commands
        .iter()
        .position(|c| c.contains("docker buildx build"));
    assert!(login.is_some() && login < build, "{err}");
}
