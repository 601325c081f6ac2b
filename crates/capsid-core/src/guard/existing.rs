//! Existing results and completeness: refusing to replace a result without `--force`, the
//! [`COMPLETE_MARKER`](super::COMPLETE_MARKER) of finished output folders, and the `.bak` copy
//! kept before an explicit replacement.

use super::{invalid, io_err, COMPLETE_MARKER, HIDDEN_PREFIX};
use crate::error::CoreError;
use std::io::Write;
use std::path::{Path, PathBuf};

/// True when `p` exists as a file, or as a folder holding anything other than capsid's hidden
/// temporary, lock and marker files.
pub fn exists_with_content(p: &Path) -> bool {
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => std::fs::read_dir(p)
            .map(|rd| {
                rd.flatten()
                    .any(|e| !e.file_name().to_string_lossy().starts_with(HIDDEN_PREFIX))
            })
            .unwrap_or(true),
        Ok(_) => true,
        Err(_) => false,
    }
}

/// Refuses to replace an existing result (a file, or a folder with content) unless `force`.
/// `flag` names the option that allows it (e.g. `--force`, or `--force or --resume`).
pub fn refuse_existing(output: &Path, force: bool, flag: &str) -> Result<(), CoreError> {
    if !force && exists_with_content(output) {
        return Err(invalid(format!(
            "{}: already exists; capsid does not replace results unless you say {flag}",
            output.display()
        )));
    }
    Ok(())
}

/// True when the output `p` is complete: a file that exists (capsid writes files under a
/// temporary name and renames them when finished, so an existing file is a finished one), or a
/// folder holding [`COMPLETE_MARKER`] (written by [`mark_complete`] when the command that fills it
/// finished). Many-tomogram and cluster runs skip complete outputs.
pub fn is_complete(p: &Path) -> bool {
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => p.join(COMPLETE_MARKER).is_file(),
        Ok(_) => true,
        Err(_) => false,
    }
}

/// Marks the output folder `dir` as complete (see [`is_complete`]); call it last.
pub fn mark_complete(dir: &Path) -> Result<(), CoreError> {
    let p = dir.join(COMPLETE_MARKER);
    crate::fsutil::write_atomically(&p, |w| writeln!(w, "capsid {} finished", crate::VERSION))
}

/// Before an explicit replacement (`--force` on a particle list, new picks into a copick project,
/// edited picks saved over the file a viewer opened): copies the existing file `path` to
/// `path.bak` (replacing an older backup) and returns the backup's path; `None` when `path` does
/// not exist. The new content is then written atomically (temporary file + rename) as usual.
pub fn keep_backup(path: &Path) -> Result<Option<PathBuf>, CoreError> {
    if !path.is_file() {
        return Ok(None);
    }
    let mut bak = path.as_os_str().to_owned();
    bak.push(".bak");
    let bak = PathBuf::from(bak);
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
    crate::fsutil::write_atomically(&bak, |w| w.write_all(&bytes))?;
    Ok(Some(bak))
}
