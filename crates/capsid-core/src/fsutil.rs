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

/// The paths of a list file (`--list`): the first whitespace-separated field of every line that
/// is not empty or a `#` comment (so a training list, `TOMO PARTICLES [LABELS]`, lists its
/// tomograms), relative paths taken from the list file's folder. An unreadable or empty list is
/// an error naming the file.
pub fn read_path_list(path: &Path) -> Result<Vec<std::path::PathBuf>, CoreError> {
    let text = std::fs::read_to_string(path).map_err(|source| CoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let paths: Vec<std::path::PathBuf> = text
        .lines()
        .map(str::trim)
        .filter(|t| !t.is_empty() && !t.starts_with('#'))
        .filter_map(|t| t.split_whitespace().next())
        .map(|f| {
            let p = Path::new(f);
            if p.is_relative() {
                base.join(p)
            } else {
                p.to_path_buf()
            }
        })
        .collect();
    if paths.is_empty() {
        return Err(CoreError::Invalid(format!(
            "{}: the list names no file",
            path.display()
        )));
    }
    Ok(paths)
}

#[cfg(test)]
mod list_tests {
    use super::*;

    #[test]
    fn list_files_give_first_fields_relative_to_their_folder() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("tomos.txt");
        std::fs::write(
            &list,
            "# test set\n\nt1.mrc\n  /abs/t2.mrc  t2.star\nsub/t3.zarr # comment after\n",
        )
        .unwrap();
        assert_eq!(
            read_path_list(&list).unwrap(),
            vec![
                dir.path().join("t1.mrc"),
                std::path::PathBuf::from("/abs/t2.mrc"),
                dir.path().join("sub/t3.zarr")
            ]
        );
        std::fs::write(&list, "# nothing\n\n").unwrap();
        let e = read_path_list(&list).unwrap_err().to_string();
        assert!(
            e.contains("tomos.txt") && e.contains("names no file"),
            "{e}"
        );
        assert!(read_path_list(&dir.path().join("missing.txt")).is_err());
    }
}
