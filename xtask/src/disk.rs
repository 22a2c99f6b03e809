//! Free disk space where the builder keeps its data, reported before a build
//! in CI: a multi-GB image that fills the runner's disk fails twenty minutes
//! in with `no space left on device`; this says so at minute zero.

use anyhow::{Context, Result};

use crate::step::Step;

/// About what the GPU image needs on the builder's disk (its layers as the
/// build makes them, about 16 GB); `--min-free-gb` changes it.
pub const DEFAULT_MIN_FREE_GB: u64 = 16;

/// A petabyte: far above any runner's disk, and far below where the byte
/// count would overflow.
pub const MAX_MIN_FREE_GB: u64 = 1_000_000;

/// `df` in POSIX format, in KiB, for the file system holding `path`.
pub fn free_space(path: &str) -> Step {
    Step::new("df", ["-P", "-k", path])
}

/// Bytes available to unprivileged writers, from `df -P -k` output:
/// a header line, then `filesystem blocks used available capacity mount`.
pub fn parse_available(text: &str) -> Result<u64> {
    let line = text
        .lines()
        .nth(1)
        .context("df printed no line for the file system")?;
    let available: u64 = line
        .split_whitespace()
        .nth(3)
        .and_then(|field| field.parse().ok())
        .with_context(|| format!("df printed no available size: {line:?}"))?;
    Ok(available * 1024)
}

/// The report line, and whether it is a warning: below `min_free_gb`.
pub fn report(data_root: &str, available: u64, min_free_gb: u64) -> (String, bool) {
    // `12.3 GB`: decimal, as disk sizes are sold and as `df -H` prints them.
    let free = format!("{:.1} GB", available as f64 / 1e9);
    let low = available < min_free_gb * 1_000_000_000;
    let line = if low {
        format!(
            "only {free} free in {data_root}, where the builder keeps its data; the GPU image needs about {min_free_gb} GB: \
             free the runner's disk before building (the build jobs' \"Free disk space\" step) or the build will fail with \"no space left on device\""
        )
    } else {
        format!(
            "disk: {free} free in {data_root}, where the builder keeps its data (needed: about {min_free_gb} GB)"
        )
    };
    (line, low)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_df_posix_output() {
        let text = "Filesystem     1024-blocks     Used Available Capacity Mounted on\n\
                    /dev/root         75085112 60123456  14961656      81% /\n";
        assert_eq!(parse_available(text).unwrap(), 14_961_656 * 1024);
        assert!(parse_available("Filesystem 1024-blocks Used Available\n").is_err());
        assert!(parse_available("header\n/dev/x 1 2 lots 5% /\n").is_err());
    }

    #[test]
    fn warns_below_the_threshold_only() {
        let (line, low) = report("/var/lib/docker", 15_320_000_000, 16);
        assert!(low);
        assert_eq!(
            line,
            "only 15.3 GB free in /var/lib/docker, where the builder keeps its data; the GPU image needs about 16 GB: \
             free the runner's disk before building (the build jobs' \"Free disk space\" step) or the build will fail with \"no space left on device\""
        );
        let (line, low) = report("/var/lib/docker", 16_000_000_000, 16);
        assert!(!low);
        assert_eq!(
            line,
            "disk: 16.0 GB free in /var/lib/docker, where the builder keeps its data (needed: about 16 GB)"
        );
    }
}
