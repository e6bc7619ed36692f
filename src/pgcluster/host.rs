//! The host around the cluster: where the server binaries are, which OS user runs it and
//! whether it can reach the data directory, the data directory's lock, switching users,
//! and running the server's programs.

use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::process::Command;

use super::{ClusterError, LOG_TAIL_LINES, MAX_SOCKET_PATH, RunAs, SERVER_PROGRAMS};

/// The first directory on PATH holding all server programs, else the highest version
/// under `fallback_root` (`<root>/<version>/bin`).
pub(super) fn find_bin_dir(
    path_var: Option<&OsStr>,
    fallback_root: &Path,
) -> Result<PathBuf, ClusterError> {
    // Commands run in the data dir, so a relative PATH entry would point elsewhere.
    let on_path = path_var
        .map(std::env::split_paths)
        .into_iter()
        .flatten()
        .filter(|dir| dir.is_absolute());
    let mut versioned: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir(fallback_root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let version = name
                .to_str()?
                .split('.')
                .map(|part| part.parse().ok())
                .collect::<Option<Vec<u32>>>()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versioned.sort();
    on_path
        .chain(versioned.into_iter().rev().map(|(_, dir)| dir))
        .find(|dir| {
            SERVER_PROGRAMS
                .iter()
                .all(|program| is_executable(&dir.join(program)))
        })
        .ok_or_else(|| ClusterError::BinariesNotFound {
            searched_root: fallback_root.to_owned(),
        })
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// The name of the OS user this process runs as, which the peer map lets in.
pub(super) fn current_user_name() -> Result<String, ClusterError> {
    let uid = nix::unistd::geteuid();
    let user = nix::unistd::User::from_uid(uid)
        .map_err(|errno| io_error(format!("looking up user {uid}"))(errno.into()))?;
    user.map(|user| user.name).ok_or_else(|| ClusterError::Io {
        context: format!("looking up user {uid}"),
        source: std::io::Error::other(
            "this process's user has no name in the user database, which peer authentication needs",
        ),
    })
}

pub(super) fn unprivileged_user() -> Result<RunAs, ClusterError> {
    for name in ["postgres", "nobody"] {
        let user = nix::unistd::User::from_name(name)
            .map_err(|errno| io_error(format!("looking up user {name}"))(errno.into()))?;
        if let Some(user) = user {
            return Ok(RunAs {
                name: name.to_owned(),
                uid: user.uid.as_raw(),
                gid: user.gid.as_raw(),
            });
        }
    }
    Err(ClusterError::NoUnprivilegedUser)
}

/// The server, running as `user`, must be able to enter every parent of the data dir.
/// Only the primary group counts: a process started with `Command::uid` drops the others.
pub(super) fn check_traversable(data_dir: &Path, user: &RunAs) -> Result<(), ClusterError> {
    for dir in data_dir.ancestors().skip(1) {
        let meta =
            std::fs::metadata(dir).map_err(io_error(format!("inspecting {}", dir.display())))?;
        let search_bit = if meta.uid() == user.uid {
            0o100
        } else if meta.gid() == user.gid {
            0o010
        } else {
            0o001
        };
        if meta.mode() & search_bit == 0 {
            return Err(ClusterError::DataDirNotTraversable {
                user: user.name.clone(),
                blocked: dir.to_owned(),
                data_dir: data_dir.to_owned(),
            });
        }
    }
    Ok(())
}

pub(super) fn check_socket_path(run_dir: &Path, port: u16) -> Result<(), ClusterError> {
    let path = run_dir.join(format!(".s.PGSQL.{port}"));
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(ClusterError::SocketPathTooLong { path, len });
    }
    Ok(())
}

/// Takes the flock on data_dir/diplog.lock and records our pid in it for error messages.
/// How long a held lock is retried before the data dir counts as in use: a process that forks
/// (to run any child) holds a copy of every descriptor, ours included, until its child execs,
/// so a lock just released can look taken for an instant. A real owner holds it for good.
const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

pub(super) async fn lock_data_dir(data_dir: &Path) -> Result<File, ClusterError> {
    let path = data_dir.join("diplog.lock");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_error(format!("opening {}", path.display())))?;
    let deadline = std::time::Instant::now() + LOCK_PATIENCE;
    let locked = loop {
        match file.try_lock() {
            Err(TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            other => break other,
        }
    };
    match locked {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            // The holder may not have written its pid yet; the error then says "unknown".
            let _ = file.read_to_string(&mut holder);
            return Err(ClusterError::AlreadyRunning {
                data_dir: data_dir.to_owned(),
                pid: holder.trim().parse().ok(),
            });
        }
        Err(TryLockError::Error(err)) => {
            return Err(io_error(format!("locking {}", path.display()))(err));
        }
    }
    file.set_len(0)
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .map_err(io_error(format!("writing {}", path.display())))?;
    Ok(file)
}

/// Command-line prefix that runs the rest as `user`, for the watchdog, which must itself
/// stay root.
pub(super) fn switch_user_prefix(user: &RunAs) -> Result<Vec<OsString>, ClusterError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/sbin", "/bin", "/sbin"].map(PathBuf::from))
        .collect();
    let find = |name: &str| {
        dirs.iter()
            .map(|dir| dir.join(name))
            .find(|p| is_executable(p))
    };
    if let Some(setpriv) = find("setpriv") {
        Ok(vec![
            setpriv.into(),
            format!("--reuid={}", user.uid).into(),
            format!("--regid={}", user.gid).into(),
            "--clear-groups".into(),
            "--".into(),
        ])
    } else if let Some(runuser) = find("runuser") {
        Ok(vec![
            runuser.into(),
            "-u".into(),
            user.name.clone().into(),
            "--".into(),
        ])
    } else {
        Err(ClusterError::NoUserSwitchTool {
            user: user.name.clone(),
        })
    }
}

/// pg_ctl hands its `-o` string to /bin/sh, so every server argument is single-quoted.
pub(super) fn shell_quote(arg: &OsStr) -> OsString {
    let mut quoted = vec![b'\''];
    for &byte in arg.as_bytes() {
        if byte == b'\'' {
            quoted.extend_from_slice(b"'\\''");
        } else {
            quoted.push(byte);
        }
    }
    quoted.push(b'\'');
    OsString::from_vec(quoted)
}

pub(super) fn log_tail(path: &Path) -> String {
    let log = std::fs::read(path).unwrap_or_default();
    let log = String::from_utf8_lossy(&log);
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}

pub(super) async fn run(mut cmd: Command, what: &'static str) -> Result<(), ClusterError> {
    let output = cmd
        .output()
        .await
        .map_err(io_error(format!("running {what}")))?;
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Err(ClusterError::CommandFailed {
        what,
        status: output.status,
        output: text.trim().to_owned(),
    })
}

pub(super) fn io_error(context: String) -> impl FnOnce(std::io::Error) -> ClusterError {
    move |source| ClusterError::Io { context, source }
}
