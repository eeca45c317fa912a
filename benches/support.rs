//! Shared by the benchmarks: run the real binary and read its peak memory.
#![allow(dead_code)] // each bench uses part of this

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// A finished process: whether it succeeded, its output, wall time, and its
/// own peak resident set size from wait4(2).
pub struct Finished {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
    pub seconds: f64,
    pub peak_rss_kb: i64,
    /// CPU time the process used, user and system, in seconds.
    pub cpu_seconds: f64,
}

/// Runs `cocreate ARGS` with `env` and measures it.
pub fn run(dir: &std::path::Path, env: &[(&str, String)], args: &[&str]) -> Finished {
    let start = Instant::now();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cocreate"));
    cmd.current_dir(dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("start cocreate");
    reap(child, start)
}

/// Reads the child's pipes to the end, then reaps it with wait4 for its
/// rusage (ru_maxrss is in kilobytes on Linux).
pub fn reap(mut child: Child, start: Instant) -> Finished {
    let pid = child.id() as i32;
    let mut err_pipe = child.stderr.take();
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(p) = err_pipe.as_mut() {
            let _ = p.read_to_string(&mut s);
        }
        s
    });
    let mut stdout = String::new();
    if let Some(mut p) = child.stdout.take() {
        let _ = p.read_to_string(&mut stdout);
    }
    let stderr = err_thread.join().unwrap();
    let mut status = 0;
    // SAFETY: plain FFI with pointers to locals; pid is our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4 failed");
    Finished {
        ok: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        stdout,
        stderr,
        seconds: start.elapsed().as_secs_f64(),
        peak_rss_kb: usage.ru_maxrss,
        cpu_seconds: seconds(usage.ru_utime) + seconds(usage.ru_stime),
    }
}

fn seconds(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}
