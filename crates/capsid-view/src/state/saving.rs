//! Saving the picks: the file each format writes, backups of opened files, locks.

use super::Viewer;
use crate::ViewError;
use capsid_core::Particle;
use capsid_io::particles::{write_particles, Format, WriteOptions};
use std::collections::BTreeSet;
use std::path::PathBuf;

impl Viewer {
    pub(super) fn save_stem(&self) -> String {
        self.save_base
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "picks".into())
    }

    /// The file "save" writes for `format` (copick: see [`Viewer::save`]).
    pub fn save_path(&self, format: Format) -> PathBuf {
        let ext = match format {
            Format::Star => "star",
            Format::Csv => "csv",
            Format::ShrecTxt => "txt",
            Format::DeepFinderXml => "xml",
            Format::CopickJson => "json",
        };
        self.save_base.with_extension(ext)
    }

    /// Saves the current picks in `format` (STAR, CSV, or copick: one `<stem>_<class>.json` per
    /// class) atomically; when some picks carry a score, picks without one (added by hand) get 1. Saving over a file that was opened keeps its first version as
    /// `<file>.bak`. Returns the files written.
    pub fn save(&self, format: Format) -> Result<Vec<PathBuf>, ViewError> {
        let mut edit = self.edit.lock().unwrap_or_else(|e| e.into_inner());
        let mut all = edit.picks.clone();
        // A score column needs a value for every pick: picks added by hand score 1.
        if all.iter().any(|p| p.score.is_some()) {
            for p in &mut all {
                p.score.get_or_insert(1.0);
            }
        }
        let mut jobs: Vec<(PathBuf, Vec<Particle>)> = Vec::new();
        match format {
            Format::Star | Format::Csv => jobs.push((self.save_path(format), all)),
            Format::CopickJson => {
                let names: BTreeSet<&str> = all.iter().map(|p| p.class.as_str()).collect();
                for c in names {
                    // The class becomes part of a file name: no folders.
                    capsid_core::guard::check_file_name_part("class", c)?;
                    let path = self
                        .save_base
                        .with_file_name(format!("{}_{c}.json", self.save_stem()));
                    let list = all.iter().filter(|p| p.class == c).cloned().collect();
                    jobs.push((path, list));
                }
            }
            other => {
                return Err(ViewError::Invalid(format!(
                    "saving as {other} is not offered (star, csv, copick)"
                )))
            }
        }
        let wopts = WriteOptions {
            format: Some(format),
            voxel_size_a: (self.voxel_size_a > 0.0).then_some(self.voxel_size_a),
            tomo_shape_xyz: Some(self.tomo.shape_xyz()),
            classes: Some(self.classes.clone()),
            ..Default::default()
        };
        // Lock every file first (another viewer or a capsid command writing the same list gets
        // a clear error, not an interleaved file); the locks go when this call returns.
        let _locks = jobs
            .iter()
            .map(|(path, _)| capsid_core::guard::OutputLock::acquire(path))
            .collect::<Result<Vec<_>, _>>()?;
        let mut written = Vec::new();
        for (path, list) in jobs {
            if path.exists() {
                let canon = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
                if self.opened.contains(&canon) && !edit.backed_up.contains(&canon) {
                    capsid_core::guard::keep_backup(&path)?;
                    edit.backed_up.insert(canon);
                }
            }
            write_particles(&path, &list, &wopts)?;
            written.push(path);
        }
        edit.saves += 1;
        Ok(written)
    }
}
