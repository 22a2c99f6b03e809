//! The repository's real Dockerfile-gpu and Dockerfile-cpu, built by
//! `cargo xtask build --smoke` on the rig from the stand-in base images
//! (`rig/bases --cross`: no base image can be pulled there), then checked:
//! the platform, the labels, what each image's `check` reports, the GPU
//! check's refusal without a GPU, the non-root user, and which layers a
//! one-line source change rebuilds (read from BuildKit's rawjson progress).
//!
//! The builds run on the rig's default engine (`DOCKER_HOST`: the
//! containerd image store).

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

use common::{rig, run, stderr, stdout, unique, Fixture};
use serde_json::Value;

/// The stand-ins rig/bases makes; `{arch}` is expanded per variant by xtask.
const BASES: [&str; 4] = [
    "--build-arg",
    "BUILD_IMAGE=rig/rust:bookworm-cross",
    "--build-arg",
    "RUNTIME_IMAGE=rig/debian:bookworm-{arch}",
];

const REVISION_LABEL: &str = "org.opencontainers.image.revision";
const VERSION_LABEL: &str = "org.opencontainers.image.version";
const VARIANT_LABEL: &str = "org.opencontainers.image.variant";

/// The tests here build one at a time. Both build the build stage for amd64
/// from the same bases, and while two builds run the same step at once,
/// BuildKit runs it for one and reports it in both builds' progress: the
/// rebuild test then reads the other build's uncached steps as its own
/// (seen in CI: `[build 5/7]` listed twice, once cached and once built).
fn one_build_at_a_time() -> MutexGuard<'static, ()> {
    static BUILDS: Mutex<()> = Mutex::new(());
    BUILDS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => panic!("no image platform for a {other} host"),
    }
}

fn docker(args: &[&str]) -> Output {
    run(Command::new("docker").args(args))
}

/// `docker image inspect`'s one object for `reference`.
fn image(reference: &str) -> Value {
    let output = docker(&["image", "inspect", reference]);
    assert!(output.status.success(), "{reference} is not in the engine");
    let list: Value = serde_json::from_slice(&output.stdout).unwrap();
    list[0].clone()
}

/// The steps of a rawjson progress log: each vertex's name and whether it
/// came from the cache, in the order BuildKit first reported them.
fn steps(log: &str) -> Vec<(String, bool)> {
    let mut steps: Vec<(String, String, bool)> = Vec::new();
    for line in log.lines() {
        let Ok(progress) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        for vertex in progress["vertexes"].as_array().into_iter().flatten() {
            let digest = vertex["digest"].as_str().unwrap_or_default().to_string();
            let cached = vertex["cached"].as_bool().unwrap_or(false);
            match steps.iter_mut().find(|(d, _, _)| *d == digest) {
                Some(step) => step.2 |= cached,
                None => steps.push((
                    digest,
                    vertex["name"].as_str().unwrap_or_default().to_string(),
                    cached,
                )),
            }
        }
    }
    steps
        .into_iter()
        .map(|(_, name, cached)| (name, cached))
        .collect()
}

/// Whether the one step whose name contains every one of `words` was cached.
fn cached(steps: &[(String, bool)], words: &[&str]) -> bool {
    let found: Vec<&(String, bool)> = steps
        .iter()
        .filter(|(name, _)| words.iter().all(|w| name.contains(w)))
        .collect();
    let [(_, cached)] = found[..] else {
        panic!("not one step named with {words:?}: {found:?} in {steps:#?}")
    };
    *cached
}

/// The report a `check` printed (its first line), and its `ok:` line.
fn report(output: &Output) -> (Value, String) {
    let out = stdout(output);
    let mut lines = out.lines();
    let json = serde_json::from_str(lines.next().unwrap_or_default())
        .unwrap_or_else(|e| panic!("no JSON report ({e}) in {out}"));
    (json, lines.next().unwrap_or_default().to_string())
}

#[test]
#[ignore = "needs the rig: make test"]
fn the_real_dockerfiles_build_for_their_platforms_and_pass_their_checks() {
    let _builds = one_build_at_a_time();
    let rig = rig();
    let repo_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.aws-architecture");
    let architecture = std::fs::read_to_string(repo_file).unwrap();
    let fixture = Fixture::real("dockerfiles", Some(&architecture));
    let sha = fixture.head();
    let repository = unique("dockerfiles").to_lowercase();
    // Local images are named for the dev registry, where a push would go.
    let image_name = format!("{}/{repository}", rig.dev);
    let mut args = vec!["build", "--variant", "all", "--smoke", "--network", "none"];
    args.extend(["--cache", "none", "--repository", &repository]);
    args.extend(BASES);
    let output = run(fixture.xtask().args(&args));
    assert!(output.status.success());
    let err = stderr(&output);

    for (variant, arch) in [("gpu", "amd64"), ("cpu", "arm64")] {
        let platform = format!("linux/{arch}");
        assert!(
            architecture.contains(&format!("\"{variant}\": \"{platform}\"")),
            "the shipped .aws-architecture moved: {architecture}"
        );
        let reference = format!("{image_name}:latest-{arch}-{variant}");
        assert!(
            err.contains(&format!(
                "[{variant}] architecture check: {platform}, as asked"
            )),
            "{err}"
        );
        // Not "smoke check skipped": the rig runs arm64 through qemu.
        assert!(
            err.contains(&format!(
                "[{variant}] smoke check: {reference} starts and reports {variant} on {arch}"
            )),
            "{err}"
        );

        let inspected = image(&reference);
        assert_eq!(
            (inspected["Os"].as_str(), inspected["Architecture"].as_str()),
            (Some("linux"), Some(arch))
        );
        let labels = &inspected["Config"]["Labels"];
        assert_eq!(labels[REVISION_LABEL], sha.as_str(), "{labels}");
        assert_eq!(labels[VERSION_LABEL], &sha[..8], "{labels}");
        assert_eq!(labels[VARIANT_LABEL], variant, "{labels}");

        // The image's own report: what it was built as, by this commit.
        let check = docker(&[
            "run",
            "--rm",
            "--platform",
            &platform,
            "--env",
            "BATCH_PROBE_ALLOW_NO_GPU=1",
            &reference,
            "check",
        ]);
        assert!(check.status.success());
        let (json, ok) = report(&check);
        for (key, want) in [
            ("variant", variant),
            ("arch", arch),
            ("expected_arch", arch),
            ("platform", &platform),
            ("revision", &sha),
            ("version", &sha[..8]),
        ] {
            assert_eq!(json[key], want, "{key} in {json}");
        }
        assert!(
            ok.starts_with(&format!("ok: {variant} image for {platform}")),
            "{ok}"
        );
        let info = docker(&["run", "--rm", "--platform", &platform, &reference, "info"]);
        assert!(info.status.success());
        assert_eq!(
            serde_json::from_str::<Value>(stdout(&info).trim()).unwrap(),
            json,
            "info and check report alike"
        );
    }

    // As on a machine without a GPU but with the CUDA base image's
    // NVIDIA_VISIBLE_DEVICES=all (the stand-in base does not set it).
    let gpu = format!("{image_name}:latest-amd64-gpu");
    let refused = docker(&[
        "run",
        "--rm",
        "--env",
        "NVIDIA_VISIBLE_DEVICES=all",
        &gpu,
        "check",
    ]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused)
            .lines()
            .any(|l| l.starts_with("error: gpu image but no GPU is visible")),
        "{}",
        stderr(&refused)
    );
    // What the NVIDIA container runtime adds for one GPU, faked with bind
    // mounts of /dev/null: the device nodes are all `check` looks for.
    let with_gpu = docker(&[
        "run",
        "--rm",
        "--volume",
        "/dev/null:/dev/nvidiactl",
        "--volume",
        "/dev/null:/dev/nvidia0",
        "--env",
        "NVIDIA_VISIBLE_DEVICES=0",
        &gpu,
        "check",
    ]);
    assert!(with_gpu.status.success());
    let (json, ok) = report(&with_gpu);
    assert_eq!(
        json["gpu"]["devices"],
        serde_json::json!(["/dev/nvidia0"]),
        "{json}"
    );
    assert_eq!(
        (&json["gpu"]["visible"], &json["gpu"]["requested"]),
        (&Value::Bool(true), &Value::Bool(true)),
        "{json}"
    );
    assert!(ok.ends_with("GPU visible (/dev/nvidia0)"), "{ok}");

    // The cpu image runs as the numeric non-root user, not as root.
    let cpu = format!("{image_name}:latest-arm64-cpu");
    assert_eq!(image(&cpu)["Config"]["User"], "65532:65532");
    let id = docker(&[
        "run",
        "--rm",
        "--platform",
        "linux/arm64",
        "--entrypoint",
        "/usr/bin/id",
        &cpu,
        "-u",
    ]);
    assert_eq!(stdout(&id).trim(), "65532");
}

/// A one-line change under app/src, built against the cache the first build
/// left: the dependency layers come from the cache, everything from
/// `COPY app/src` on is built anew, and the image runs the changed source.
/// Both times are printed (a benchmark, never asserted).
#[test]
#[ignore = "needs the rig: make test"]
fn a_one_line_source_change_rebuilds_only_from_the_sources_on() {
    let _builds = one_build_at_a_time();
    let rig = rig();
    let arch = host_arch();
    // cpu for the host, so that no emulation slows the compile down.
    let architecture = format!(r#"{{"gpu": "linux/amd64", "cpu": "linux/{arch}"}}"#);
    let fixture = Fixture::real("dockerfiles-rebuild", Some(&architecture));
    let repository = unique("dockerfiles-rebuild").to_lowercase();
    let build = |what: &str| {
        let mut args = vec!["build", "--variant", "cpu", "--network", "none"];
        args.extend(["--progress", "rawjson", "--cache", "local"]);
        args.extend(["--repository", &repository]);
        args.extend(BASES);
        let started = std::time::Instant::now();
        let output = run(fixture.xtask().args(&args));
        assert!(output.status.success(), "{what} failed");
        let log = fixture.root.join("target/xtask/logs/cpu.log");
        let took = started.elapsed().as_secs_f64();
        (steps(&std::fs::read_to_string(log).unwrap()), took)
    };
    let (_, first) = build("the first build");

    let main_rs = fixture.root.join("app/src/main.rs");
    let source = std::fs::read_to_string(&main_rs).unwrap();
    let marker = format!("usage ({}):", unique("changed"));
    let changed = source.replacen("usage: batch-probe ", &format!("{marker} batch-probe "), 1);
    assert_ne!(
        changed, source,
        "the usage line moved: the edit did not apply"
    );
    std::fs::write(&main_rs, changed).unwrap();
    fixture.git(&["commit", "--quiet", "-am", "one line changed"]);
    let (steps, rebuild) = build("the rebuild");
    eprintln!(
        "one-line change: rebuilt in {rebuild:.1}s, first build {first:.1}s; steps:\n{}",
        steps
            .iter()
            .map(|(name, cached)| format!("  {} {name}", if *cached { "CACHED" } else { "BUILT " }))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        cached(&steps, &["fn main() {}", "cargo build --release"]),
        "the dependency layer was rebuilt"
    );
    assert!(
        cached(&steps, &["COPY app/Cargo.toml"]),
        "the manifest's layer was rebuilt"
    );
    assert!(
        !cached(&steps, &["COPY app/src app/src"]),
        "the changed sources came from the cache"
    );
    assert!(
        !cached(&steps, &["BATCH_PROBE_VARIANT=", "cargo build"]),
        "the app was not compiled anew"
    );
    let help = docker(&[
        "run",
        "--rm",
        &format!("{}/{repository}:latest-{arch}-cpu", rig.dev),
        "help",
    ]);
    assert!(
        stdout(&help).starts_with(&format!("{marker} batch-probe ")),
        "the rebuilt image runs the old binary: {}",
        stdout(&help)
    );
}
