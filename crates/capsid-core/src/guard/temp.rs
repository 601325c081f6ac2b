//! Leftovers of interrupted runs: temporary output files (`.capsid-tmp-HOST.PID.RANDOM`), the
//! folders a process created, the clean-up on Ctrl-C / SIGTERM ([`cleanup_this_process`]) and the
//! sweep of dead processes' temporary and lock files ([`sweep_stale`]).

use super::identity::{host_name, process_alive};
use super::lock::read_lock_owner;
use super::{io_err, lock_list, CREATED_DIRS, LOCKS, LOCK_PREFIX, TEMP_DIRS, TEMP_PREFIX};
use crate::error::CoreError;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The prefix of this process's temporary files: `.capsid-tmp-HOST.PID.`.
pub fn temp_prefix() -> &'static str {
    static PREFIX: OnceLock<String> = OnceLock::new();
    PREFIX.get_or_init(|| format!("{TEMP_PREFIX}{}.{}.", host_name(), std::process::id()))
}

/// Host and pid of a capsid temporary file name, if it is one of the current form.
pub(super) fn temp_owner(name: &str) -> Option<(&str, u32)> {
    let rest = name.strip_prefix(TEMP_PREFIX)?;
    let mut parts = rest.rsplitn(3, '.');
    let _random = parts.next()?;
    let pid = parts.next()?.parse().ok()?;
    let host = parts.next()?;
    Some((host, pid))
}

/// Creates a temporary output file in `dir` (named `.capsid-tmp-HOST.PID.RANDOM`, mode 0644 on
/// Unix) and remembers `dir`, so that [`cleanup_this_process`] can remove the file if the process
/// is interrupted before it is renamed into place.
pub fn temp_file_in(dir: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    if shutting_down() {
        return Err(std::io::Error::other("capsid is stopping (interrupted)"));
    }
    {
        let mut dirs = lock_list(&TEMP_DIRS);
        if !dirs.iter().any(|d| d == dir) {
            dirs.push(dir.to_path_buf());
        }
    }
    crate::fsutil::temp_file_builder().tempfile_in(dir)
}

static SHUTTING_DOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn shutting_down() -> bool {
    SHUTTING_DOWN.load(std::sync::atomic::Ordering::SeqCst)
}

/// Creates a temporary output folder in `dir` for an output written as a folder (an OME-Zarr
/// image), named `.capsid-tmp-HOST.PID.NAME` so that [`cleanup_this_process`] and
/// [`sweep_stale`] remove it like a temporary file if it is never renamed into place.
pub fn temp_dir_in(dir: &Path, name: &str) -> std::io::Result<PathBuf> {
    if shutting_down() {
        return Err(std::io::Error::other("capsid is stopping (interrupted)"));
    }
    let path = dir.join(format!("{}{name}", temp_prefix()));
    if path.exists() {
        remove_file_or_folder(&path)?;
    }
    std::fs::create_dir(&path)?;
    let mut dirs = lock_list(&TEMP_DIRS);
    if !dirs.iter().any(|d| d == dir) {
        dirs.push(dir.to_path_buf());
    }
    Ok(path)
}

/// Removes `p`, a file or a folder with everything in it.
fn remove_file_or_folder(p: &Path) -> std::io::Result<()> {
    if p.is_dir() {
        std::fs::remove_dir_all(p)
    } else {
        std::fs::remove_file(p)
    }
}

/// Remembers that this process created `dir`, so that [`cleanup_this_process`] removes it again
/// if it is still empty when the process is interrupted.
pub fn register_created_dir(dir: &Path) {
    lock_list(&CREATED_DIRS).push(dir.to_path_buf());
}

/// Creates `dir` (and its parents) and returns the folders that did not exist before, outermost
/// first; each is registered with [`register_created_dir`]. Pass the list to
/// [`remove_created_dirs`] when the command fails, so a failure leaves no empty folder behind.
pub fn create_output_dir(dir: &Path) -> Result<Vec<PathBuf>, CoreError> {
    let mut missing = Vec::new();
    let mut p = Some(dir);
    while let Some(d) = p {
        if d.as_os_str().is_empty() || d.exists() {
            break;
        }
        missing.push(d.to_path_buf());
        p = d.parent();
    }
    missing.reverse();
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    for d in &missing {
        register_created_dir(d);
    }
    Ok(missing)
}

/// Removes the folders of `created` (as returned by [`create_output_dir`]) that are empty, innermost
/// first. Folders holding anything are kept.
pub fn remove_created_dirs(created: &[PathBuf]) {
    for d in created.iter().rev() {
        let _ = std::fs::remove_dir(d);
    }
}

/// Removes this process's temporary files (in every folder it wrote into), its lock files, and the
/// folders it created that are still empty. Finished outputs are kept. Called on Ctrl-C and
/// SIGTERM; after it, creating a temporary file fails.
pub fn cleanup_this_process() {
    SHUTTING_DOWN.store(true, std::sync::atomic::Ordering::SeqCst);
    let prefix = temp_prefix();
    let dirs = lock_list(&TEMP_DIRS).clone();
    for d in dirs {
        if let Ok(entries) = std::fs::read_dir(&d) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(prefix) {
                    let _ = remove_file_or_folder(&e.path());
                }
            }
        }
    }
    for l in lock_list(&LOCKS).drain(..) {
        let _ = std::fs::remove_file(l);
    }
    let created = lock_list(&CREATED_DIRS).clone();
    for d in created.iter().rev() {
        let _ = std::fs::remove_dir(d);
    }
}

/// Removes, in `dir`, the temporary files and lock files left by dead capsid processes of this
/// host. Files of other hosts, of live processes and of unknown owners are kept. Returns how many
/// files were removed.
pub fn sweep_stale(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let owner = if name.starts_with(TEMP_PREFIX) {
            temp_owner(&name).map(|(h, p)| (h.to_string(), p))
        } else if name.starts_with(LOCK_PREFIX) {
            read_lock_owner(&e.path())
        } else {
            None
        };
        if let Some((host, pid)) = owner {
            if host == host_name()
                && pid != std::process::id()
                && !process_alive(pid)
                && remove_file_or_folder(&e.path()).is_ok()
            {
                removed += 1;
            }
        }
    }
    removed
}
