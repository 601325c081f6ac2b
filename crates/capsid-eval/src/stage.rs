//! The evaluation stage on files: picks and ground truth (particle lists), optionally decoys and
//! maps (MRC) in; an [`EvaluationReport`] out, written as `summary.json`, `summary.txt` and
//! `config.toml` in an evaluation folder.
//!
//! [`EvaluateRequest`] is what the caller asks for; [`EvaluateRequest::validate`] checks the
//! combination of inputs and lists the input files (for an output guard), [`EvaluateRequest::run`]
//! reads the inputs and scores them, [`EvaluateRequest::write`] writes the evaluation folder.
//!
//! Units: particle coordinates are x, y, z in voxels (of the maps); voxel sizes in Å; volume
//! shapes `[x, y, z]` in voxels. Maps used together must share one grid (shape and voxel size).

use crate::{
    decoy_report, evaluate_picks, hitbox, pr_curve, voxel_scores, EvalError, EvalParams,
    EvaluationReport, MatchRule,
};
use capsid_core::{ClassTable, Particle, Volume};
use capsid_io::mrc::{read_header, read_label_map, read_volume, MrcHeader};
use capsid_io::particles::{read_particles, ReadOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The report as JSON, in the evaluation folder.
pub const SUMMARY_JSON: &str = "summary.json";
/// The report as a text table, in the evaluation folder.
pub const SUMMARY_TXT: &str = "summary.txt";
/// The settings of the evaluation (capsid version, inputs, parameters), in the evaluation folder.
pub const CONFIG_TOML: &str = "config.toml";

/// Largest instance number accepted in an occupancy map (2²⁴: exact in `f32`).
const MAX_INSTANCE: f32 = 16_777_216.0;

/// What the caller asks of the evaluation stage.
#[derive(Debug, Clone)]
pub struct EvaluateRequest {
    /// Picks (particle list: .star, .csv, .txt, .xml, .json); coordinates x, y, z in voxels.
    pub picks: PathBuf,
    /// Ground-truth particles (e.g. SHREC `particle_locations.txt`, or a STAR file); classes not
    /// in [`EvaluateRequest::classes`] are ignored (and counted), numeric classes are named
    /// through the table's labels.
    pub truth: PathBuf,
    /// Picks already read (x, y, z in voxels) with a description of what they are (e.g. `copick
    /// user capsid, session 0, runs TS_1, TS_2`), used instead of reading
    /// [`EvaluateRequest::picks`], which then names the file they came from (a copick project's
    /// configuration).
    pub picks_given: Option<(String, Vec<Particle>)>,
    /// Truth already read, as [`EvaluateRequest::picks_given`] (instead of reading
    /// [`EvaluateRequest::truth`]; classes outside the table are not among them).
    pub truth_given: Option<(String, Vec<Particle>)>,
    /// Class table (names, labels, radii; symmetries for the orientation errors, which
    /// `capsid evaluate --symmetry` sets here).
    pub classes: ClassTable,
    /// The file the class table was read from (for the record and the output guard).
    pub classes_file: PathBuf,
    /// Unlabelled look-alikes (decoys), for the identification scores.
    pub decoys: Option<PathBuf>,
    /// Class table of the decoys; `None`: `decoy_table.toml` beside [`EvaluateRequest::decoys`]
    /// or one folder up (the simulator's layout).
    pub decoy_classes: Option<PathBuf>,
    /// Occupancy (instance) map for the SHREC hitbox rule: voxel value k = the k-th particle of
    /// [`EvaluateRequest::truth`] (1-based, file order), 0 = none.
    pub occupancy: Option<PathBuf>,
    /// Predicted label map, for voxel scores (with [`EvaluateRequest::truth_labels`]).
    pub labels: Option<PathBuf>,
    /// True label map (e.g. SHREC `class_mask.mrc`), for voxel scores and PR curves.
    pub truth_labels: Option<PathBuf>,
    /// Probability maps, one per class (class name, path), for PR curves (with
    /// [`EvaluateRequest::truth_labels`]).
    pub probs: Vec<(String, PathBuf)>,
    /// The headline rule: one-to-one matching, or with [`MatchRule::Czii`] also the CZII
    /// challenge's scores (see [`crate::czii`]).
    pub rule: MatchRule,
    /// Class weights of the weighted F-beta (and of the CZII score); classes not named weigh 1.
    pub class_weights: BTreeMap<String, f64>,
    /// Match tolerance as a fraction of the class radius (1.0; CZII: 0.5).
    pub tolerance_fraction: f64,
    /// β of the F-beta score (CZII: 4).
    pub beta: f64,
    /// Voxel size in Å; `None`: from the first map given (occupancy, labels, truth labels,
    /// probability maps, in that order), if its header has one.
    pub voxel_size_a: Option<f64>,
    /// Volume shape `[x, y, z]` in voxels for the outside-the-volume check; `None`: from the
    /// first map given, else no check.
    pub shape_xyz: Option<[usize; 3]>,
    /// Number of histogram bins of the PR curves.
    pub pr_bins: usize,
}

/// Settings of an evaluation as written to `config.toml`.
#[derive(serde::Serialize)]
struct ConfigRecord<'a> {
    capsid_version: &'a str,
    pr_bins: usize,
    inputs: &'a BTreeMap<String, String>,
    params: &'a EvalParams,
}

/// Records `path` as the input file of `role` (`picks`, `occupancy`, `prob_<class>`, …).
fn record(report: &mut EvaluationReport, role: impl Into<String>, path: &Path) {
    report
        .inputs
        .insert(role.into(), path.display().to_string());
}

/// `e` with `context` in front (the file or files it concerns).
fn context(e: impl Into<EvalError>, context: String) -> EvalError {
    EvalError::Context {
        context,
        source: Box::new(e.into()),
    }
}

impl EvaluateRequest {
    /// The maps given, in the order whose first sets the geometry: occupancy, labels, truth
    /// labels, probability maps.
    fn maps(&self) -> Vec<&Path> {
        [
            self.occupancy.as_deref(),
            self.labels.as_deref(),
            self.truth_labels.as_deref(),
        ]
        .into_iter()
        .flatten()
        .chain(self.probs.iter().map(|(_, p)| p.as_path()))
        .collect()
    }

    /// Checks the combination of inputs and reads the header of the first map given.
    fn check(&self) -> Result<Option<MrcHeader>, EvalError> {
        if self.labels.is_some() != self.truth_labels.is_some() && self.probs.is_empty() {
            return Err(EvalError::Invalid(
                "voxel scores need both --labels and --truth-labels".into(),
            ));
        }
        if !self.probs.is_empty() && self.truth_labels.is_none() {
            return Err(EvalError::Invalid(
                "PR curves (--prob) need --truth-labels".into(),
            ));
        }
        Ok(self.maps().first().map(|p| read_header(p)).transpose()?)
    }

    /// Reads a label map whose labels must all be in the class table (0 = background).
    fn read_labels(&self, path: &Path) -> Result<Volume<u8>, EvalError> {
        let map = read_label_map(path)?;
        capsid_core::guard::check_labels_known(path, map.data.iter().copied(), &self.classes)?;
        Ok(map)
    }

    /// Checks the request (which inputs go together; the first map's header can be read) and
    /// lists its input files, which outputs must not overwrite: picks, truth, class table,
    /// decoys, decoy class table, maps.
    pub fn validate(&self) -> Result<Vec<&Path>, EvalError> {
        self.check()?;
        let mut inputs: Vec<&Path> = vec![&self.picks, &self.truth, &self.classes_file];
        inputs.extend(self.decoys.as_deref());
        inputs.extend(self.decoy_classes.as_deref());
        inputs.extend(self.maps());
        Ok(inputs)
    }

    /// Reads the inputs and evaluates: distance matching of the picks against the truth, then as
    /// asked the decoy report, the SHREC hitbox, voxel scores and PR curves. The maps must share
    /// one grid. `progress` is called with 0 when the PR curves begin (only with truth labels),
    /// then with 1 after each curve.
    pub fn run(&self, progress: &mut dyn FnMut(u64)) -> Result<EvaluationReport, EvalError> {
        let header = self.check()?;
        let maps = self.maps();
        if let Some(h0) = &header {
            for p in maps.iter().skip(1) {
                let h = read_header(p)?;
                capsid_core::guard::check_same_grid(
                    maps[0],
                    h0.shape_zyx(),
                    h0.voxel_size_a,
                    p,
                    h.shape_zyx(),
                    h.voxel_size_a,
                )?;
            }
        }
        let voxel_size_a = self.voxel_size_a.or_else(|| {
            header
                .as_ref()
                .map(|h| h.voxel_size_a[0] as f64)
                .filter(|v| *v > 0.0)
        });
        let shape_xyz = self.shape_xyz.or_else(|| {
            header.as_ref().map(|h| {
                let [z, y, x] = h.shape_zyx();
                [x, y, z]
            })
        });
        let picks = match &self.picks_given {
            Some((_, given)) => given.clone(),
            None => read_particles(
                &self.picks,
                &ReadOptions {
                    classes: Some(self.classes.clone()),
                    voxel_size_a,
                    allow_empty: true,
                    ..Default::default()
                },
            )?,
        };
        let truth = match &self.truth_given {
            Some((_, given)) => given.clone(),
            None => read_truth(&self.truth, &self.classes, voxel_size_a)?,
        };
        let params = EvalParams {
            rule: self.rule,
            tolerance_fraction: self.tolerance_fraction,
            beta: self.beta,
            class_weights: self.class_weights.clone(),
            voxel_size_a: voxel_size_a.unwrap_or(0.0),
            shape_xyz,
        };
        let mut report = evaluate_picks(&picks, &truth, &self.classes, &params)?;
        for (role, path) in [
            ("picks", &self.picks),
            ("truth", &self.truth),
            ("classes", &self.classes_file),
        ] {
            record(&mut report, role, path);
        }
        for (role, given) in [("picks", &self.picks_given), ("truth", &self.truth_given)] {
            if let Some((what, _)) = given {
                let entry = report.inputs.entry(role.to_string()).or_default();
                *entry = format!("{entry} ({what})");
            }
        }
        if let Some(decoys_path) = &self.decoys {
            let table_path = match &self.decoy_classes {
                Some(p) => p.clone(),
                None => find_decoy_table(decoys_path).ok_or_else(|| {
                    EvalError::Invalid(format!(
                        "{}: no decoy_table.toml beside it or one folder up; give --decoy-classes",
                        decoys_path.display()
                    ))
                })?,
            };
            let decoy_classes = ClassTable::load(&table_path)?;
            let decoys = read_particles(
                decoys_path,
                &ReadOptions {
                    classes: Some(decoy_classes.clone()),
                    voxel_size_a,
                    allow_empty: true,
                    ..Default::default()
                },
            )?;
            report.decoys = Some(
                decoy_report(
                    &picks,
                    &truth,
                    &self.classes,
                    &decoys,
                    &decoy_classes,
                    &params,
                )
                .map_err(|e| context(e, decoys_path.display().to_string()))?,
            );
            record(&mut report, "decoys", decoys_path);
            record(&mut report, "decoy_classes", &table_path);
        }
        if let Some(occ_path) = &self.occupancy {
            let occ = read_volume(occ_path)?;
            capsid_core::guard::check_integer_map(
                occ_path,
                "an occupancy map",
                occ.data.iter(),
                MAX_INSTANCE,
            )?;
            report.hitbox = Some(
                hitbox(&picks, &truth, &occ, &self.classes)
                    .map_err(|e| context(e, occ_path.display().to_string()))?,
            );
            record(&mut report, "occupancy", occ_path);
        }
        if let Some(tl_path) = &self.truth_labels {
            let truth_labels = self.read_labels(tl_path)?;
            record(&mut report, "truth_labels", tl_path);
            if let Some(l_path) = &self.labels {
                let labels = self.read_labels(l_path)?;
                report.voxel =
                    voxel_scores(&labels, &truth_labels, &self.classes).map_err(|e| {
                        context(e, format!("{} vs {}", l_path.display(), tl_path.display()))
                    })?;
                record(&mut report, "labels", l_path);
            }
            progress(0);
            for (class, path) in &self.probs {
                let prob = read_volume(path)?;
                let label = self.classes.get(class)?.label;
                report.pr_curves.push(
                    pr_curve(&prob, &truth_labels, label, class, self.pr_bins).map_err(|e| {
                        context(e, format!("{} vs {}", path.display(), tl_path.display()))
                    })?,
                );
                record(&mut report, format!("prob_{class}"), path);
                progress(1);
            }
        }
        Ok(report)
    }

    /// Writes `report` into the folder `out_dir` (created if missing), each file atomically:
    /// [`SUMMARY_JSON`], [`SUMMARY_TXT`] (the table) and [`CONFIG_TOML`] (capsid version, PR bins,
    /// inputs and parameters).
    pub fn write(&self, report: &EvaluationReport, out_dir: &Path) -> Result<(), EvalError> {
        std::fs::create_dir_all(out_dir).map_err(|source| EvalError::Folder {
            path: out_dir.to_path_buf(),
            source,
        })?;
        let json = report.to_json()?;
        let table = report.to_table();
        capsid_core::write_atomically(&out_dir.join(SUMMARY_JSON), |w| {
            std::io::Write::write_all(w, json.as_bytes())
        })?;
        capsid_core::write_atomically(&out_dir.join(SUMMARY_TXT), |w| {
            std::io::Write::write_all(w, table.as_bytes())
        })?;
        let config = toml::to_string_pretty(&ConfigRecord {
            capsid_version: capsid_core::VERSION,
            inputs: &report.inputs,
            params: &report.params,
            pr_bins: self.pr_bins,
        })
        .map_err(EvalError::Settings)?;
        capsid_core::write_atomically(&out_dir.join(CONFIG_TOML), |w| {
            std::io::Write::write_all(w, config.as_bytes())
        })?;
        Ok(())
    }
}

/// Reads truth without a class table (so classes outside the table are kept and later ignored),
/// naming numeric classes through the table's labels. Coordinates x, y, z in voxels (Å files are
/// converted with `voxel_size_a`, in Å).
pub fn read_truth(
    path: &Path,
    classes: &ClassTable,
    voxel_size_a: Option<f64>,
) -> Result<Vec<Particle>, EvalError> {
    let opts = ReadOptions {
        voxel_size_a,
        class_numbers_as_names: true,
        allow_empty: true,
        ..Default::default()
    };
    let mut truth = read_particles(path, &opts)?;
    for t in &mut truth {
        if classes.get(&t.class).is_err() {
            if let Some(c) = t.class.parse::<u8>().ok().and_then(|n| classes.by_label(n)) {
                t.class = c.name.clone();
            }
        }
    }
    Ok(truth)
}

/// `decoy_table.toml` in the folder of `decoys` or its parent (the simulator's layout).
pub fn find_decoy_table(decoys: &Path) -> Option<PathBuf> {
    let dir = decoys.parent()?;
    [Some(dir), dir.parent()]
        .into_iter()
        .flatten()
        .map(|d| d.join("decoy_table.toml"))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    const CLASSES: &str = "[[class]]\nname = \"a\"\nlabel = 1\nradius_vox = 2\n\n\
                           [[class]]\nname = \"b\"\nlabel = 2\nradius_vox = 2\n";

    /// The class table, written as `classes.toml` in `dir` and read back.
    fn table(dir: &Path) -> ClassTable {
        let path = dir.join("classes.toml");
        std::fs::write(&path, CLASSES).unwrap();
        ClassTable::load(&path).unwrap()
    }

    fn write_label_map(path: &Path, vol: &Volume<u8>) {
        capsid_io::mrc::write_labels(path, vol, capsid_io::mrc::LabelMode::Uint16Mode6).unwrap();
    }

    fn request(dir: &Path) -> EvaluateRequest {
        EvaluateRequest {
            picks: dir.join("picks.csv"),
            truth: dir.join("truth.txt"),
            picks_given: None,
            truth_given: None,
            classes: table(dir),
            classes_file: dir.join("classes.toml"),
            decoys: None,
            decoy_classes: None,
            occupancy: None,
            labels: None,
            truth_labels: None,
            probs: Vec::new(),
            rule: MatchRule::OneToOne,
            class_weights: BTreeMap::new(),
            tolerance_fraction: 1.0,
            beta: 4.0,
            voxel_size_a: None,
            shape_xyz: None,
            pr_bins: 100,
        }
    }

    /// Picks (CSV) and truth (SHREC, numeric classes) on a 20×10×10 grid (x, y, z): two true
    /// particles of `a` and `b`, one matched pick each plus one far-off false pick of `a`.
    fn lists(dir: &Path) {
        std::fs::write(
            dir.join("picks.csv"),
            "class,x,y,z\na,5.5,5,5\nb,15,5,5\na,10,2,8\n",
        )
        .unwrap();
        std::fs::write(dir.join("truth.txt"), "1 5 5 5\n2 15 5 5\n9 1 1 1\n").unwrap();
    }

    /// Label map (z, y, x) with the two true particles as 3×3×3 blocks.
    fn labels() -> Volume<u8> {
        let mut data = Array3::<u8>::zeros((10, 10, 20));
        for z in 4..7 {
            for y in 4..7 {
                for x in 4..7 {
                    data[[z, y, x]] = 1;
                    data[[z, y, x + 10]] = 2;
                }
            }
        }
        Volume::new(data, 10.0)
    }

    #[test]
    fn validate_checks_combinations_and_lists_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = request(dir.path());
        r.labels = Some(dir.path().join("l.mrc"));
        let e = r.validate().unwrap_err().to_string();
        assert_eq!(e, "voxel scores need both --labels and --truth-labels");
        r.labels = None;
        r.probs = vec![("a".into(), dir.path().join("p.mrc"))];
        let e = r.validate().unwrap_err().to_string();
        assert_eq!(e, "PR curves (--prob) need --truth-labels");
        // The first map's header must be readable.
        r.truth_labels = Some(dir.path().join("missing.mrc"));
        let e = r.validate().unwrap_err();
        assert!(matches!(e, EvalError::File(_)), "{e:?}");
        assert!(e.to_string().contains("missing.mrc"), "{e}");

        let mut r = request(dir.path());
        r.decoys = Some(dir.path().join("decoys.star"));
        assert_eq!(
            r.validate().unwrap(),
            [
                dir.path().join("picks.csv"),
                dir.path().join("truth.txt"),
                dir.path().join("classes.toml"),
                dir.path().join("decoys.star"),
            ]
        );
    }

    #[test]
    fn truth_numeric_classes_are_named_through_the_table() {
        let dir = tempfile::tempdir().unwrap();
        lists(dir.path());
        let truth = read_truth(&dir.path().join("truth.txt"), &table(dir.path()), None).unwrap();
        let classes: Vec<&str> = truth.iter().map(|p| p.class.as_str()).collect();
        assert_eq!(classes, ["a", "b", "9"]);
    }

    #[test]
    fn decoy_table_beside_or_one_folder_up() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("t0");
        std::fs::create_dir(&sub).unwrap();
        let decoys = sub.join("decoys.star");
        assert_eq!(find_decoy_table(&decoys), None);
        std::fs::write(dir.path().join("decoy_table.toml"), "").unwrap();
        assert_eq!(
            find_decoy_table(&decoys),
            Some(dir.path().join("decoy_table.toml"))
        );
        std::fs::write(sub.join("decoy_table.toml"), "").unwrap();
        assert_eq!(
            find_decoy_table(&decoys),
            Some(sub.join("decoy_table.toml"))
        );
    }

    #[test]
    fn missing_decoy_table_is_named() {
        let dir = tempfile::tempdir().unwrap();
        lists(dir.path());
        let mut r = request(dir.path());
        r.decoys = Some(dir.path().join("decoys.csv"));
        let e = r.run(&mut |_| {}).unwrap_err().to_string();
        assert!(
            e.ends_with(
                "decoys.csv: no decoy_table.toml beside it or one folder up; give --decoy-classes"
            ),
            "{e}"
        );
    }

    #[test]
    fn run_and_write_with_maps() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        lists(d);
        let labels = labels();
        write_label_map(&d.join("labels.mrc"), &labels);
        write_label_map(&d.join("truth_labels.mrc"), &labels);
        let prob = Volume::new(labels.data.mapv(|v| f32::from(v == 1)), 10.0);
        capsid_io::mrc::write_volume(
            &d.join("prob_a.mrc"),
            &prob,
            capsid_io::mrc::MrcMode::Float32,
        )
        .unwrap();
        let mut r = request(d);
        r.labels = Some(d.join("labels.mrc"));
        r.truth_labels = Some(d.join("truth_labels.mrc"));
        r.probs = vec![("a".into(), d.join("prob_a.mrc"))];
        assert_eq!(r.validate().unwrap().len(), 6);
        let mut calls = Vec::new();
        let report = r.run(&mut |n| calls.push(n)).unwrap();
        assert_eq!(calls, [0, 1]);
        // Geometry from the first map: 10 Å voxels, shape x, y, z = 20, 10, 10.
        assert_eq!(report.params.voxel_size_a, 10.0);
        assert_eq!(report.params.shape_xyz, Some([20, 10, 10]));
        assert_eq!(
            (report.n_picks, report.n_truth, report.truth_ignored),
            (3, 3, 1)
        );
        assert_eq!(report.classes[0].counts.tp, 1);
        assert_eq!(report.classes[0].counts.fp, 1);
        assert_eq!(report.classes[1].counts.tp, 1);
        assert_eq!(report.voxel.len(), 2);
        assert_eq!(report.pr_curves.len(), 1);
        let roles: Vec<&str> = report.inputs.keys().map(String::as_str).collect();
        assert_eq!(
            roles,
            [
                "classes",
                "labels",
                "picks",
                "prob_a",
                "truth",
                "truth_labels"
            ]
        );

        let out = d.join("eval");
        r.write(&report, &out).unwrap();
        let json = std::fs::read_to_string(out.join(SUMMARY_JSON)).unwrap();
        assert_eq!(json, report.to_json().unwrap());
        let table = std::fs::read_to_string(out.join(SUMMARY_TXT)).unwrap();
        assert_eq!(table, report.to_table());
        let config: toml::Value =
            toml::from_str(&std::fs::read_to_string(out.join(CONFIG_TOML)).unwrap()).unwrap();
        assert_eq!(config["pr_bins"].as_integer(), Some(100));
        assert_eq!(config["params"]["voxel_size_a"].as_float(), Some(10.0));
        assert_eq!(
            config["inputs"]["picks"].as_str(),
            Some(d.join("picks.csv").display().to_string().as_str())
        );
    }

    #[test]
    fn the_czii_rule_adds_its_section_and_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        lists(d);
        let mut r = request(d);
        r.rule = MatchRule::Czii;
        r.tolerance_fraction = 0.5;
        let report = r.run(&mut |_| {}).unwrap();
        assert_eq!(report.params.rule, MatchRule::Czii);
        let czii = report.czii.as_ref().unwrap();
        // a: the pick 0.5 from its particle is found (tolerance 1), the far one is FP; b found.
        assert_eq!(
            czii.classes
                .iter()
                .map(|c| (c.counts.tp, c.counts.fp, c.counts.fn_))
                .collect::<Vec<_>>(),
            [(1, 1, 0), (1, 0, 0)]
        );
        // F4: a = 17·(1/2) / (16/2 + 1) = 17/18, b = 1; equal weights.
        assert!((czii.score - (17.0 / 18.0 + 1.0) / 2.0).abs() < 1e-12);
        let out = d.join("eval");
        r.write(&report, &out).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join(SUMMARY_JSON)).unwrap())
                .unwrap();
        assert_eq!(json["params"]["rule"], "czii");
        assert!(json["czii"]["score"].is_f64());
        let table = std::fs::read_to_string(out.join(SUMMARY_TXT)).unwrap();
        assert!(
            table.starts_with("Rule czii") && table.contains("For comparison, rule one-to-one"),
            "{table}"
        );
        let config = std::fs::read_to_string(out.join(CONFIG_TOML)).unwrap();
        assert!(config.contains("rule = \"czii\""), "{config}");
        // The default rule: no CZII section.
        let plain = request(d).run(&mut |_| {}).unwrap();
        assert!(plain.czii.is_none());
        assert!(plain.to_table().starts_with("Rule one-to-one"));
        assert_eq!(
            serde_json::to_value(&plain).unwrap()["params"]["rule"],
            "one-to-one"
        );
    }

    #[test]
    fn maps_on_other_grids_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        lists(d);
        let labels = labels();
        write_label_map(&d.join("truth_labels.mrc"), &labels);
        let small = Volume::new(Array3::<u8>::zeros((10, 10, 10)), 10.0);
        write_label_map(&d.join("labels.mrc"), &small);
        let mut r = request(d);
        r.labels = Some(d.join("labels.mrc"));
        r.truth_labels = Some(d.join("truth_labels.mrc"));
        let e = r.run(&mut |_| {}).unwrap_err();
        assert!(matches!(e, EvalError::Core(_)), "{e:?}");
    }
}
