//! `build` and `push` on the rig: the real engine, BuildKit, registries that
//! require a login, and the aws CLI against the emulator.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{inspect, reported_digest, rig, run, stderr, stdout, tags, unique, Fixture, Registry};

/// An empty Docker config: proves each run logs in by itself. buildx is
/// found in the system plugin folder the rig installs it to.
fn fresh_docker_config() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("docker-config"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn arch_of(variant: &str) -> &'static str {
    if variant == "gpu" {
        "amd64"
    } else {
        "arm64"
    }
}

#[test]
fn build_push_both_variants_through_the_real_login() {
    let rig = rig();
    let fixture = Fixture::standard("push");
    let sha = fixture.head();
    let repo = unique("push").to_lowercase();
    let output = run(fixture
        .xtask()
        .args(["build", "--push", "--env", "dev", "--repository", &repo])
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
    // Both variants ran at once, each line marked with its variant.
    let err = stderr(&output);
    assert!(
        err.lines().any(|l| l.starts_with("[gpu] #"))
            && err.lines().any(|l| l.starts_with("[cpu] #"))
    );
    assert!(err.contains("[cpu] architecture check: linux/arm64, as asked"));
}

#[test]
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
    assert!(
        stderr(&output).contains("build and push of gpu for linux/amd64"),
        "{}",
        stderr(&output)
    );
    assert!(tags(&rig.dev, &repo).is_empty());
}

/// Normalise what differs between two runs of the same plan: digests.
fn commands(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| {
            l.split_once("$ ")
                .map(|(prefix, c)| format!("{prefix}$ {c}"))
        })
        .map(|l| match l.find("@sha256:") {
            Some(i) => format!("{}@<digest>{}", &l[..i], &l[i + 8 + 64..]),
            None => l,
        })
        // The dry run's placeholder needs shell quotes; a real digest does not.
        .map(|l| l.replace("'", ""))
        .collect::<Vec<_>>()
}

#[test]
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
    assert_eq!(real.len(), 5, "{real:?}");
}

#[test]
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
    assert!(
        err.contains("gpu: build and push of gpu for linux/amd64 to 127.0.0.1:5210/")
            && err.contains("gave up after 3 attempts"),
        "{err}"
    );
    assert!(
        err.contains("cpu: build and push of cpu for linux/arm64"),
        "{err}"
    );
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
fn missing_tools_are_named_before_anything_runs() {
    let rig = rig();
    let fixture = Fixture::standard("tools");
    let repo = unique("tools").to_lowercase();
    let bin = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("only-git"));
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(common::git_path(), bin.join("git")).unwrap();
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
fn github_actions_mode_groups_the_log_and_writes_a_summary() {
    let rig = rig();
    let fixture = Fixture::standard("summary");
    let repo = unique("summary").to_lowercase();
    let summary = fixture.root.join("summary.md");
    let event = fixture.root.join("event.json");
    std::fs::write(&event, "{}").unwrap();
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
        err.contains("::group::build gpu, cpu (push to main)") && err.contains("::endgroup::"),
        "{err}"
    );
    let summary = std::fs::read_to_string(summary).unwrap();
    let sha8 = &fixture.head()[..8];
    for variant in ["gpu", "cpu"] {
        let arch = arch_of(variant);
        let digest =
            common::digest(&format!("{}/{repo}:{sha8}-{arch}-{variant}", rig.dev), arch).unwrap();
        let row = summary
            .lines()
            .find(|l| l.starts_with(&format!("| {variant} |")))
            .unwrap_or_else(|| panic!("{summary}"));
        assert!(
            row.contains(&digest) && row.contains(&format!("{sha8}-{arch}-{variant}")),
            "{row}"
        );
    }
}

/// The engine's build-cache records, as `(id, parent, description)`.
fn cache_records() -> Vec<(String, String, String)> {
    let list = || {
        Command::new("docker")
            .args([
                "system",
                "df",
                "--verbose",
                "--format",
                "{{json .BuildCache}}",
            ])
            .output()
            .unwrap()
    };
    let mut output = list();
    // The engine lists for one client at a time (another test's clean).
    for _ in 0..40 {
        if !String::from_utf8_lossy(&output.stderr)
            .contains("disk usage operation is already running")
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
        output = list();
    }
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let records: Vec<serde_json::Value> =
        serde_json::from_slice(&output.stdout).unwrap_or_default();
    records
        .iter()
        .map(|r| {
            // The CLI marks a record in use with a `*` after its ID.
            let field = |k: &str| {
                r[k].as_str()
                    .unwrap_or_default()
                    .trim_end_matches('*')
                    .to_string()
            };
            (field("ID"), field("Parent"), field("Description"))
        })
        .collect()
}

/// `clean` takes this repository's images and the build cache its builds
/// made, and leaves another project's cache alone: the shared base and a
/// RUN both projects have, the other project's own records, a record whose
/// command reads like ours on another chain, and one on the very same
/// chain (a copy of our Dockerfile, another payload) made after our build.
#[test]
fn clean_removes_this_repositorys_build_cache_and_nothing_else() {
    let rig = rig();
    let token = unique("cache").to_lowercase();
    let generic = format!("echo generic-{token} > /generic");
    let our_run = format!("cat /payload > /ours-{token}");
    let our_stage =
        format!("FROM rig/debian:bookworm\nRUN {generic}\nCOPY payload /payload\nRUN {our_run}\n");
    let fixture = Fixture::new("clean-cache", r#"{"gpu": "linux/amd64"}"#, &[]);
    std::fs::write(
        fixture.root.join("Dockerfile-gpu"),
        format!("{our_stage}\nFROM rig/debian:bookworm\nCOPY --from=0 /ours-{token} /out\n"),
    )
    .unwrap();
    std::fs::write(fixture.root.join("payload"), unique("ours")).unwrap();
    fixture.commit("a Dockerfile with RUN steps");
    let repo = unique("clean-cache").to_lowercase();
    let build = run(fixture
        .xtask()
        .args(["build", "--repository", &repo, "--network", "none"]));
    assert!(build.status.success());

    let ours_built = cache_records();
    let parent = |records: &[(String, String, String)], id: &str| -> String {
        let record = records.iter().find(|(i, _, _)| i == id);
        record.map(|(_, p, _)| p.clone()).unwrap_or_default()
    };
    let runs = |records: &[(String, String, String)], command: &str| -> Vec<String> {
        let suffix = format!("from exec /bin/sh -c {command}");
        records
            .iter()
            .filter(|(_, _, d)| d.ends_with(&suffix))
            .map(|(id, _, _)| id.clone())
            .collect()
    };
    let [generic_id] = &runs(&ours_built, &generic)[..] else {
        panic!("one generic RUN record: {ours_built:?}")
    };
    let [ours_id] = &runs(&ours_built, &our_run)[..] else {
        panic!("one record of our RUN: {ours_built:?}")
    };
    let our_copy = parent(&ours_built, ours_id);
    assert_eq!(
        parent(&ours_built, &our_copy),
        *generic_id,
        "our RUN is built on our COPY on the generic RUN"
    );

    // Another project, after our build (and the engine's timestamps' slack):
    // our stage word for word with another payload, its own RUN, and a
    // look-alike of our RUN straight on its COPY.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let theirs = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("clean-theirs"));
    std::fs::create_dir_all(&theirs).unwrap();
    std::fs::write(theirs.join("payload"), unique("theirs")).unwrap();
    let their_run = format!("cat /payload > /theirs-{token}");
    std::fs::write(
        theirs.join("Dockerfile"),
        format!(
            "{our_stage}\nFROM rig/debian:bookworm\nRUN {generic}\nCOPY payload /payload\nRUN {their_run}\n\n\
             FROM rig/debian:bookworm\nCOPY payload /payload\nRUN {our_run}\n\
             COPY --from=0 /ours-{token} /o\nCOPY --from=1 /theirs-{token} /t\n"
        ),
    )
    .unwrap();
    let their_image = format!("{repo}-theirs:latest");
    let status = Command::new("docker")
        .args([
            "buildx",
            "build",
            "--network",
            "none",
            "--load",
            "--tag",
            &their_image,
        ])
        .arg(&theirs)
        .status()
        .unwrap();
    assert!(status.success(), "the other project's build failed");

    let before = cache_records();
    let [theirs_id] = &runs(&before, &their_run)[..] else {
        panic!("one record for their RUN: {before:?}")
    };
    let (same_chain, lookalike): (Vec<String>, Vec<String>) = runs(&before, &our_run)
        .into_iter()
        .filter(|id| id != ours_id)
        .partition(|id| parent(&before, &parent(&before, id)) == *generic_id);
    let ([same_chain_id], [lookalike_id]) = (&same_chain[..], &lookalike[..]) else {
        panic!("their copy of our stage and their look-alike: {same_chain:?} {lookalike:?}")
    };

    let clean = run(fixture.xtask().args(["clean", "--repository", &repo]));
    assert!(clean.status.success());
    assert!(
        stderr(&clean).contains("build-cache records of this repository's builds"),
        "{}",
        stderr(&clean)
    );

    let after: Vec<String> = cache_records().into_iter().map(|(id, _, _)| id).collect();
    for (what, id) in [("our RUN", ours_id), ("our COPY under it", &our_copy)] {
        assert!(!after.contains(id), "clean left {what} ({id})");
    }
    for (what, id) in [
        ("the shared generic RUN", generic_id),
        ("their RUN", theirs_id),
        ("their copy of our stage", same_chain_id),
        ("their look-alike of our RUN", lookalike_id),
    ] {
        assert!(after.contains(id), "clean removed {what} ({id})");
    }
    let left = Command::new("docker")
        .args(["image", "ls", "-q", &format!("{}/{repo}", rig.dev)])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&left.stdout).trim().is_empty(),
        "clean left our images"
    );
    let their = Command::new("docker")
        .args(["image", "inspect", &their_image])
        .output()
        .unwrap();
    assert!(
        their.status.success(),
        "clean removed the other project's image"
    );
    let _ = Command::new("docker")
        .args(["image", "rm", &their_image])
        .output();
}
