//! One writer per output: the lock file `.capsid-lock-NAME` next to an output ([`OutputLock`]),
//! recording host and pid; locks of dead processes of this host are swept.

use super::identity::{host_name, process_alive};
use super::temp::create_output_dir;
use super::{invalid, io_err, lock_list, LOCKS, LOCK_PREFIX};
use crate::error::CoreError;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A lock on one output: the file `.capsid-lock-NAME` next to it, holding `host=…` and `pid=…`.
/// Removed when dropped (and by [`cleanup_this_process`](super::cleanup_this_process) on
/// Ctrl-C / SIGTERM).
#[derive(Debug)]
pub struct OutputLock {
    path: PathBuf,
}

/// The lock file of output `p`.
pub fn lock_path(p: &Path) -> PathBuf {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    dir.join(format!("{LOCK_PREFIX}{name}"))
}

pub(super) fn read_lock_owner(lock: &Path) -> Option<(String, u32)> {
    let text = std::fs::read_to_string(lock).ok()?;
    let mut host = None;
    let mut pid = None;
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("host=") {
            host = Some(h.trim().to_string());
        } else if let Some(p) = line.strip_prefix("pid=") {
            pid = p.trim().parse().ok();
        }
    }
    Some((host?, pid?))
}

impl OutputLock {
    /// Locks output `p` for this process. Fails with a message naming the holder when another
    /// live process (or any process of another host) holds it; a lock of a dead process of this
    /// host is removed first. The folder that will hold the lock must exist (it is created if
    /// missing, and registered so an interrupted run removes it again when empty).
    pub fn acquire(p: &Path) -> Result<Self, CoreError> {
        let lock = lock_path(p);
        if let Some(dir) = lock.parent() {
            if !dir.exists() {
                create_output_dir(dir)?;
            }
        }
        for _attempt in 0..2 {
            match OpenOptions::new().write(true).create_new(true).open(&lock) {
                Ok(mut f) => {
                    lock_list(&LOCKS).push(lock.clone());
                    let text = format!(
                        "host={}\npid={}\noutput={}\n",
                        host_name(),
                        std::process::id(),
                        p.display()
                    );
                    f.write_all(text.as_bytes()).map_err(|e| io_err(&lock, e))?;
                    return Ok(Self { path: lock });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    match read_lock_owner(&lock) {
                        Some((host, pid))
                            if host == host_name()
                                && pid != std::process::id()
                                && !process_alive(pid) =>
                        {
                            // A dead process of this host: sweep and retry.
                            let _ = std::fs::remove_file(&lock);
                            continue;
                        }
                        Some((host, pid)) => {
                            return Err(invalid(format!(
                                "{}: being written by process {pid} on host {host} (lock file {}); \
                                 wait for it, or remove the lock file if that process is gone",
                                p.display(),
                                lock.display()
                            )))
                        }
                        None => {
                            return Err(invalid(format!(
                                "{}: being written by another process (lock file {}); \
                                 wait for it, or remove the lock file if that process is gone",
                                p.display(),
                                lock.display()
                            )))
                        }
                    }
                }
                Err(e) => return Err(io_err(&lock, e)),
            }
        }
        Err(invalid(format!(
            "{}: could not take the lock file {}",
            p.display(),
            lock.display()
        )))
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        lock_list(&LOCKS).retain(|l| l != &self.path);
    }
}
