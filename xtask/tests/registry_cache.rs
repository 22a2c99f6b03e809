//! The registry cache and the disk report on the rig's two engines: the
//! containerd-store engine, whose default builder exports a cache, and the
//! classic-store engine (today's GitHub runners, most developers' machines),
//! whose builder cannot. Each test says which engine it runs on.

mod common;

use std::process::Command;

use common::{
    arch_of, fresh_docker_config, path_with, raw_digest, raw_manifest, reported_digest, rig, run,
    scratch_dir, stderr, stdout, tags, unique, which, write_executable, Fixture,
};
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Engine {
    Containerd,
    Classic,
}

impl Engine {
    /// The engine's socket, from the rig's env file; printed with the
    /// engine's and buildx's versions, so the test output says what ran.
    fn host(self) -> String {
        let key = match self {
            Engine::Containerd => "RIG_DOCKER_HOST_CONTAINERD",
            Engine::Classic => "RIG_DOCKER_HOST_CLASSIC",
        };
        let host = std::env::var(key).unwrap_or_else(|_| {
            panic!("{key} is not set: this test needs the rig's two engines (rig/rig up)")
        });
        let version = |args: &[&str]| {
            let output = Command::new("docker")
                .args(args)
                .env("DOCKER_HOST", &host)
                .output()
                .unwrap();
            String::from_utf8_lossy(&output.stdout).trim().to_string()
        };
        eprintln!(
            "--- {self:?} engine at {host}: Docker {}, {}",
            version(&["version", "--format", "{{.Server.Version}}"]),
            version(&["buildx", "version"])
        );
        host
    }
}

/// `cargo xtask build` of the fixture on `engine`, pushed to dev.
fn build(fixture: &Fixture, engine: &str, repo: &str, args: &[&str]) -> std::process::Output {
    run(fixture
        .xtask()
        .args(["build", "--push", "--env", "dev", "--repository", repo])
        .args(args)
        .env("DOCKER_HOST", engine)
        .env("DOCKER_CONFIG", fresh_docker_config()))
}

/// buildx's rule, as xtask applies it to `docker buildx inspect`, is what
/// buildx does: a build exporting a registry cache succeeds on the
/// containerd-store engine and fails on the classic one.
#[test]
#[ignore = "needs the rig: make test"]
fn the_capability_rule_is_what_buildx_does_on_both_engines() {
    let rig = rig();
    let fixture = Fixture::new("rule", r#"{"gpu": "linux/amd64"}"#, &["gpu"]);
    let config = fresh_docker_config();
    let login = run(fixture
        .xtask()
        .args(["login", "--env", "dev"])
        .env("DOCKER_CONFIG", &config));
    assert!(login.status.success());
    for (engine, can) in [(Engine::Containerd, true), (Engine::Classic, false)] {
        let host = engine.host();
        let inspect = Command::new("docker")
            .args(["buildx", "inspect"])
            .env("DOCKER_HOST", &host)
            .output()
            .unwrap();
        assert!(inspect.status.success());
        let builder =
            xtask::docker::Builder::parse(&String::from_utf8_lossy(&inspect.stdout)).unwrap();
        assert_eq!(builder.driver, "docker", "{engine:?}");
        assert_eq!(builder.can_export_cache(), can, "{engine:?}: {builder:?}");

        let cache = format!(
            "{}/{}:cache-amd64-gpu",
            rig.dev,
            unique("rule").to_lowercase()
        );
        let export = Command::new("docker")
            .args([
                "buildx",
                "build",
                "--platform",
                "linux/amd64",
                "--file",
                "Dockerfile-gpu",
            ])
            .args([
                "--provenance=false",
                "--progress",
                "plain",
                "--tag",
                "rule-probe:latest",
                "--load",
            ])
            .arg("--cache-to")
            .arg(format!(
                "type=registry,ref={cache},mode=max,image-manifest=true,oci-mediatypes=true"
            ))
            .arg(".")
            .current_dir(&fixture.root)
            .env("DOCKER_HOST", &host)
            .env("DOCKER_CONFIG", &config)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&export.stderr);
        assert_eq!(export.status.success(), can, "{engine:?}: {err}");
        if !can {
            assert!(
                err.contains("Cache export is not supported for the docker driver"),
                "{err}"
            );
        }
    }
}

/// On the classic engine, a build that asks for the registry cache says in
/// one line that it cannot have one and which builder would, builds and
/// pushes without it, and leaves no cache tag.
#[test]
#[ignore = "needs the rig: make test"]
fn the_classic_engine_builds_without_the_cache_and_says_why() {
    let rig = rig();
    let host = Engine::Classic.host();
    let fixture = Fixture::standard("classic");
    let repo = unique("classic").to_lowercase();
    let output = build(&fixture, &host, &repo, &["--cache", "registry"]);
    assert!(output.status.success());
    let err = stderr(&output);
    let notes: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("cannot export a build cache"))
        .collect();
    assert_eq!(notes.len(), 1, "{err}");
    assert!(
        notes[0].contains("docker buildx create --use --driver docker-container")
            && notes[0].contains("containerd image store"),
        "{}",
        notes[0]
    );
    assert!(!err.contains("--cache-to"), "{err}");
    assert!(tags(&rig.dev, &repo)
        .iter()
        .all(|t| !t.starts_with("cache-")));
    assert!(err.contains("[cpu] architecture check: linux/arm64, as asked"));
    for variant in ["gpu", "cpu"] {
        let reference = format!("{}/{repo}:latest-{}-{variant}", rig.dev, arch_of(variant));
        assert_eq!(
            raw_digest(&reference),
            reported_digest(&stdout(&output), variant)
        );
    }
}

/// On the containerd engine each variant and architecture has a cache of its
/// own, in the form ECR accepts, and building cpu never touches gpu's.
#[test]
#[ignore = "needs the rig: make test"]
fn each_variant_and_arch_has_its_own_cache() {
    let rig = rig();
    let host = Engine::Containerd.host();
    let fixture = Fixture::standard("percache");
    let repo = unique("percache").to_lowercase();
    let cache = |variant: &str| format!("{}/{repo}:cache-{}-{variant}", rig.dev, arch_of(variant));

    let gpu = build(
        &fixture,
        &host,
        &repo,
        &["--cache", "registry", "--variant", "gpu"],
    );
    assert!(gpu.status.success());
    let err = stderr(&gpu);
    assert!(
        err.contains(&format!("--cache-from type=registry,ref={}", cache("gpu")))
            && err.contains(&format!(
                "--cache-to type=registry,ref={},mode=max,image-manifest=true,oci-mediatypes=true",
                cache("gpu")
            )),
        "{err}"
    );
    let gpu_cache = raw_digest(&cache("gpu"));
    let manifest: Value = raw_manifest(&cache("gpu"));
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.buildkit.cacheconfig.v0"
    );

    fixture.commit("cpu changes");
    let cpu = build(
        &fixture,
        &host,
        &repo,
        &["--cache", "registry", "--variant", "cpu"],
    );
    assert!(cpu.status.success());
    assert_eq!(
        raw_digest(&cache("gpu")),
        gpu_cache,
        "building cpu moved gpu's cache"
    );
    let cpu_manifest = raw_manifest(&cache("cpu"));
    assert_eq!(
        cpu_manifest["config"]["mediaType"],
        "application/vnd.buildkit.cacheconfig.v0"
    );
    let all = tags(&rig.dev, &repo);
    assert!(
        all.contains(&"cache-amd64-gpu".to_string())
            && all.contains(&"cache-arm64-cpu".to_string()),
        "{all:?}"
    );
    assert_eq!(
        all.iter().filter(|t| t.starts_with("cache-")).count(),
        2,
        "{all:?}"
    );
}

/// A push that fails after the build succeeded is retried alone: the
/// build runs once, its push (every step cached) again. One that keeps
/// failing leaves the registry cache the build wrote, and no image tag,
/// for a re-run to start from. The failing upload is a stand-in: a `docker`
/// that refuses the first `count` pushes, as a throttling or unreachable
/// registry would; everything else is the real engine and registry.
#[test]
#[ignore = "needs the rig: make test"]
fn a_failed_push_is_retried_without_building_again_and_keeps_the_cache() {
    let rig = rig();
    let host = Engine::Containerd.host();
    let fixture = Fixture::standard("pushretry");
    let repo = unique("pushretry").to_lowercase();
    let dir = scratch_dir("pushretry-bin");
    let count = dir.join("count");
    write_executable(
        &dir.join("docker"),
        &format!(
            "#!/bin/sh
case \" $* \" in *\" --push \"*)
  n=$(cat '{count}')
  if [ \"$n\" -gt 0 ]; then echo $((n - 1)) > '{count}'; echo 'ERROR: failed to push: 429 Too Many Requests' >&2; exit 1; fi;;
esac
exec '{}' \"$@\"
",
            which("docker").display(),
            count = count.display()
        ),
    );
    let push = |refusals: u32| {
        std::fs::write(&count, refusals.to_string()).unwrap();
        let output = run(fixture
            .xtask()
            .args(["build", "--push", "--env", "dev", "--repository", &repo])
            .args(["--cache", "registry", "--variant", "gpu"])
            .env("PATH", path_with(&dir))
            .env("DOCKER_HOST", &host)
            .env("DOCKER_CONFIG", fresh_docker_config()));
        let err = stderr(&output);
        let builds = |output: &str| {
            err.lines()
                .filter(|l| l.contains("$ docker buildx build") && l.ends_with(output))
                .count()
        };
        let counts = (builds("--output type=cacheonly ."), builds("--push ."));
        (output, counts)
    };

    let (failed, counts) = push(9);
    let err = stderr(&failed);
    assert_eq!(failed.status.code(), Some(1), "{err}");
    assert_eq!(counts, (1, 3), "one build, three pushes:\n{err}");
    assert!(
        err.contains("push of gpu for linux/amd64 to ")
            && err.contains("failed (the build succeeded)")
            && err.contains("429 Too Many Requests"),
        "{err}"
    );
    assert_eq!(tags(&rig.dev, &repo), ["cache-amd64-gpu"], "{err}");

    let (again, counts) = push(1);
    let err = stderr(&again);
    assert_eq!(again.status.code(), Some(0), "{err}");
    assert_eq!(
        counts,
        (1, 2),
        "one build, a refused push, its retry:\n{err}"
    );
    let sha8 = &fixture.head()[..8];
    assert_eq!(
        tags(&rig.dev, &repo),
        [
            "cache-amd64-gpu".to_string(),
            "latest-amd64-gpu".to_string(),
            format!("make-{sha8}-amd64-gpu")
        ]
    );
}

/// Under GitHub Actions, `build` first reports the free space in the
/// engine's data root, and warns when it is below what the GPU image needs.
#[test]
#[ignore = "needs the rig: make test"]
fn under_github_actions_build_reports_the_disk_first() {
    rig();
    let host = Engine::Containerd.host();
    let fixture = Fixture::new("disk", r#"{"gpu": "linux/amd64"}"#, &["gpu"]);
    let root = Command::new("docker")
        .args(["info", "--format", "{{.DockerRootDir}}"])
        .env("DOCKER_HOST", &host)
        .output()
        .unwrap();
    let root = String::from_utf8_lossy(&root.stdout).trim().to_string();
    let event = fixture.root.with_extension("event.json");
    let push = r#"{"ref": "refs/heads/main", "repository": {"default_branch": "main"}}"#;
    std::fs::write(&event, push).unwrap();
    let actions = |min_free_gb: &str| {
        run(fixture
            .xtask()
            .args(["build", "--cache", "none"])
            .env("DOCKER_HOST", &host)
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_EVENT_NAME", "push")
            .env("GITHUB_EVENT_PATH", &event)
            .env("GITHUB_SHA", fixture.head())
            .env("XTASK_MIN_FREE_GB", min_free_gb))
    };
    // The other tests write to the same disk while this one runs, so the
    // free space moves: xtask's reading must fall between df's readings just
    // before and just after it (give or take its rounding to 0.1 GB). A busy
    // moment can still move it out and back; three tries tell that apart
    // from a wrong reading (another filesystem, or GiB for GB).
    let (mut output, mut window, mut reported) = (None, (0.0, 0.0), 0.0);
    for _ in 0..3 {
        let before = available_gb(&root);
        let run = actions("1");
        let after = available_gb(&root);
        assert!(run.status.success());
        let err = stderr(&run);
        let line = err
            .lines()
            .find(|l| l.starts_with("disk: "))
            .unwrap_or_else(|| panic!("no disk report: {err}"));
        assert!(
            line.contains(&format!("free in {root}, where the builder keeps its data")),
            "{line}"
        );
        reported = line["disk: ".len()..]
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        window = (before.min(after) - 0.05, before.max(after) + 0.05);
        output = Some(run);
        if (window.0..=window.1).contains(&reported) {
            break;
        }
    }
    assert!(
        (window.0..=window.1).contains(&reported),
        "reported {reported} GB, df says {:.2} to {:.2} GB",
        window.0,
        window.1
    );
    let err = stderr(output.as_ref().unwrap());
    let first_build = err.find("$ docker buildx build").unwrap();
    assert!(
        err.find("disk: ").unwrap() < first_build,
        "the report comes before the build"
    );

    let short = actions("100000");
    assert!(short.status.success(), "a warning, not a failure");
    let err = stderr(&short);
    assert!(
        err.lines().any(|l| l.starts_with("::warning::only ")
            && l.contains(&format!("free in {root}"))
            && l.contains("the GPU image needs about 100000 GB")),
        "{err}"
    );
}

/// df's available space in the filesystem holding `path`, in GB (10^9 bytes).
fn available_gb(path: &str) -> f64 {
    let df = Command::new("df")
        .args(["-P", "-k", path])
        .output()
        .unwrap();
    let available_kib: f64 = String::from_utf8_lossy(&df.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .nth(3)
        .unwrap()
        .parse()
        .unwrap();
    available_kib * 1024.0 / 1e9
}

/// `--load` gives `containerimage.digest` two meanings (the config's digest
/// on the classic store, the manifest's on containerd): `build` reports the
/// config digest on both, the one a push keeps; `--push` reports the
/// manifest digest the registry serves, on both.
#[test]
#[ignore = "needs the rig: make test"]
fn digests_mean_the_same_on_both_engines() {
    let rig = rig();
    for engine in [Engine::Containerd, Engine::Classic] {
        let host = engine.host();
        let fixture = Fixture::standard("digests");
        let repo = unique("digests").to_lowercase();
        let config = fresh_docker_config();
        let built = run(fixture
            .xtask()
            .args(["build", "--env", "dev", "--repository", &repo])
            .env("DOCKER_HOST", &host)
            .env("DOCKER_CONFIG", &config));
        assert!(built.status.success(), "{engine:?}");
        assert!(stdout(&built).contains("CONFIG DIGEST"), "{engine:?}");
        let pushed = run(fixture
            .xtask()
            .args(["push", "--env", "dev", "--repository", &repo])
            .env("DOCKER_HOST", &host)
            .env("DOCKER_CONFIG", &config));
        assert!(pushed.status.success(), "{engine:?}");
        for variant in ["gpu", "cpu"] {
            let reference = format!("{}/{repo}:latest-{}-{variant}", rig.dev, arch_of(variant));
            let manifest = raw_manifest(&reference);
            assert_eq!(
                manifest["config"]["digest"].as_str().unwrap(),
                reported_digest(&stdout(&built), variant),
                "{engine:?} {variant}: the loaded image's reported digest is not its config's"
            );
            assert_eq!(
                raw_digest(&reference),
                reported_digest(&stdout(&pushed), variant),
                "{engine:?}"
            );
        }
        fixture.commit("straight to the registry");
        let direct = build(&fixture, &host, &repo, &["--cache", "none"]);
        assert!(direct.status.success(), "{engine:?}");
        let sha8 = &fixture.head()[..8];
        for variant in ["gpu", "cpu"] {
            let reference = format!(
                "{}/{repo}:make-{sha8}-{}-{variant}",
                rig.dev,
                arch_of(variant)
            );
            assert_eq!(
                raw_digest(&reference),
                reported_digest(&stdout(&direct), variant),
                "{engine:?}"
            );
            let manifest = raw_manifest(&reference);
            assert!(
                manifest["config"]["digest"].is_string() && manifest.get("manifests").is_none(),
                "{engine:?}: a single image manifest, no attestation index (--provenance=false): {manifest}"
            );
        }
    }
}

/// The real Dockerfiles on the classic engine, as on today's runners and
/// most developers' machines: both variants build (cpu cross-compiled for
/// arm64), pass the architecture check and start (`--smoke`, arm64 through
/// qemu). The stand-in bases live in the containerd engine (rig/bases): they
/// reach the classic one through a registry, as a runner pulls its bases.
#[test]
#[ignore = "needs the rig: make test"]
fn the_real_dockerfiles_build_and_start_on_the_classic_engine() {
    let rig = rig();
    let containerd =
        std::env::var("RIG_DOCKER_HOST_CONTAINERD").expect("RIG_DOCKER_HOST_CONTAINERD");
    let classic = Engine::Classic.host();
    let fixture = Fixture::real("classic-real", None);
    let config = fresh_docker_config();
    assert!(run(fixture
        .xtask()
        .args(["login", "--env", "dev"])
        .env("DOCKER_CONFIG", &config))
    .status
    .success());
    let bases = format!("{}/{}", rig.dev, unique("classic-bases").to_lowercase());
    for (local, remote) in [
        ("rig/rust:bookworm-cross", "rust:bookworm-cross"),
        ("rig/debian:bookworm-amd64", "debian:bookworm-amd64"),
        ("rig/debian:bookworm-arm64", "debian:bookworm-arm64"),
    ] {
        let remote = format!("{bases}/{remote}");
        for args in [
            vec!["tag", local, &remote],
            vec!["push", "--quiet", &remote],
            vec!["image", "rm", &remote],
        ] {
            let output = Command::new("docker")
                .args(&args)
                .env("DOCKER_HOST", &containerd)
                .env("DOCKER_CONFIG", &config)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "docker {args:?} (is rig/bases --cross done?): {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    let output = run(fixture
        .xtask()
        .args(["build", "--env", "dev", "--smoke", "--network", "none"])
        .env("XTASK_BUILD_ARGS", format!("BUILD_IMAGE={bases}/rust:bookworm-cross\nRUNTIME_IMAGE={bases}/debian:bookworm-{{arch}}"))
        .env("DOCKER_HOST", &classic)
        .env("DOCKER_CONFIG", &config));
    assert!(output.status.success());
    let err = stderr(&output);
    for (variant, arch) in [("gpu", "amd64"), ("cpu", "arm64")] {
        assert!(
            err.contains(&format!(
                "[{variant}] architecture check: linux/{arch}, as asked"
            )),
            "{err}"
        );
        assert!(
            err.contains(&format!("[{variant}] smoke check: "))
                && err.contains(&format!("reports {variant} on {arch}")),
            "{err}"
        );
    }
}

/// A push the registry refuses for its credentials (no login: 401) is not
/// retried: trying the same credentials again cannot succeed, and "gave up
/// after 3 attempts" would read as a flaky network. The error says so and
/// names the fix. A real registry's refusal, not a stand-in's.
#[test]
#[ignore = "needs the rig: make test"]
fn a_push_the_registry_refuses_is_not_retried() {
    let rig = rig();
    let host = Engine::Containerd.host();
    let fixture = Fixture::standard("pushrefused");
    let repo = unique("pushrefused").to_lowercase();
    let push = |cache: &str| {
        run(fixture
            .xtask()
            .args(["build", "--push", "--env", "dev", "--repository", &repo])
            .args(["--cache", cache, "--variant", "gpu", "--no-login"])
            .env("DOCKER_HOST", &host)
            .env("DOCKER_CONFIG", fresh_docker_config()))
    };
    // The re-run check reads the commit's tag first, and is refused first:
    // that is no reason to wait for the registry.
    let output = push("local");
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the registry refused the credentials: check the login")
            && !err.contains("re-run when the registry answers"),
        "{err}"
    );
    // `--cache none` makes no re-run check: the push is refused.
    let output = push("none");
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    let pushes = err
        .lines()
        .filter(|l| l.contains("$ docker buildx build") && l.ends_with("--push ."))
        .count();
    assert_eq!(pushes, 1, "a refused push was tried again:\n{err}");
    assert!(!err.contains("retrying in"), "{err}");
    assert!(
        err.contains("the registry refused the credentials: not retried"),
        "{err}"
    );
    assert!(tags(&rig.dev, &repo).is_empty(), "{err}");
}
