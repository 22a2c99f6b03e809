//! What batch-probe knows, as plain data: the facts baked in when the image
//! was built, what it observes where it runs, the `check` decision over both
//! and the JSON report. Nothing here reads a file or the environment (that is
//! `observe`), so all of it is unit-tested.

use crate::json::{Object, Value};

/// The variant whose image must see a GPU.
pub const GPU_VARIANT: &str = "gpu";

/// The environment variable that lets a gpu image pass `check` without a GPU.
pub const ALLOW_NO_GPU: &str = "BATCH_PROBE_ALLOW_NO_GPU";

/// Facts fixed when the binary was compiled.
#[derive(Clone, Debug, PartialEq)]
pub struct Build {
    /// The image variant (`gpu`, `cpu`, ...): the Dockerfile's `VARIANT`.
    pub variant: Option<String>,
    /// The architecture the image was built for, as BuildKit names it in
    /// `TARGETARCH` (`amd64`, `arm64`).
    pub expected_arch: Option<String>,
    /// The full commit SHA the image was built from.
    pub revision: Option<String>,
    /// The image version (a release tag or a short SHA).
    pub version: Option<String>,
    /// The architecture the compiler produced code for, as Rust names it
    /// (`x86_64`, `aarch64`).
    pub target_arch: String,
    /// The operating system the compiler targeted (`linux`).
    pub target_os: String,
}

/// What can be seen of NVIDIA GPUs from inside the container.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Gpu {
    /// Names of the `/dev/nvidia*` entries, sorted.
    pub device_nodes: Vec<String>,
    /// `NVIDIA_VISIBLE_DEVICES`, if set.
    pub visible_devices: Option<String>,
    /// The first line of `/proc/driver/nvidia/version`, if readable.
    pub driver: Option<String>,
}

impl Gpu {
    /// A GPU is visible when the NVIDIA control device and at least one GPU
    /// device (`nvidia0`, `nvidia1`, ...) exist. The environment variable
    /// alone proves nothing: CUDA base images set `NVIDIA_VISIBLE_DEVICES=all`
    /// themselves, so it is set in every container of such an image, GPU or
    /// not. Neither does the driver file, which shows the host's driver even
    /// when no GPU was given to this container.
    pub fn visible(&self) -> bool {
        let control = self.device_nodes.iter().any(|n| n == "nvidiactl");
        let device = self.device_nodes.iter().any(|n| is_gpu_device(n));
        control && device
    }

    /// Whether the container runtime was asked for GPUs: the variable is set
    /// and is not one of the values that mean none.
    pub fn requested(&self) -> bool {
        match self.visible_devices.as_deref().map(str::trim) {
            None | Some("") | Some("void") | Some("none") => false,
            Some(_) => true,
        }
    }

    /// The GPU device nodes, with their `/dev/` prefix.
    pub fn devices(&self) -> Vec<String> {
        self.device_nodes
            .iter()
            .filter(|n| is_gpu_device(n))
            .map(|n| format!("/dev/{n}"))
            .collect()
    }

    /// Why no GPU is visible, in one clause, for the failure message.
    fn diagnosis(&self) -> String {
        let nodes = if self.device_nodes.iter().any(|n| n == "nvidiactl") {
            "/dev/nvidiactl but no /dev/nvidia<N>"
        } else {
            "no /dev/nvidiactl or /dev/nvidia<N>"
        };
        let request = match &self.visible_devices {
            None => "NVIDIA_VISIBLE_DEVICES unset".to_string(),
            Some(v) if self.requested() => format!(
                "NVIDIA_VISIBLE_DEVICES={v} (set, but no device reached the container: is the NVIDIA container runtime in use?)"
            ),
            Some(v) => format!("NVIDIA_VISIBLE_DEVICES={v:?} asks for no GPU"),
        };
        let driver = match &self.driver {
            Some(_) => "the host has an NVIDIA driver",
            None => "no NVIDIA driver (/proc/driver/nvidia/version)",
        };
        format!("{nodes}; {request}; {driver}")
    }
}

/// `nvidia0`, `nvidia1`, ...: one per GPU, unlike `nvidiactl` or `nvidia-uvm`.
fn is_gpu_device(name: &str) -> bool {
    match name.strip_prefix("nvidia") {
        Some(n) => !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

/// Everything `info` reports and `check` decides on.
#[derive(Clone, Debug, PartialEq)]
pub struct Observations {
    pub build: Build,
    /// The machine the kernel reports (`uname -m`), if it could be read.
    pub machine: Option<String>,
    pub gpu: Gpu,
    /// `BATCH_PROBE_ALLOW_NO_GPU=1`.
    pub allow_no_gpu: bool,
}

/// The outcome of `check`.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Passed: a one-line summary, and warnings for stderr.
    Pass {
        summary: String,
        warnings: Vec<String>,
    },
    /// Failed, with a one-line reason.
    Fail(String),
}

/// The architecture as OCI platforms and BuildKit name it (`amd64`, `arm64`),
/// from either a Rust `target_arch` or a kernel's `uname -m`. Anything else
/// is kept as it is.
pub fn oci_arch(name: &str) -> &str {
    match name {
        "x86_64" | "amd64" => "amd64",
        "aarch64" | "arm64" | "aarch64_be" => "arm64",
        other => other,
    }
}

/// Decide `check`. Fails when the binary was compiled for another
/// architecture than the image was built for, when it runs on a machine of
/// another architecture, or when a gpu image sees no GPU (unless allowed).
pub fn check(obs: &Observations) -> Verdict {
    let build = &obs.build;
    let arch = oci_arch(&build.target_arch);
    if let Some(expected) = &build.expected_arch {
        if oci_arch(expected) != arch {
            return Verdict::Fail(format!(
                "image built for {}/{} but its binary was compiled for {}: the build stage compiled for the wrong target",
                build.target_os, expected, build.target_arch
            ));
        }
    }
    if let Some(machine) = &obs.machine {
        if oci_arch(machine) != arch {
            return Verdict::Fail(format!(
                "binary compiled for {} but running on a {machine} machine: this image is for another architecture",
                build.target_arch
            ));
        }
    }

    let mut warnings = Vec::new();
    let variant = match &build.variant {
        Some(v) => v.as_str(),
        None => {
            warnings.push(
                "variant unknown: BATCH_PROBE_VARIANT was not set when this binary was built (not built by a Dockerfile-<variant>?)"
                    .to_string(),
            );
            "unknown"
        }
    };
    let gpu = if obs.gpu.visible() {
        format!("GPU visible ({})", obs.gpu.devices().join(", "))
    } else {
        "no GPU".to_string()
    };
    if variant == GPU_VARIANT && !obs.gpu.visible() {
        let problem = format!("gpu image but no GPU is visible: {}", obs.gpu.diagnosis());
        if !obs.allow_no_gpu {
            return Verdict::Fail(format!(
                "{problem}; run it on a GPU instance, or set {ALLOW_NO_GPU}=1 to test it without one"
            ));
        }
        warnings.push(format!(
            "{problem}; passing anyway because {ALLOW_NO_GPU}=1"
        ));
    }

    let revision = build.revision.as_deref().unwrap_or("unknown");
    Verdict::Pass {
        summary: format!(
            "{variant} image for {}/{arch}, revision {revision}, {gpu}",
            build.target_os
        ),
        warnings,
    }
}

/// The one-line JSON object that `info` (and `check`) print.
pub fn report(obs: &Observations) -> String {
    let build = &obs.build;
    let arch = oci_arch(&build.target_arch);
    let gpu = Object::new()
        .field("visible", Value::bool(obs.gpu.visible()))
        .field("requested", Value::bool(obs.gpu.requested()))
        .field("devices", Value::strings(&obs.gpu.devices()))
        .field(
            "nvidia_visible_devices",
            Value::opt(obs.gpu.visible_devices.as_deref()),
        )
        .field("driver", Value::opt(obs.gpu.driver.as_deref()));
    Object::new()
        .field("variant", Value::opt(build.variant.as_deref()))
        .field("arch", Value::str(arch))
        .field(
            "platform",
            Value::str(&format!("{}/{arch}", build.target_os)),
        )
        .field("expected_arch", Value::opt(build.expected_arch.as_deref()))
        .field("target_arch", Value::str(&build.target_arch))
        .field("machine", Value::opt(obs.machine.as_deref()))
        .field("revision", Value::opt(build.revision.as_deref()))
        .field("version", Value::opt(build.version.as_deref()))
        .field("probe_version", Value::str(env!("CARGO_PKG_VERSION")))
        .field("gpu", gpu.into())
        .render()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    fn observations(variant: &str, target_arch: &str) -> Observations {
        Observations {
            build: Build {
                variant: Some(variant.to_string()),
                expected_arch: Some(oci_arch(target_arch).to_string()),
                revision: Some(SHA.to_string()),
                version: Some("v1.2.3".to_string()),
                target_arch: target_arch.to_string(),
                target_os: "linux".to_string(),
            },
            machine: Some(target_arch.to_string()),
            gpu: Gpu::default(),
            allow_no_gpu: false,
        }
    }

    fn with_gpu(mut obs: Observations) -> Observations {
        obs.gpu = Gpu {
            device_nodes: vec!["nvidia-uvm".into(), "nvidia0".into(), "nvidiactl".into()],
            visible_devices: Some("GPU-5a1b".into()),
            driver: Some("NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05".into()),
        };
        obs
    }

    fn reason(verdict: Verdict) -> String {
        match verdict {
            Verdict::Fail(reason) => reason,
            Verdict::Pass { summary, .. } => panic!("expected a failure, got: ok: {summary}"),
        }
    }

    fn passed(verdict: Verdict) -> (String, Vec<String>) {
        match verdict {
            Verdict::Pass { summary, warnings } => (summary, warnings),
            Verdict::Fail(reason) => panic!("expected a pass, got: {reason}"),
        }
    }

    #[test]
    fn cpu_image_on_its_own_architecture_passes() {
        let (summary, warnings) = passed(check(&observations("cpu", "aarch64")));
        assert_eq!(
            summary,
            format!("cpu image for linux/arm64, revision {SHA}, no GPU")
        );
        assert!(warnings.is_empty());
    }

    #[test]
    fn gpu_image_with_a_gpu_passes() {
        let (summary, warnings) = passed(check(&with_gpu(observations("gpu", "x86_64"))));
        assert!(summary.ends_with("GPU visible (/dev/nvidia0)"), "{summary}");
        assert!(warnings.is_empty());
    }

    #[test]
    fn gpu_image_without_a_gpu_fails_with_the_way_out() {
        let mut obs = observations("gpu", "x86_64");
        obs.gpu.visible_devices = Some("all".into());
        let reason = reason(check(&obs));
        assert!(
            reason.starts_with("gpu image but no GPU is visible"),
            "{reason}"
        );
        assert!(
            reason.contains("NVIDIA_VISIBLE_DEVICES=all (set, but no device"),
            "{reason}"
        );
        assert!(reason.contains("BATCH_PROBE_ALLOW_NO_GPU=1"), "{reason}");
        assert!(!reason.contains('\n'));
    }

    #[test]
    fn allowing_no_gpu_turns_the_failure_into_a_warning() {
        let mut obs = observations("gpu", "x86_64");
        obs.allow_no_gpu = true;
        let (summary, warnings) = passed(check(&obs));
        assert!(
            summary.starts_with("gpu image for linux/amd64"),
            "{summary}"
        );
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("passing anyway"), "{}", warnings[0]);
    }

    #[test]
    fn allowing_no_gpu_does_not_excuse_a_wrong_architecture() {
        let mut obs = observations("gpu", "x86_64");
        obs.allow_no_gpu = true;
        obs.build.expected_arch = Some("arm64".into());
        assert!(reason(check(&obs)).contains("compiled for the wrong target"));
    }

    #[test]
    fn only_control_plus_a_gpu_node_counts_as_visible() {
        let gpu = |nodes: &[&str]| Gpu {
            device_nodes: nodes.iter().map(|n| n.to_string()).collect(),
            ..Gpu::default()
        };
        assert!(gpu(&["nvidia3", "nvidiactl"]).visible());
        assert!(!gpu(&["nvidiactl"]).visible());
        assert!(!gpu(&["nvidia0"]).visible());
        assert!(!gpu(&["nvidiactl", "nvidia-uvm", "nvidia-modeset", "nvidia"]).visible());
        assert_eq!(
            gpu(&["nvidia1", "nvidia12", "nvidiactl"]).devices(),
            ["/dev/nvidia1", "/dev/nvidia12"]
        );
    }

    #[test]
    fn the_variable_alone_is_not_a_gpu() {
        let mut obs = observations("gpu", "x86_64");
        obs.gpu.visible_devices = Some("all".into());
        obs.gpu.driver = Some("NVRM version: 535".into());
        assert!(obs.gpu.requested());
        assert!(!obs.gpu.visible());
        assert!(matches!(check(&obs), Verdict::Fail(_)));
    }

    #[test]
    fn void_none_and_empty_request_no_gpu() {
        for value in ["void", "none", "", " "] {
            let gpu = Gpu {
                visible_devices: Some(value.into()),
                ..Gpu::default()
            };
            assert!(!gpu.requested(), "{value:?}");
        }
        for value in ["all", "0", "0,1", "GPU-5a1b"] {
            let gpu = Gpu {
                visible_devices: Some(value.into()),
                ..Gpu::default()
            };
            assert!(gpu.requested(), "{value:?}");
        }
        assert!(!Gpu::default().requested());
        let mut obs = observations("gpu", "x86_64");
        obs.gpu.visible_devices = Some("void".into());
        assert!(reason(check(&obs)).contains(r#"NVIDIA_VISIBLE_DEVICES="void" asks for no GPU"#));
    }

    #[test]
    fn a_cpu_image_does_not_need_a_gpu() {
        let mut obs = observations("cpu", "x86_64");
        obs.gpu.visible_devices = Some("void".into());
        passed(check(&obs));
    }

    #[test]
    fn binary_compiled_for_another_architecture_than_the_image_fails() {
        let mut obs = observations("cpu", "x86_64");
        obs.build.expected_arch = Some("arm64".into());
        let reason = reason(check(&obs));
        assert_eq!(
            reason,
            "image built for linux/arm64 but its binary was compiled for x86_64: the build stage compiled for the wrong target"
        );
    }

    #[test]
    fn running_on_another_machine_fails() {
        let mut obs = observations("cpu", "aarch64");
        obs.machine = Some("x86_64".into());
        assert_eq!(
            reason(check(&obs)),
            "binary compiled for aarch64 but running on a x86_64 machine: this image is for another architecture"
        );
    }

    #[test]
    fn unknown_facts_are_not_failures() {
        let mut obs = observations("cpu", "x86_64");
        obs.build.variant = None;
        obs.build.expected_arch = None;
        obs.build.revision = None;
        obs.machine = None;
        let (summary, warnings) = passed(check(&obs));
        assert_eq!(
            summary,
            "unknown image for linux/amd64, revision unknown, no GPU"
        );
        assert!(warnings[0].starts_with("variant unknown"), "{warnings:?}");
    }

    #[test]
    fn architecture_names_are_normalized() {
        assert_eq!(oci_arch("x86_64"), "amd64");
        assert_eq!(oci_arch("amd64"), "amd64");
        assert_eq!(oci_arch("aarch64"), "arm64");
        assert_eq!(oci_arch("arm64"), "arm64");
        assert_eq!(oci_arch("riscv64"), "riscv64");
        let mut obs = observations("cpu", "aarch64");
        obs.build.expected_arch = Some("arm64".into());
        obs.machine = Some("aarch64".into());
        passed(check(&obs));
    }

    #[test]
    fn report_is_one_json_line_with_every_fact() {
        let obs = with_gpu(observations("gpu", "x86_64"));
        let json = report(&obs);
        assert!(!json.contains('\n'));
        let expected = format!(
            concat!(
                r#"{{"variant":"gpu","arch":"amd64","platform":"linux/amd64","expected_arch":"amd64","#,
                r#""target_arch":"x86_64","machine":"x86_64","revision":"{sha}","version":"v1.2.3","#,
                r#""probe_version":"{probe}","gpu":{{"visible":true,"requested":true,"#,
                r#""devices":["/dev/nvidia0"],"nvidia_visible_devices":"GPU-5a1b","#,
                r#""driver":"NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05"}}}}"#
            ),
            sha = SHA,
            probe = env!("CARGO_PKG_VERSION"),
        );
        assert_eq!(json, expected);
    }

    #[test]
    fn report_shows_unknowns_as_null() {
        let mut obs = observations("cpu", "aarch64");
        obs.build.variant = None;
        obs.build.revision = None;
        obs.build.version = None;
        obs.build.expected_arch = None;
        obs.machine = None;
        let json = report(&obs);
        assert!(
            json.starts_with(
                r#"{"variant":null,"arch":"arm64","platform":"linux/arm64","expected_arch":null,"#
            ),
            "{json}"
        );
        assert!(
            json.contains(r#""machine":null,"revision":null,"version":null"#),
            "{json}"
        );
        assert!(json.ends_with(r#""gpu":{"visible":false,"requested":false,"devices":[],"nvidia_visible_devices":null,"driver":null}}"#), "{json}");
    }
}
