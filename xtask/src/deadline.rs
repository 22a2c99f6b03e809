//! A running tool's output, read to its end, or the tool stopped at a
//! deadline: skopeo and `docker buildx imagetools` have none of their own, so
//! a registry that accepts the connection and never answers would hold them
//! until the job's timeout.

use std::io::Read;
use std::process::{Child, ExitStatus};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How a tool ended.
pub enum Ended {
    /// It exited, with what it wrote.
    Exited {
        status: ExitStatus,
        stdout: String,
        stderr: String,
    },
    /// It was still running at the deadline, and was killed: `stderr` is
    /// what it had written by then.
    Stopped { stderr: String },
}

/// Wait for `child` (stdout and stderr piped) to exit, reading both streams,
/// but kill it at `deadline`. A tool that closes its streams and lives on is
/// stopped too.
pub fn read_to_end(mut child: Child, deadline: Option<Instant>) -> std::io::Result<Ended> {
    // Each stream read on a thread of its own, so that a full pipe never
    // blocks the tool; they send what they read as it comes (an empty chunk
    // at the end), so a stopped tool's last words are at hand even where a
    // child of it keeps the pipe open.
    let (sender, chunks) = mpsc::channel::<(usize, Vec<u8>)>();
    let pipes: [Box<dyn Read + Send>; 2] = [
        Box::new(child.stdout.take().expect("stdout piped")),
        Box::new(child.stderr.take().expect("stderr piped")),
    ];
    for (which, mut pipe) in pipes.into_iter().enumerate() {
        let sender = sender.clone();
        std::thread::spawn(move || {
            let mut buffer = [0; 64 * 1024];
            loop {
                let read = pipe.read(&mut buffer).unwrap_or(0);
                if sender.send((which, buffer[..read].to_vec())).is_err() || read == 0 {
                    break;
                }
            }
        });
    }
    drop(sender);
    let mut output = [Vec::new(), Vec::new()];
    let mut open = 2;
    while open > 0 {
        let received = match deadline {
            Some(at) => chunks.recv_timeout(at.saturating_duration_since(Instant::now())),
            None => chunks.recv().map_err(mpsc::RecvTimeoutError::from),
        };
        let Ok((which, chunk)) = received else {
            break;
        };
        open -= usize::from(chunk.is_empty());
        output[which].extend(chunk);
    }
    let status = match (open, deadline) {
        (0, None) => Some(child.wait()?),
        (0, Some(at)) => exit_by(&mut child, at)?,
        _ => None,
    };
    let [stdout, stderr] = output.map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        return Ok(Ended::Stopped { stderr });
    };
    Ok(Ended::Exited {
        status,
        stdout,
        stderr,
    })
}

/// `child`'s exit status once it exits, or `None` when it is still running
/// at `deadline`.
fn exit_by(child: &mut Child, deadline: Instant) -> std::io::Result<Option<ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
