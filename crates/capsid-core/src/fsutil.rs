//! Writing files so that a failure never leaves a half-written output behind.

use crate::error::CoreError;
use std::io::{BufWriter, Write};
use std::path::Path;

/// Writes `path` by calling `fill` on a buffered temporary file in the same folder, then renaming
/// it over `path`. If `fill` fails, the temporary file is removed and `path` is left untouched.
pub fn write_atomically<F>(path: &Path, fill: F) -> Result<(), CoreError>
where
    F: FnOnce(&mut BufWriter<std::fs::File>) -> std::io::Result<()>,
{
    let io_err = |source| CoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = crate::guard::temp_file_in(dir).map_err(io_err)?;
    let (file, tmp_path) = tmp.into_parts();
    let mut w = BufWriter::new(file);
    fill(&mut w).map_err(io_err)?;
    w.flush().map_err(io_err)?;
    let file = w.into_inner().map_err(|e| io_err(e.into_error()))?;
    file.sync_all().ok();
    tmp_path.persist(path).map_err(|e| io_err(e.error))?;
    Ok(())
}

/// A builder for capsid's temporary output files: hidden `.capsid-tmp-HOST.PID.` names (so a
/// later run can tell a dead process's leftovers from a running one's), and on Unix mode 0644
/// (what a plain `File::create` gives under the usual umask) instead of tempfile's 0600, so
/// outputs stay readable by colleagues after the rename. Prefer [`crate::guard::temp_file_in`],
/// which also registers the folder for clean-up on Ctrl-C.
pub fn temp_file_builder() -> tempfile::Builder<'static, 'static> {
    let mut b = tempfile::Builder::new();
    b.prefix(crate::guard::temp_prefix());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(std::fs::Permissions::from_mode(0o644));
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.txt");
        let r = write_atomically(&p, |w| {
            w.write_all(b"half")?;
            Err(std::io::Error::other("boom"))
        });
        assert!(r.is_err());
        assert!(!p.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        write_atomically(&p, |w| w.write_all(b"whole")).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "whole");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o644);
        }
    }
}
