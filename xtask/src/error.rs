//! The two kinds of failure and their exit codes: bad input (2) and a failed
//! external step (1).
//!
//! Bad input is raised as [`Usage`] before anything runs; everything else that
//! goes wrong is a step that failed.

use std::fmt;

/// Bad input: a malformed file, a missing flag, an invalid tag. Exit code 2.
#[derive(Debug)]
pub struct Usage(pub String);

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// 2 for bad input anywhere in the chain, 1 for anything else.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.chain().any(|cause| cause.is::<Usage>()) {
        2
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn usage_errors_exit_2_even_with_context() {
        let err: anyhow::Result<()> = Err(anyhow::Error::new(Usage("bad".into())));
        let err = err.context("while planning").unwrap_err();
        assert_eq!(exit_code(&err), 2);
        assert_eq!(exit_code(&anyhow::anyhow!("docker failed")), 1);
    }
}
