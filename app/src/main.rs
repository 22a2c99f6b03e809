//! batch-probe: tells what a batch image was built for and whether it runs
//! where it should.
//!
//! `batch-probe` (or `batch-probe info`) prints one JSON object: the image's
//! variant, architecture, revision and version, baked in when the image was
//! built, and what the container sees of GPUs. `batch-probe check` prints
//! the same object, then `ok: ...`, or fails with a one-line reason when
//! the binary was built for another architecture than the image or the
//! machine, or when a gpu image sees no GPU.
//!
//! `BATCH_PROBE_ALLOW_NO_GPU=1` makes `check` warn instead of fail on a gpu
//! image without a GPU: CI builds and runs the gpu image on machines that
//! have none, and must still check everything else.

mod json;
mod observe;
mod probe;

use std::process::ExitCode;

use probe::Verdict;

const USAGE: &str = "\
usage: batch-probe [info | check | help]
  info   print the image's variant, architecture, revision, version and GPUs as JSON (the default)
  check  print the same, then fail unless the architecture matches and a gpu image sees a GPU
         (BATCH_PROBE_ALLOW_NO_GPU=1: only warn when a gpu image sees no GPU)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        [] | ["info"] => {
            println!("{}", probe::report(&observe::observe()));
            ExitCode::SUCCESS
        }
        ["check"] => check(),
        ["help"] | ["-h"] | ["--help"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("batch-probe: unknown arguments {args:?}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn check() -> ExitCode {
    let observations = observe::observe();
    println!("{}", probe::report(&observations));
    match probe::check(&observations) {
        Verdict::Pass { summary, warnings } => {
            for warning in warnings {
                eprintln!("warning: {warning}");
            }
            println!("ok: {summary}");
            ExitCode::SUCCESS
        }
        Verdict::Fail(reason) => {
            eprintln!("error: {reason}");
            ExitCode::FAILURE
        }
    }
}
