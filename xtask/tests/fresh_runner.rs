//! A CI rebuild on a fresh runner, from the registry cache alone, on the
//! rig's fresh-store engine (a containerd store, whose default builder
//! exports a cache, as CI's docker-container builder does; only this test
//! uses it): the real Dockerfiles are built with the cache exported to the
//! dev registry; then the engine is wiped as a new runner would be (no
//! images, no build cache; base images come from a registry, as a runner
//! pulls them) before each rebuild. Which steps were cached is read from
//! BuildKit's machine-readable progress (`--progress rawjson`), never from
//! log text.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::{rig, run, tags, unique, Fixture};
use serde_json::Value;

/// The stand-in bases the real Dockerfiles build from here (rig/bases
/// --cross): BUILD_IMAGE, and RUNTIME_IMAGE per architecture.
const BASES: [&str; 3] = [
    "rig/rust:bookworm-cross",
    "rig/debian:bookworm-amd64",
    "rig/debian:bookworm-arm64",
];

fn docker(host: &str, args: &[&str]) -> String {
    let output = Command::new("docker")
        .args(args)
        .env("DOCKER_HOST", host)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Everything local goes, as on a new runner: every image, every build-cache
/// record. Checked, not assumed.
fn wipe(host: &str) {
    let images: Vec<String> = docker(host, &["image", "ls", "--all", "--quiet", "--no-trunc"])
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if !images.is_empty() {
        let mut args = vec!["image", "rm", "--force"];
        args.extend(images.iter().map(String::as_str));
        docker(host, &args);
    }
    docker(host, &["builder", "prune", "--all", "--force"]);
    assert_eq!(
        docker(host, &["image", "ls", "--all", "--quiet"]).trim(),
        "",
        "images left"
    );
    let records: Value = serde_json::from_str(
        docker(
            host,
            &[
                "system",
                "df",
                "--verbose",
                "--format",
                "{{json .BuildCache}}",
            ],
        )
        .trim(),
    )
    .unwrap();
    assert!(
        records.as_array().is_none_or(|r| r.is_empty()),
        "build cache left: {records}"
    );
}

/// How a `build --push` step's command line ends: the build, then the
/// push, which builds again and must find every step in the cache.
const BUILD: &str = "--output type=cacheonly .";
const PUSH: &str = "--push .";

/// BuildKit's output for the last `step` ([`BUILD`] or [`PUSH`]) of
/// `variant`, from its log.
fn build_log(fixture: &Fixture, variant: &str, step: &str) -> String {
    let path = fixture
        .root
        .join(format!("target/xtask/logs/{variant}.log"));
    let log = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let lines: Vec<&str> = log.lines().collect();
    let start = lines
        .iter()
        .rposition(|l| l.starts_with("$ docker buildx build ") && l.ends_with(step))
        .unwrap_or_else(|| panic!("{}: no step ending {step}", path.display()));
    let end = lines[start + 1..]
        .iter()
        .position(|l| l.starts_with("$ "))
        .map_or(lines.len(), |n| start + 1 + n);
    lines[start..end].join("\n")
}

/// Each Dockerfile step's vertex (`[build 3/7] RUN ...`) of one variant, in
/// order, with whether BuildKit took it from the cache, from the rawjson
/// progress of the last build, which xtask keeps in `target/xtask/logs/`.
fn steps(fixture: &Fixture, variant: &str, step: &str) -> Vec<(String, bool)> {
    let log = build_log(fixture, variant, step);
    let mut vertices: BTreeMap<String, (String, bool, String)> = BTreeMap::new();
    for line in log.lines() {
        let Ok(status) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        for vertex in status["vertexes"].as_array().into_iter().flatten() {
            let digest = vertex["digest"].as_str().unwrap_or_default().to_string();
            let entry = vertices.entry(digest).or_default();
            entry.0 = vertex["name"].as_str().unwrap_or_default().to_string();
            entry.1 |= vertex["cached"].as_bool().unwrap_or(false);
            if let Some(started) = vertex["started"].as_str() {
                if entry.2.is_empty() {
                    entry.2 = started.to_string();
                }
            }
        }
    }
    let mut steps: Vec<(String, bool)> = vertices
        .into_values()
        .filter(|(name, _, _)| is_step(name))
        .map(|(name, cached, _)| (name, cached))
        .collect();
    steps.sort_by_key(|(name, _)| step_order(name));
    steps
}

/// Where one variant's build spent its time: every vertex that took a
/// second or more, longest first, from the rawjson progress (for the
/// benchmark's explanation, never asserted).
fn time_spent(fixture: &Fixture, variant: &str) -> String {
    let log = build_log(fixture, variant, BUILD);
    let mut spans: BTreeMap<String, (String, f64, f64)> = BTreeMap::new();
    for line in log.lines() {
        let Ok(status) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        for vertex in status["vertexes"].as_array().into_iter().flatten() {
            let entry = spans
                .entry(vertex["digest"].as_str().unwrap_or_default().to_string())
                .or_insert((String::new(), f64::MAX, 0.0));
            entry.0 = vertex["name"].as_str().unwrap_or_default().to_string();
            if let Some(t) = vertex["started"].as_str().and_then(epoch_seconds) {
                entry.1 = entry.1.min(t);
            }
            if let Some(t) = vertex["completed"].as_str().and_then(epoch_seconds) {
                entry.2 = entry.2.max(t);
            }
        }
    }
    let mut spent: Vec<(f64, String)> = spans
        .into_values()
        .filter(|(_, start, end)| *start < f64::MAX && *end > 0.0)
        .map(|(name, start, end)| (end - start, name.chars().take(60).collect()))
        .filter(|(seconds, _)| *seconds >= 1.0)
        .collect();
    spent.sort_by(|a, b| b.0.total_cmp(&a.0));
    spent
        .iter()
        .map(|(seconds, name)| format!("{seconds:.1}s {name}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `2026-12-01T08:40:12.123456789Z` as seconds since 1970. BuildKit writes
/// its daemon's local time; in UTC (as on the rig and GitHub's runners) that
/// ends in `Z`. A time with another offset is not read, and only drops out
/// of the printed detail.
fn epoch_seconds(text: &str) -> Option<f64> {
    let time = humantime::parse_rfc3339(text).ok()?;
    Some(
        time.duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs_f64(),
    )
}

/// `[build 3/7] RUN ...` or `[2/3] COPY ...`: a Dockerfile instruction.
fn is_step(name: &str) -> bool {
    name.strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
        .and_then(|(inside, _)| inside.rsplit(' ').next())
        .is_some_and(|n| {
            n.split_once('/')
                .is_some_and(|(a, b)| a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok())
        })
}

/// The push after the build ran no step: all came from the cache, the
/// registry's included (an unchanged tree's build only marks them there).
fn assert_push_cached(fixture: &Fixture, variant: &str) {
    let steps = steps(fixture, variant, PUSH);
    assert!(!steps.is_empty(), "{variant}: no steps in the push");
    let ran: Vec<&String> = steps
        .iter()
        .filter(|(name, cached)| !cached && !name.contains("] FROM "))
        .map(|(name, _)| name)
        .collect();
    assert!(ran.is_empty(), "{variant}: the push built again: {ran:?}");
}

fn step_order(name: &str) -> (String, u32) {
    let inside = &name[1..name.find(']').unwrap()];
    let (stage, n) = inside.rsplit_once(' ').unwrap_or(("", inside));
    (
        stage.to_string(),
        n.split('/').next().unwrap().parse().unwrap(),
    )
}

fn build(
    fixture: &Fixture,
    host: &str,
    config: &Path,
    repo: &str,
    build_args: &str,
) -> (std::process::Output, f64) {
    let started = Instant::now();
    let mut command = fixture.xtask();
    command
        .args([
            "build",
            "--push",
            "--env",
            "dev",
            "--repository",
            repo,
            "--cache",
            "registry",
        ])
        .args(["--progress", "rawjson"])
        .env("DOCKER_HOST", host)
        .env("DOCKER_CONFIG", config)
        .env("XTASK_BUILD_ARGS", build_args)
        .env("XTASK_NETWORK", "none")
        // Unset, as on a runner: set, BuildKit keys every step's cache on
        // it (see the README's SOURCE_DATE_EPOCH note).
        .env_remove("SOURCE_DATE_EPOCH");
    let output = run(&mut command);
    (output, started.elapsed().as_secs_f64())
}

#[test]
#[ignore = "needs the rig: make test"]
fn a_fresh_runner_rebuilds_from_the_registry_cache_alone() {
    let rig = rig();
    let engine = |key: &str| {
        std::env::var(key).unwrap_or_else(|_| {
            panic!("{key} is not set: this test needs the rig's engines (rig/rig up)")
        })
    };
    let (host, source) = (
        engine("RIG_DOCKER_HOST_FRESH"),
        engine("RIG_DOCKER_HOST_CONTAINERD"),
    );
    eprintln!(
        "--- fresh-store engine at {host}: Docker {}",
        docker(&host, &["version", "--format", "{{.Server.Version}}"]).trim()
    );
    let fixture = Fixture::real("fresh", None);
    let repo = unique("fresh").to_lowercase();
    let config = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("fresh-config"));
    std::fs::create_dir_all(&config).unwrap();
    let login = run(fixture
        .xtask()
        .args(["login", "--env", "dev"])
        .env("DOCKER_CONFIG", &config));
    assert!(login.status.success());

    // The stand-in bases the build needs go from the containerd-store
    // engine (rig/bases) to the registry, for the build to pull as a runner
    // would.
    for base in BASES {
        let remote = format!(
            "{}/{repo}-bases/{}",
            rig.dev,
            base.trim_start_matches("rig/")
        );
        let tagged = Command::new("docker")
            .args(["tag", base, &remote])
            .env("DOCKER_HOST", &source)
            .output()
            .unwrap();
        assert!(
            tagged.status.success(),
            "{base} is not in the containerd-store engine: run rig/bases --cross"
        );
        let push = Command::new("docker")
            .args(["push", "--quiet", &remote])
            .env("DOCKER_HOST", &source)
            .env("DOCKER_CONFIG", &config)
            .output()
            .unwrap();
        assert!(
            push.status.success(),
            "push {remote}: {}",
            String::from_utf8_lossy(&push.stderr)
        );
        docker(&source, &["image", "rm", &remote]);
    }
    let bases = format!("{}/{repo}-bases", rig.dev);
    let build_args = format!(
        "BUILD_IMAGE={bases}/rust:bookworm-cross\nRUNTIME_IMAGE={bases}/debian:bookworm-{{arch}}"
    );

    // Cold: nothing local, no cache in the registry yet.
    wipe(&host);
    let (cold, cold_s) = build(&fixture, &host, &config, &repo, &build_args);
    assert!(cold.status.success());
    for variant in ["gpu", "cpu"] {
        eprintln!(
            "benchmark detail: cold {variant}: {}",
            time_spent(&fixture, variant)
        );
    }
    for variant in ["gpu", "cpu"] {
        assert!(steps(&fixture, variant, BUILD)
            .iter()
            .any(|(name, cached)| name.contains("cargo build") && !cached));
    }
    let all = tags(&rig.dev, &repo);
    assert!(
        all.contains(&"cache-amd64-gpu".into()) && all.contains(&"cache-arm64-cpu".into()),
        "{all:?}"
    );

    // A one-line change under app/src, on a wiped engine.
    let main = fixture.root.join("app/src/main.rs");
    let source = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, format!("{source}// a one-line change\n")).unwrap();
    fixture.git(&["commit", "--quiet", "-am", "one line"]);
    wipe(&host);
    let (change, change_s) = build(&fixture, &host, &config, &repo, &build_args);
    assert!(change.status.success());
    for variant in ["gpu", "cpu"] {
        eprintln!(
            "benchmark detail: one-line change {variant}: {}",
            time_spent(&fixture, variant)
        );
    }
    for variant in ["gpu", "cpu"] {
        assert_push_cached(&fixture, variant);
        let steps = steps(&fixture, variant, BUILD);
        let copy = steps
            .iter()
            .position(|(name, _)| name.contains("COPY app/src app/src"))
            .unwrap_or_else(|| panic!("{variant}: no COPY app/src step in {steps:?}"));
        let (build_stage, _) = step_order(&steps[copy].0);
        for (i, (name, cached)) in steps.iter().enumerate() {
            let in_build = step_order(name).0 == build_stage;
            if in_build && i < copy && !name.contains("] FROM ") {
                assert!(
                    cached,
                    "{variant}: {name} was rebuilt, but comes before the change: {steps:?}"
                );
            }
            if (in_build && i >= copy) || name.contains("COPY --from=build") {
                assert!(
                    !cached,
                    "{variant}: {name} was cached, but follows the change: {steps:?}"
                );
            }
        }
        assert!(
            steps
                .iter()
                .any(|(name, cached)| name.contains("echo 'fn main() {}'") && *cached),
            "{variant}: the dependency layer was not cached: {steps:?}"
        );
    }

    // The same tree again, on a wiped engine: every step from the cache.
    // (Its build arguments make it build: a build with `--build-arg`s never
    // reuses the image already pushed, as the re-run below does.)
    wipe(&host);
    let (same, same_s) = build(&fixture, &host, &config, &repo, &build_args);
    assert!(same.status.success());
    for variant in ["gpu", "cpu"] {
        eprintln!(
            "benchmark detail: unchanged {variant}: {}",
            time_spent(&fixture, variant)
        );
    }
    for variant in ["gpu", "cpu"] {
        assert_push_cached(&fixture, variant);
        let steps = steps(&fixture, variant, BUILD);
        assert!(!steps.is_empty());
        let rebuilt: Vec<&String> = steps
            .iter()
            .filter(|(name, cached)| !cached && !name.contains("] FROM "))
            .map(|(name, _)| name)
            .collect();
        assert!(
            rebuilt.is_empty(),
            "{variant}: rebuilt on an unchanged tree: {rebuilt:?}"
        );
    }
    // A re-run of the same commit on a wiped engine, its image in the
    // registry: tagged, nothing built (so no base image is needed).
    wipe(&host);
    let (rerun, rerun_s) = build(&fixture, &host, &config, &repo, "");
    assert!(rerun.status.success());
    let err = String::from_utf8_lossy(&rerun.stderr);
    assert!(
        err.contains("is already this commit's image") && !err.contains("docker buildx build"),
        "{err}"
    );
    eprintln!(
        "benchmark: fresh-runner rebuild from the registry cache, both variants: cold {cold_s:.1}s, \
         one-line change {change_s:.1}s ({:.2}x), unchanged {same_s:.1}s ({:.2}x); \
         a re-run of the same commit, tagged {rerun_s:.1}s ({:.2}x)",
        change_s / cold_s,
        same_s / cold_s,
        rerun_s / cold_s
    );
}

#[test]
fn reads_buildkit_timestamps() {
    assert_eq!(epoch_seconds("1970-01-01T00:00:00Z"), Some(0.0));
    assert_eq!(epoch_seconds("2000-02-29T00:00:00Z"), Some(951_782_400.0));
    assert_eq!(
        epoch_seconds("2026-11-28T05:52:36.5Z"),
        Some(1_795_845_156.5)
    );
    assert!(is_step("[build 3/7] RUN cargo build") && is_step("[2/3] COPY x y"));
    assert!(!is_step("[internal] load build context") && !is_step("exporting cache"));
}
