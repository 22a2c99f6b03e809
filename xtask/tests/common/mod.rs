//! Shared helpers for the integration tests: run the built `xtask` binary on
//! a fixture repository, start a private registry, read registries back.
//!
//! Tests that need the rig (engine, registries, emulator) are
//! `#[ignore = "needs the rig: make test"]`, which runs them, and call
//! [`rig`] first: run by hand outside it, they fail loudly instead of skipping.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;

/// The registries of the rig, from its env file.
pub struct Rig {
    pub dev: String,
    pub stage: String,
    pub prod: String,
    pub dir: PathBuf,
}

/// The rig's settings; panics with how to run the test when outside the rig.
pub fn rig() -> Rig {
    if std::env::var("XTASK_RIG").as_deref() != Ok("1") {
        panic!("this test needs the test rig (Docker engine, registries, AWS emulator): run `make test`, or `rig/rig up` then `rig/rig exec cargo test --workspace -- --include-ignored`");
    }
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set by the rig"));
    Rig {
        dev: var("ECR_REGISTRY_DEV"),
        stage: var("ECR_REGISTRY_STAGE"),
        prod: var("ECR_REGISTRY_PROD"),
        dir: var("RIG_DIR").into(),
    }
}

/// A `Command` for the built xtask binary, with deterministic timestamps.
/// git's stdout, run in `dir`; a failure fails the test.
pub fn git_in(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

pub fn xtask(root: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command
        .arg("--root")
        .arg(root)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("XTASK_ROOT");
    command
}

pub fn run(command: &mut Command) -> Output {
    let output = command
        .stdin(Stdio::null())
        .output()
        .expect("could not start the command");
    eprintln!(
        "--- {:?} exited {:?}\n--- stdout:\n{}--- stderr:\n{}",
        command,
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The commands a run printed (`[prefix] $ command`), without their prefixes.
pub fn commands(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter_map(|l| l.split_once("$ ").map(|(_, c)| c))
        .collect()
}

/// A name no other test (or earlier run) uses: for fixture folders and repositories.
pub fn unique(name: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{name}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// A throwaway repository: `.aws-architecture`, FROM-scratch Dockerfiles
/// with a unique payload each (so digests never collide across tests), a
/// `.gitignore` for what xtask writes (`target/`), and its own git history
/// on `main` (or the branch given to [`Fixture::on_branch`]).
pub struct Fixture {
    pub root: PathBuf,
}

impl Fixture {
    pub fn new(name: &str, architecture: &str, variants: &[&str]) -> Fixture {
        Fixture::on_branch(name, architecture, variants, "main")
    }

    pub fn on_branch(name: &str, architecture: &str, variants: &[&str], branch: &str) -> Fixture {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique(name));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join(".aws-architecture"), architecture).unwrap();
        for variant in variants {
            std::fs::write(
                root.join(format!("Dockerfile-{variant}")),
                format!("FROM scratch\nCOPY payload-{variant} /payload\n"),
            )
            .unwrap();
            std::fs::write(root.join(format!("payload-{variant}")), unique(variant)).unwrap();
        }
        std::fs::write(root.join(".gitignore"), "target/\n").unwrap();
        let fixture = Fixture { root };
        fixture.git(&["init", "--quiet", &format!("--initial-branch={branch}")]);
        fixture.git(&["config", "user.email", "test@example.com"]);
        fixture.git(&["config", "user.name", "test"]);
        fixture.commit("initial");
        fixture
    }

    /// A repository holding this checkout's real Dockerfiles and what they
    /// build from (the files the `.dockerignore` lets in), with its own
    /// `.aws-architecture` unless `architecture` replaces it.
    pub fn real(name: &str, architecture: Option<&str>) -> Fixture {
        let fixture = Fixture::new(name, "{}", &[]);
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let files = Command::new("git")
            .args([
                "ls-files",
                "Dockerfile-gpu",
                "Dockerfile-cpu",
                ".dockerignore",
            ])
            .args([".aws-architecture", "app"])
            .current_dir(source)
            .output()
            .unwrap();
        for file in String::from_utf8_lossy(&files.stdout).lines() {
            let to = fixture.root.join(file);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(source.join(file), &to).unwrap_or_else(|e| panic!("copy {file}: {e}"));
        }
        if let Some(architecture) = architecture {
            std::fs::write(fixture.root.join(".aws-architecture"), architecture).unwrap();
        }
        fixture.git(&["add", "-A"]);
        fixture.git(&["commit", "--quiet", "-m", "the real Dockerfiles"]);
        fixture
    }

    /// Drop `variant` from `.aws-architecture` (leaving `remaining`) and
    /// its Dockerfile and payload; returns the new commit.
    pub fn drop_variant(&self, variant: &str, remaining: &str) -> String {
        std::fs::write(self.root.join(".aws-architecture"), remaining).unwrap();
        for file in [
            format!("Dockerfile-{variant}"),
            format!("payload-{variant}"),
        ] {
            std::fs::remove_file(self.root.join(file)).unwrap();
        }
        self.commit(&format!("drop the {variant} variant"))
    }

    /// The shipped layout: gpu on amd64, cpu on arm64.
    pub fn standard(name: &str) -> Fixture {
        Fixture::new(
            name,
            r#"{"gpu": "linux/amd64", "cpu": "linux/arm64"}"#,
            &["gpu", "cpu"],
        )
    }

    pub fn git(&self, args: &[&str]) -> String {
        git_in(&self.root, args)
    }

    /// Change every payload and commit; returns the new full SHA.
    pub fn commit(&self, message: &str) -> String {
        for entry in std::fs::read_dir(&self.root).unwrap() {
            let path = entry.unwrap().path();
            if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("payload-")
            {
                std::fs::write(&path, unique(message)).unwrap();
            }
        }
        self.git(&["add", "-A"]);
        self.git(&["commit", "--quiet", "-m", message]);
        self.head()
    }

    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"])
    }

    pub fn xtask(&self) -> Command {
        let mut command = xtask(&self.root);
        command.current_dir(&self.root);
        command
    }
}

/// A skopeo auth file logged in to `registry` with the emulator's token,
/// so the tests read registries with credentials of their own, whatever
/// the rig's Docker config holds. The token goes through stdin.
pub fn authfile(registry: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "auth-{}-{}.json",
        std::process::id(),
        registry.replace([':', '.'], "_")
    ));
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if !path.exists() {
        use std::io::Write;
        let mut child = Command::new("skopeo")
            .args([
                "login",
                "--tls-verify=false",
                "--username",
                "AWS",
                "--password-stdin",
                "--authfile",
            ])
            .arg(&path)
            .arg(registry)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(ecr_token().as_bytes())
            .unwrap();
        assert!(
            child.wait().unwrap().success(),
            "skopeo login to {registry} failed"
        );
    }
    path
}

fn registry_of(reference: &str) -> &str {
    reference.split('/').next().unwrap()
}

/// `skopeo inspect` of a reference in a rig registry (loopback: plain HTTP).
pub fn inspect(reference: &str, arch: &str) -> Option<Value> {
    let output = Command::new("skopeo")
        .args([
            "--override-os",
            "linux",
            "--override-arch",
            arch,
            "inspect",
            "--tls-verify=false",
            "--authfile",
        ])
        .arg(authfile(registry_of(reference)))
        .arg(format!("docker://{reference}"))
        .output()
        .expect("skopeo is part of the rig");
    output
        .status
        .success()
        .then(|| serde_json::from_slice(&output.stdout).unwrap())
}

pub fn digest(reference: &str, arch: &str) -> Option<String> {
    inspect(reference, arch).map(|v| v["Digest"].as_str().unwrap().to_string())
}

/// The raw manifest bytes a tag points at.
pub fn raw_bytes(reference: &str) -> Vec<u8> {
    let output = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", "--authfile"])
        .arg(authfile(registry_of(reference)))
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{reference}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The raw manifest a tag points at.
pub fn raw_manifest(reference: &str) -> Value {
    serde_json::from_slice(&raw_bytes(reference)).unwrap()
}

/// The DIGEST column of xtask's closing table, by variant.
pub fn reported_digest(stdout: &str, variant: &str) -> String {
    stdout
        .lines()
        .find_map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            (cells.first() == Some(&variant)).then(|| {
                cells
                    .iter()
                    .find(|c| c.starts_with("sha256:"))
                    .map(|c| c.to_string())
            })
        })
        .flatten()
        .unwrap_or_else(|| panic!("no digest for {variant} in:\n{stdout}"))
}

/// A registry of the test's own, with the rig's login (user `AWS`, the
/// emulator's token) unless `htpasswd` says otherwise: for faults a shared
/// registry must not suffer (going down, a wrong password).
pub struct Registry {
    pub address: String,
    dir: PathBuf,
    htpasswd: PathBuf,
    child: Option<Child>,
}

impl Registry {
    pub fn start(name: &str, port: u16, htpasswd: Option<&str>) -> Registry {
        let rig = rig();
        // Taken, the port would answer for another registry.
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} is taken"
        );
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique(name));
        std::fs::create_dir_all(&dir).unwrap();
        let htpasswd_path = match htpasswd {
            Some(content) => {
                let path = dir.join("htpasswd");
                std::fs::write(&path, content).unwrap();
                path
            }
            None => rig.dir.join("registry/dev/htpasswd"),
        };
        let address = format!("127.0.0.1:{port}");
        let mut registry = Registry {
            address,
            dir,
            htpasswd: htpasswd_path,
            child: None,
        };
        registry.resume();
        registry
    }

    /// Start (again) on the same storage.
    pub fn resume(&mut self) {
        // The rig's own registry config (rig/rig writes it), with what
        // differs given the standard way, as the registry's REGISTRY_*
        // configuration overrides.
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(rig().dir.join("registry/dev/config.yml"))
            .env("REGISTRY_HTTP_ADDR", &self.address)
            .env(
                "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY",
                self.dir.join("data"),
            )
            .env("REGISTRY_AUTH_HTPASSWD_PATH", &self.htpasswd)
            .env("REGISTRY_LOG_LEVEL", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry is part of the rig");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(&self.address).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("registry on {} did not start", self.address);
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("registry is running").id()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The password the emulator hands out for ECR: what `docker login` sends.
pub fn ecr_token() -> String {
    let output = Command::new("aws")
        .args(["ecr", "get-login-password"])
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// The absolute path of `tool` on `PATH`.
pub fn which(tool: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("`{tool}` is not on PATH"))
}

/// `PATH` with `dir` in front: wrappers there shadow the real tools.
pub fn path_with(dir: &Path) -> std::ffi::OsString {
    let mut dirs = vec![dir.to_path_buf()];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).unwrap()
}

/// Stand-ins for external tools, first on `PATH`, that record every call
/// (`tool args...`, one line each): evidence of what a command actually ran,
/// independent of what it printed.
pub struct ToolLog {
    pub bin: PathBuf,
    pub log: PathBuf,
}

impl ToolLog {
    /// Each call recorded, then run by the real tool.
    pub fn new(name: &str, tools: &[&str]) -> ToolLog {
        ToolLog::with(name, tools, |tool| {
            format!("exec '{}' \"$@\"\n", which(tool).display())
        })
    }

    /// Each call only recorded: for tests that show nothing ran, on a
    /// machine that need not have the tools.
    pub fn fake(name: &str, tools: &[&str]) -> ToolLog {
        ToolLog::with(name, tools, |_| String::new())
    }

    /// Each call of `tool` recorded, then `first`, a bash snippet that may
    /// break something first (stop a registry, or answer itself and exit),
    /// then the real tool.
    pub fn before_real(name: &str, tool: &str, first: &str) -> ToolLog {
        ToolLog::with(name, &[tool], |tool| {
            format!("{first}\nexec '{}' \"$@\"\n", which(tool).display())
        })
    }

    /// Each call recorded, then `then(tool)`: a bash script's body.
    pub fn with(name: &str, tools: &[&str], then: impl Fn(&str) -> String) -> ToolLog {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique(name));
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let log = dir.join("calls.log");
        std::fs::write(&log, "").unwrap();
        for tool in tools {
            let script = format!(
                "#!/bin/bash\nprintf '%s\\n' \"{tool} $*\" >>'{}'\n{}",
                log.display(),
                then(tool)
            );
            write_executable(&bin.join(tool), &script);
        }
        ToolLog { bin, log }
    }

    pub fn path(&self) -> std::ffi::OsString {
        path_with(&self.bin)
    }

    /// Every recorded call, in order.
    pub fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// A fresh directory of the test's own (stand-in tools, keys), named after
/// `name`.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique(name));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A bash snippet for [`ToolLog::before_real`]: when `condition` holds, kill the
/// registry whose pid is in `$OUTAGE_REGISTRY_PID`, wait until its `port` is
/// closed, and note the call's last argument in `log`.
pub fn outage_when(condition: &str, port: u16, log: &Path) -> String {
    format!(
        r#"if [[ {condition} ]]; then
  kill -KILL "$OUTAGE_REGISTRY_PID" 2>/dev/null
  while (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null; do sleep 0.05; done
  echo "${{!#}}" >>'{}'
fi"#,
        log.display()
    )
}

pub fn write_executable(path: &Path, content: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Every image tag of a repository: cosign's signature tags
/// (`sha256-<hex>.sig`, which stage pushes add) are [`signature_tags`].
pub fn tags(registry: &str, repository: &str) -> Vec<String> {
    all_tags(registry, repository)
        .into_iter()
        .filter(|tag| !is_signature_tag(tag))
        .collect()
}

/// cosign 2's signature tags of a repository, one per signed digest.
pub fn signature_tags(registry: &str, repository: &str) -> Vec<String> {
    all_tags(registry, repository)
        .into_iter()
        .filter(|tag| is_signature_tag(tag))
        .collect()
}

fn is_signature_tag(tag: &str) -> bool {
    tag.starts_with("sha256-") && tag.ends_with(".sig")
}

/// `cosign verify` of `image@digest` with the public key `key`, as anyone
/// checking an image would run it: `Err` holds cosign's answer.
pub fn cosign_verify(image: &str, digest: &str, key: &str) -> Result<(), String> {
    let output = Command::new("cosign")
        .args([
            "verify",
            "--key",
            key,
            "--insecure-ignore-tlog=true",
            "--allow-http-registry",
        ])
        .arg(format!("{image}@{digest}"))
        .output()
        .expect("cosign is part of the rig");
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// Every tag of a repository, strictly: empty only when the registry answers
/// that the repository does not exist (404); any other failure (registry
/// down, login refused) panics, so "no tags" is never a false negative.
fn all_tags(registry: &str, repository: &str) -> Vec<String> {
    let output = Command::new("skopeo")
        .args(["list-tags", "--tls-verify=false", "--authfile"])
        .arg(authfile(registry))
        .arg(format!("docker://{registry}/{repository}"))
        .output()
        .unwrap();
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("404") || stderr.to_ascii_lowercase().contains("name unknown"),
            "cannot list tags of {registry}/{repository}: {stderr}"
        );
        return Vec::new();
    }
    let value: Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut tags: Vec<String> = value["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    tags.sort();
    tags
}

/// `sha256:` of the raw manifest bytes a reference serves: the digest a
/// client pulling by that digest would verify.
pub fn raw_digest(reference: &str) -> String {
    let manifest = raw_bytes(reference);
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&manifest).unwrap();
    }
    let sum = child.wait_with_output().unwrap();
    assert!(sum.status.success());
    format!(
        "sha256:{}",
        String::from_utf8_lossy(&sum.stdout)
            .split_whitespace()
            .next()
            .unwrap()
    )
}

/// `skopeo copy` of one reference to another, both in rig registries, as
/// an operator retagging by hand would.
pub fn skopeo_copy(from: &str, to: &str) {
    let output = Command::new("skopeo")
        .args([
            "copy",
            "--all",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--src-authfile",
        ])
        .arg(authfile(registry_of(from)))
        .arg("--dest-authfile")
        .arg(authfile(registry_of(to)))
        .arg(format!("docker://{from}"))
        .arg(format!("docker://{to}"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "skopeo copy {from} {to}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// An empty Docker config: proves each run logs in by itself. buildx is
/// found in the system plugin folder the rig installs it to.
pub fn fresh_docker_config() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("docker-config"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The architecture of a variant in the shipped layout.
pub fn arch_of(variant: &str) -> &'static str {
    if variant == "gpu" {
        "amd64"
    } else {
        "arm64"
    }
}

/// cosign 2's tag for the signatures of `digest`.
pub fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replace(':', "-"))
}

/// The promotion gate table's row for `variant` (the table's lines start
/// with the variant name; command lines start with `[variant]`).
pub fn gate_row(stderr: &str, variant: &str) -> String {
    stderr
        .lines()
        .find(|line| {
            line.split_whitespace().next() == Some(variant)
                && line.contains(&format!("-{variant},"))
        })
        .unwrap_or_else(|| panic!("no gate row for {variant} in:\n{stderr}"))
        .to_string()
}

/// The skopeo calls that wrote to a registry.
pub fn copies(log: &ToolLog) -> Vec<String> {
    log.calls()
        .into_iter()
        .filter(|call| call.starts_with("skopeo copy"))
        .collect()
}

/// Stage and prod as ECR registries of two accounts, for dry runs.
pub fn fake_ecr_registries(command: &mut Command) -> &mut Command {
    command
        .env(
            "ECR_REGISTRY_STAGE",
            "111111111111.dkr.ecr.us-east-1.amazonaws.com",
        )
        .env(
            "ECR_REGISTRY_PROD",
            "222222222222.dkr.ecr.us-east-1.amazonaws.com",
        )
}

pub fn sha8(sha: &str) -> &str {
    &sha[..8]
}

/// `build --push` to stage in the push-to-main context, as stage.yml does
/// on a push: `latest-*` and `<sha8>-*` with the revision label. Of `sha`
/// (`--sha`), or of HEAD; `extra` flags after.
pub fn stage_push(fixture: &Fixture, sha: Option<&str>, repo: &str, extra: &[&str]) {
    let mut command = fixture.xtask();
    command.args(["build", "--push", "--env", "stage", "--context", "push"]);
    if let Some(sha) = sha {
        command.args(["--sha", sha]);
    }
    let output = run(command.args(["--repository", repo]).args(extra));
    assert_eq!(
        output.status.code(),
        Some(0),
        "staging {} failed",
        sha.map_or("HEAD", sha8)
    );
}
