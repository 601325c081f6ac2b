//! The output guard: what every capsid command does before it writes anything.
//!
//! * **Inputs are never outputs.** [`refuse_overwriting_inputs`] compares canonical paths and
//!   (device, inode) of every output with every input, including inputs that lie inside an output
//!   folder; outputs that do not exist yet are compared through their canonical parent folder.
//! * **Existing results are kept** unless the user says `--force` (or `--resume` where a command
//!   can continue a run): [`refuse_existing`].
//! * **One writer per output.** [`OutputLock`] creates `.capsid-lock-NAME` next to the output with
//!   `create_new`, recording host and pid. A second writer gets an error naming the holder; a lock
//!   left by a dead process *of this host* is swept; another host's locks are never touched (a
//!   cluster file system is shared, its processes are not visible from here). Outputs in one
//!   folder lock separately, so tasks writing different tomograms into one folder run side by side.
//! * **Skip what is complete** ([`is_complete`], [`mark_complete`]): an output file is complete when
//!   it exists (outputs are written to a temporary file and renamed), an output folder when it
//!   holds the [`COMPLETE_MARKER`] file.
//! * **Leftovers.** Temporary files are named `.capsid-tmp-HOST.PID.RANDOM` ([`temp_file_in`]);
//!   [`cleanup_this_process`] (called on Ctrl-C / SIGTERM) removes this process's temporary files
//!   and locks and the empty folders it created; [`sweep_stale`] removes those of dead processes of
//!   this host at the next run into a folder.
//!
//! [`OutputGuard`] bundles all of this for one command: `OutputGuard::new(outputs, inputs, force)`.

mod checks;
mod existing;
mod identity;
mod inputs;
mod lock;
mod panics;
mod temp;
#[cfg(test)]
mod tests;

pub use checks::{
    check_file_name_part, check_integer_map, check_labels_known, check_same_grid, check_voxel_size,
};
pub use existing::{exists_with_content, is_complete, keep_backup, mark_complete, refuse_existing};
pub use identity::{host_name, process_alive};
pub use inputs::{
    canonical_or_parent, refuse_duplicate_outputs, refuse_overwriting_inputs, same_file,
};
pub use lock::{lock_path, OutputLock};
pub use panics::{catch_third_party_panic, caught_panics, in_third_party_code};
pub use temp::{
    cleanup_this_process, create_output_dir, register_created_dir, remove_created_dirs,
    sweep_stale, temp_dir_in, temp_file_in, temp_prefix,
};

use crate::error::CoreError;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Name prefix of every file capsid keeps next to outputs (temporary files, locks, markers).
pub const HIDDEN_PREFIX: &str = ".capsid-";
/// Name prefix of temporary files (followed by `HOST.PID.`).
pub const TEMP_PREFIX: &str = ".capsid-tmp-";
/// Name prefix of lock files (followed by the output's file name).
pub const LOCK_PREFIX: &str = ".capsid-lock-";
/// The file that marks an output folder as complete (see [`mark_complete`]).
pub const COMPLETE_MARKER: &str = ".capsid-complete";

static TEMP_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static LOCKS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static CREATED_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn invalid(msg: impl Into<String>) -> CoreError {
    CoreError::Invalid(msg.into())
}

fn io_err(path: &Path, source: std::io::Error) -> CoreError {
    CoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn lock_list<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// The guard

/// What a command holds while it writes its outputs: one [`OutputLock`] per output. Dropping it
/// releases the locks.
#[derive(Debug)]
pub struct OutputGuard {
    locks: Vec<OutputLock>,
    /// Folders created to hold the locks (removed again on drop if still empty).
    created: Vec<PathBuf>,
}

impl Drop for OutputGuard {
    fn drop(&mut self) {
        self.locks.clear();
        remove_created_dirs(&self.created);
    }
}

impl OutputGuard {
    /// The checks every command runs before writing:
    /// 1. no two outputs are the same file ([`refuse_duplicate_outputs`]);
    /// 2. no output is, or (as a folder) holds, an input ([`refuse_overwriting_inputs`]);
    /// 3. one lock per output ([`OutputLock`]), after stale temporary files and locks of dead
    ///    processes of this host are swept from the folders involved ([`sweep_stale`]);
    /// 4. no existing result is replaced unless `force` ([`refuse_existing`], `--force`).
    pub fn new(outputs: &[&Path], inputs: &[&Path], force: bool) -> Result<Self, CoreError> {
        Self::with_flag(outputs, inputs, force, "--force")
    }

    /// Like [`OutputGuard::new`], naming `flag` as what allows replacing an existing result.
    pub fn with_flag(
        outputs: &[&Path],
        inputs: &[&Path],
        force: bool,
        flag: &str,
    ) -> Result<Self, CoreError> {
        refuse_duplicate_outputs(outputs)?;
        refuse_overwriting_inputs(outputs, inputs)?;
        let mut guard = Self {
            locks: Vec::with_capacity(outputs.len()),
            created: Vec::new(),
        };
        for out in outputs {
            let parent = lock_path(out).parent().map(Path::to_path_buf);
            if let Some(parent) = &parent {
                if !parent.exists() {
                    guard.created.extend(create_output_dir(parent)?);
                }
                sweep_stale(parent);
            }
            if out.is_dir() {
                sweep_stale(out);
            }
            guard.locks.push(OutputLock::acquire(out)?);
            refuse_existing(out, force, flag)?;
        }
        Ok(guard)
    }

    /// Adds a lock on one more output (e.g. a file inside an output folder), with the same checks.
    pub fn add(&mut self, output: &Path, inputs: &[&Path], force: bool) -> Result<(), CoreError> {
        refuse_overwriting_inputs(&[output], inputs)?;
        self.locks.push(OutputLock::acquire(output)?);
        refuse_existing(output, force, "--force")
    }

    /// The lock files held.
    pub fn lock_files(&self) -> Vec<&Path> {
        self.locks.iter().map(OutputLock::path).collect()
    }
}
