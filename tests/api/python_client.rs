//! The Python client (`clients/python`) against the real server: its pytest suite
//! (`clients/python/tests`) runs against a `diplog serve` started here with the founding
//! scenario imported, its URL in `DIPLOG_TEST_SERVER`. The suite cuts its own connections
//! mid-read and mid-subscription (a TCP proxy in `conftest.py`), and starts servers of its own
//! on the same database (`DIPLOG_TEST_DIPLOG`, `DIPLOG_TEST_DATABASE_URL`): one it kills and
//! restarts mid-subscription, one with TLS that requires tokens. It checks that the iterators
//! resume from the last position, nothing repeated or skipped.
//!
//! The client is installed with `pip install ./clients/python[pandas] pytest` into a venv
//! under the target directory, keyed by a hash of the package's sources (`clients/python`
//! without its tests), `proto/` and the Python version, so a run after a change to them
//! reinstalls and any other run reuses it. Without python3, venv, pip or the network (PyPI),
//! the test says SKIPPED on stderr and passes, unless `DIPLOG_REQUIRE_PYTHON=1` (CI), when it
//! fails.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::process::Command;

use diplog::import::{self, OnInvalid, scenario};

use crate::helpers::{
    Serve, database_url_for, diplog_binary, fresh_database, shown, test_signing_key, text,
};

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Says why the suite cannot run: SKIPPED on stderr, or a failure under
/// `DIPLOG_REQUIRE_PYTHON=1`.
fn skip(why: &str) {
    if std::env::var("DIPLOG_REQUIRE_PYTHON").as_deref() == Ok("1") {
        panic!("DIPLOG_REQUIRE_PYTHON=1 but {why}");
    }
    // Straight to stderr, not eprintln!, which the test harness captures on success.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {why}, so the Python client's tests did not run"
    );
}

/// Whether a path under `clients/python` is what pip installs: the package's source, not its
/// tests (run from the tree) nor what a build, pip or pytest leave there (the stubs
/// `setup.py generate_stubs` writes into `diplog/v1` among them).
fn is_source(relative: &Path) -> bool {
    !relative.starts_with("diplog/v1")
        && !relative.starts_with("tests")
        && !relative.components().any(|part| {
            let part = part.as_os_str().to_string_lossy();
            matches!(
                part.as_ref(),
                "build" | "dist" | "__pycache__" | ".pytest_cache"
            ) || part.ends_with(".egg-info")
        })
}

fn files_under(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("the directory is readable") {
        let path = entry.expect("a directory entry").path();
        let relative = path.strip_prefix(root).unwrap();
        if root.ends_with("clients/python") && !is_source(relative) {
            continue;
        }
        if path.is_dir() {
            files_under(root, &path, out);
        } else {
            out.push(path);
        }
    }
}

/// A hash of what the venv's install depends on: the package's sources, the protos its stubs
/// are generated from, and the Python that runs it.
fn install_key(python_version: &str) -> String {
    let mut files = Vec::new();
    for dir in ["clients/python", "proto"] {
        let root = repository().join(dir);
        files_under(&root, &root, &mut files);
    }
    files.sort();
    let mut hasher = Sha256::new();
    hasher.update(python_version.as_bytes());
    for file in files {
        let relative = file.strip_prefix(repository()).unwrap();
        hasher.update(relative.to_string_lossy().as_bytes());
        hasher.update([0]);
        let contents = std::fs::read(&file).expect("the file is readable");
        hasher.update((contents.len() as u64).to_be_bytes());
        hasher.update(contents);
    }
    hex::encode(&hasher.finalize()[..8])
}

async fn run(command: &mut Command) -> std::io::Result<Output> {
    command.kill_on_drop(true).output().await
}

/// The venv with the client and pytest installed: reused when its key matches, else made
/// anew (and older ones removed). `None`, after `skip`, when it cannot be made.
async fn client_venv() -> Option<PathBuf> {
    let version = match run(Command::new("python3").arg("--version")).await {
        Ok(output) if output.status.success() => text(&output.stdout) + &text(&output.stderr),
        _ => {
            skip("python3 is not installed");
            return None;
        }
    };
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-client");
    let venv = base.join(format!("venv-{}", install_key(version.trim())));
    if venv.join(".installed").is_file() {
        return Some(venv);
    }
    if let Ok(entries) = std::fs::read_dir(&base) {
        for entry in entries.flatten() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    std::fs::create_dir_all(&base).expect("the target directory is writable");
    let created = run(Command::new("python3").args(["-m", "venv"]).arg(&venv)).await;
    match created {
        Ok(output) if output.status.success() => {}
        Ok(output) => {
            skip(&format!(
                "python3 -m venv failed (python3-venv missing?): {}",
                shown(&output)
            ));
            return None;
        }
        Err(error) => {
            skip(&format!("python3 -m venv could not run: {error}"));
            return None;
        }
    }
    let installed = run(Command::new(venv.join("bin/pip"))
        .current_dir(repository())
        .args(["install", "--quiet", "--disable-pip-version-check"])
        // Without a network, fail (and skip) within a minute or two, not after many retries.
        .args(["--retries", "2", "--timeout", "30"])
        .args(["./clients/python[pandas]", "pytest"]))
    .await;
    match installed {
        Ok(output) if output.status.success() => {
            std::fs::write(venv.join(".installed"), version).expect("the venv is writable");
            Some(venv)
        }
        Ok(output) => {
            let _ = std::fs::remove_dir_all(&venv);
            skip(&format!(
                "pip install ./clients/python[pandas] pytest failed (no network?): {}",
                shown(&output)
            ));
            None
        }
        Err(error) => {
            let _ = std::fs::remove_dir_all(&venv);
            skip(&format!("pip could not run: {error}"));
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_client_passes_its_tests_against_the_real_server() {
    let started = Instant::now();
    let Some(venv) = client_venv().await else {
        return;
    };
    let installed = started.elapsed();
    let database = database_url_for(&fresh_database().await);
    let mut server = Serve::on_database(&database).start().await;
    let founding =
        scenario::parse(scenario::FOUNDING_SCENARIO).expect("the founding scenario parses");
    import::import(server.channel().await, founding.items, OnInvalid::RefuseAll)
        .await
        .expect("the founding scenario imports");

    // Run from a directory of its own, so `import diplog` finds the installed package (with its
    // generated stubs) rather than the source tree, and nothing is written into the repository.
    let workdir = tempfile::tempdir().expect("a temporary directory");
    let output = tokio::time::timeout(
        Duration::from_secs(300),
        run(Command::new(venv.join("bin/pytest"))
            .current_dir(workdir.path())
            .args(["-q", "-rs", "-p", "no:cacheprovider"])
            .arg(repository().join("clients/python/tests"))
            .env("DIPLOG_TEST_SERVER", &server.grpc)
            // For the tests that start servers of their own on the same log.
            .env("DIPLOG_TEST_DIPLOG", diplog_binary())
            .env("DIPLOG_TEST_DATABASE_URL", &database)
            .env("DIPLOG_SIGNING_KEY", test_signing_key())
            .env("PYTHONDONTWRITEBYTECODE", "1")),
    )
    .await
    .expect("pytest finishes within 300 s")
    .expect("pytest runs");
    let printed = shown(&output);
    assert!(output.status.success(), "pytest failed:\n{printed}");
    assert!(
        printed.contains(" passed") && !printed.contains("skipped"),
        "every test runs:\n{printed}"
    );
    let _ = writeln!(
        std::io::stderr(),
        "python client: venv ready in {installed:?}, tests done in {:?}",
        started.elapsed() - installed
    );
    assert!(server.terminate(Duration::from_secs(20)).await.success());
}
