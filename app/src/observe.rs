//! Gather the observations: build facts compiled in by the image build, and
//! what the running container can see. The thin IO layer over `probe`.

use std::path::Path;

use crate::probe::{Build, Gpu, Observations, ALLOW_NO_GPU};

/// A value baked in at compile time; unset and empty are the same.
fn baked(value: Option<&'static str>) -> Option<String> {
    value.filter(|v| !v.is_empty()).map(str::to_string)
}

/// The facts compiled into this binary. The Dockerfiles set these variables
/// from their build arguments (`VARIANT`, `REVISION`, `VERSION`) and from
/// BuildKit's `TARGETARCH` for the `cargo build` step.
pub fn build() -> Build {
    Build {
        variant: baked(option_env!("BATCH_PROBE_VARIANT")),
        expected_arch: baked(option_env!("BATCH_PROBE_ARCH")),
        revision: baked(option_env!("BATCH_PROBE_REVISION")),
        version: baked(option_env!("BATCH_PROBE_VERSION")),
        // Constants of the target the compiler built for, not of the machine
        // this runs on: that one is `machine()`.
        target_arch: std::env::consts::ARCH.to_string(),
        target_os: std::env::consts::OS.to_string(),
    }
}

/// Everything, from this process's environment and the real `/dev` and
/// `/proc`.
pub fn observe() -> Observations {
    Observations {
        build: build(),
        machine: machine(),
        gpu: gpu(
            Path::new("/dev"),
            Path::new("/proc/driver/nvidia/version"),
            std::env::var("NVIDIA_VISIBLE_DEVICES").ok(),
        ),
        allow_no_gpu: std::env::var(ALLOW_NO_GPU).map_or(false, |v| v == "1"),
    }
}

/// What the NVIDIA container runtime leaves in a container: device nodes in
/// `dev`, the host driver's version in `driver_file`, the variable.
pub fn gpu(dev: &Path, driver_file: &Path, visible_devices: Option<String>) -> Gpu {
    let mut device_nodes: Vec<String> = std::fs::read_dir(dev)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok())
                .filter_map(|entry| entry.file_name().into_string().ok())
                .filter(|name| name.starts_with("nvidia"))
                .collect()
        })
        .unwrap_or_default();
    device_nodes.sort();
    let driver = std::fs::read(driver_file).ok().and_then(|bytes| {
        let text = String::from_utf8_lossy(&bytes);
        let first = text.lines().next().unwrap_or("").trim().to_string();
        Some(first).filter(|line| !line.is_empty())
    });
    Gpu {
        device_nodes,
        visible_devices,
        driver,
    }
}

/// The machine the kernel reports, as `uname -m` prints it. Read with
/// uname(2) rather than by running `uname`: the runtime image may have no
/// coreutils.
#[cfg(target_os = "linux")]
pub fn machine() -> Option<String> {
    // struct utsname on Linux, in glibc and musl alike: six char arrays of
    // 65 bytes (sysname, nodename, release, version, machine, domainname).
    const FIELD: usize = 65;
    extern "C" {
        fn uname(buf: *mut u8) -> i32;
    }
    let mut buf = [0u8; FIELD * 6];
    // SAFETY: `buf` is exactly as large as struct utsname, which uname(2)
    // fills and never writes past; it is plain bytes with no invariants.
    if unsafe { uname(buf.as_mut_ptr()) } != 0 {
        return None;
    }
    let field = &buf[FIELD * 4..FIELD * 5];
    let end = field.iter().position(|&b| b == 0).unwrap_or(FIELD);
    std::str::from_utf8(&field[..end])
        .ok()
        .filter(|m| !m.is_empty())
        .map(str::to_string)
}

#[cfg(not(target_os = "linux"))]
pub fn machine() -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::PathBuf;

    /// A fresh, empty directory under the system temp dir.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("batch-probe-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn finds_nvidia_nodes_and_the_driver_line() {
        let dir = scratch("gpu");
        let dev = dir.join("dev");
        fs::create_dir(&dev).unwrap();
        for name in ["nvidiactl", "nvidia0", "nvidia-uvm", "null", "tty"] {
            fs::write(dev.join(name), "").unwrap();
        }
        let driver = dir.join("version");
        fs::write(
            &driver,
            "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05\nGCC version: 12\n",
        )
        .unwrap();
        let gpu = gpu(&dev, &driver, Some("all".into()));
        assert_eq!(gpu.device_nodes, ["nvidia-uvm", "nvidia0", "nvidiactl"]);
        assert_eq!(
            gpu.driver.as_deref(),
            Some("NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05")
        );
        assert!(gpu.visible());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn missing_dev_and_driver_mean_no_gpu() {
        let dir = scratch("none");
        let gpu = gpu(&dir.join("no-dev"), &dir.join("no-version"), None);
        assert_eq!(gpu, Gpu::default());
        assert!(!gpu.visible());
        fs::remove_dir_all(dir).unwrap();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn machine_matches_the_compiled_target_here() {
        // Tests run natively, so the kernel and the compiler agree.
        let machine = machine().expect("uname(2) works on Linux");
        assert_eq!(
            crate::probe::oci_arch(&machine),
            crate::probe::oci_arch(std::env::consts::ARCH)
        );
    }
}
