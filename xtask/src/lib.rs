//! The xtask's modules. The binary (`main.rs`) parses and dispatches to
//! them; the rig's workflow tests (`tests/workflows.rs`) use the rehearsal's
//! pieces (`tasks::rehearse`) directly, so `cargo xtask rehearse --workflows`
//! and those tests run act one way.

pub mod arch;
pub mod aws;
pub mod cli;
pub mod context;
pub mod cosign;
pub mod deadline;
pub mod disk;
pub mod docker;
pub mod error;
pub mod exec;
pub mod git;
pub mod github;
pub mod plan;
pub mod skopeo;
pub mod step;
pub mod tags;
pub mod target;
pub mod tasks;
