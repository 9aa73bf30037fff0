//! The Python OpenTelemetry SDK, installed once into `<target>/e2e-venv`,
//! and a runner for the scripts in `tests/python/`.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// Pinned PyPI packages (verified to install together on Python 3.11).
pub const REQUIREMENTS: &[&str] = &[
    "opentelemetry-sdk==1.45.2",
    "opentelemetry-exporter-otlp-proto-grpc==1.45.2",
    "opentelemetry-exporter-otlp-proto-http==1.45.2",
];

/// How long a Python script may run.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// The venv's `python`, creating the venv on first use. Guarded by a
/// `OnceLock` within the process and an `flock` across processes, and
/// reused while its marker file lists the same requirements.
pub fn python_env() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let (target_dir, _) = crate::target_dirs();
        let venv = target_dir.join("e2e-venv");
        let python = venv.join("bin").join("python");
        let marker = venv.join(".skein-requirements");
        let wanted = REQUIREMENTS.join("\n");

        let lock =
            File::create(target_dir.join("e2e-venv.lock")).expect("creating the venv lock file");
        // SAFETY: flock(2) on a file descriptor we own for the whole call.
        let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(
            rc,
            0,
            "flock on the venv lock: {}",
            std::io::Error::last_os_error()
        );

        if std::fs::read_to_string(&marker).ok().as_deref() != Some(wanted.as_str())
            || !python.exists()
        {
            let base = std::env::var("SKEIN_E2E_PYTHON").unwrap_or_else(|_| "python3".to_string());
            run(
                Command::new(&base)
                    .args(["-m", "venv", "--clear"])
                    .arg(&venv),
                "creating the venv",
            );
            run(
                Command::new(&python)
                    .args([
                        "-m",
                        "pip",
                        "install",
                        "--quiet",
                        "--disable-pip-version-check",
                    ])
                    .args(REQUIREMENTS),
                "pip install of the OpenTelemetry SDK",
            );
            std::fs::write(&marker, &wanted).expect("writing the venv marker");
        }
        drop(lock); // closing the descriptor releases the flock
        python
    })
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run `tests/python/<script>` with `args` in the venv and parse the JSON
/// it prints on stdout. Its stderr goes to the test's stderr.
pub fn run_script(script: &str, args: &[&str]) -> serde_json::Value {
    let python = python_env();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(script);
    let child = Command::new(python)
        .arg(&path)
        .args(args)
        .env("PYTHONUNBUFFERED", "1")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {}: {e}", path.display()));
    let pid = child.id();
    // Wait in a thread that also drains both pipes, so a chatty script
    // cannot block on a full pipe.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(SCRIPT_TIMEOUT) {
        Ok(out) => out.expect("collecting the script's output"),
        Err(_) => {
            // SAFETY: kill(2) on our own child, not reaped while the waiting
            // thread is still blocked in wait.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("{script} did not finish within {SCRIPT_TIMEOUT:?}");
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in stderr.lines() {
        eprintln!("[{script} pid {pid}] {line}");
    }
    assert!(
        out.status.success(),
        "{script} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{script} printed no JSON ({e}):\n{stdout}"))
}
