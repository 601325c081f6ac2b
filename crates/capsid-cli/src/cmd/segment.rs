//! `capsid segment`: sliding-window segmentation of tomograms with a trained model.

use anyhow::{bail, Context};
use capsid_nn::segment::{Blend, ProbPrecision, SegmentRequest, Segmenter};
use std::path::{Path, PathBuf};

/// Arguments of `capsid segment`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
MODEL is a run folder written by `capsid train` (net.toml + weights.bpk, config.toml and
class_table.toml); its patch size and class names are used unless flags say otherwise. Each
tomogram is processed slab by slab along z (one row of windows at a time) and every output is written
slab by slab as it is finished, so memory stays near one patch-thick slab of class probabilities,
whatever the depth. Windows are z-score normalised each, as in
training.

Many tomograms (arguments and --list): one that fails is reported and the others go on; a table
at the end says what was done, skipped and failed, and the exit status is non-zero when any
failed. With --skip-complete, rerunning the same command does only what is missing.

Outputs per tomogram (the name is the file stem; SHREC's reconstruction.mrc takes its folder's name):
  DIR/<tomo>_labels.mrc          uint8 label map (mode 0, IMOD unsigned flag), 0 = background, classes
                                 1..K as in MODEL/class_table.toml; header (origin, voxel size) copied
  DIR/<tomo>_prob_<class>.mrc    with --probs f16|f32: probability of each target class (written
                                 as f16 without --probs when the model's pick_settings.toml picks
                                 a class by peaks of its probability map, for `capsid pick`)
  DIR/<tomo>_labels.zarr, …      with --zarr: each map also as an OME-Zarr 0.4 image (Zarr v2,
                                 blosc-lz4, levels at 1×, 2×, 4× the voxel size; labels
                                 downsampled by nearest neighbour, probabilities by block means),
                                 as copick and the cryoET Data Portal store segmentations

Examples:
  capsid segment runs/tiny sim/reconstruction.mrc --out seg
  capsid segment runs/ribo t1.mrc t2.mrc --out seg --blend gaussian --tta \\
      --probs f16
  capsid segment runs/ribo run1/VoxelSpacing10.000/wbp.zarr --out seg --zarr
  capsid segment runs/ribo --list test_tomos.txt --out seg --skip-complete
  capsid segment runs/ribo --copick czii/copick_config.json \\
      --tomo-type denoised --voxel-spacing 10.012 --out seg --skip-complete
  capsid segment runs/ribo --copick czii/copick_config.json --out seg \\
      --copick-segmentation predictions --user-id capsid
  capsid segment runs/ribo20 run1/VoxelSpacing10.000/wbp.zarr --out seg20 \\
      --voxel-size 20")]
pub struct Args {
    /// Trained model (run folder of `capsid train`).
    pub model: PathBuf,
    /// Tomograms (MRC, or OME-Zarr: a multiscale group, read at its finest level, or one level's
    /// array such as `wbp.zarr/1`).
    #[arg(required_unless_present_any = ["list", "copick"])]
    pub tomograms: Vec<PathBuf>,
    /// A list file of tomograms, one per line (the first field: a training list file
    /// `TOMO PARTICLES [LABELS]` will do), relative to the list's folder; `#` comments. Added to
    /// the tomograms given as arguments.
    #[arg(long, value_name = "FILE")]
    pub list: Option<PathBuf>,
    #[command(flatten)]
    pub copick: crate::copick_args::CopickRuns,
    /// With --copick: also write each run's label map into the project as the copick multilabel
    /// segmentation NAME of --user-id / --session-id (voxel values: the project's object labels;
    /// every class of the model must be an object of the project).
    #[arg(long, value_name = "NAME", requires = "copick")]
    pub copick_segmentation: Option<String>,
    /// With --copick-segmentation: the segmentation's copick user.
    #[arg(long, default_value = "capsid", requires = "copick_segmentation")]
    pub user_id: String,
    /// With --copick-segmentation: the segmentation's copick session.
    #[arg(long, default_value = "0", requires = "copick_segmentation")]
    pub session_id: String,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Window side in voxels (default: the training patch).
    #[arg(long)]
    pub patch: Option<usize>,
    /// Overlap of neighbouring windows in voxels (default 25, at most half the patch).
    #[arg(long)]
    pub overlap: Option<usize>,
    /// Blending of overlapping windows: uniform (averaging, as the paper), gaussian (nnU-Net) or
    /// crop (valid-region stitching: each voxel from the one window whose centre region holds
    /// it; window borders are discarded).
    #[arg(long, value_enum, default_value_t = BlendArg::Uniform)]
    pub blend: BlendArg,
    /// Window normalisation: window (each window z-scored by itself, as training patches; the
    /// output then depends on where windows fall) or tomogram (every window by the whole
    /// tomogram's mean and deviation, one extra read of the tomogram).
    #[arg(long, value_enum, default_value_t = NormalizeArg::Window)]
    pub normalize: NormalizeArg,
    /// Test-time augmentation: average over the 8 mirror images (8× slower).
    #[arg(long)]
    pub tta: bool,
    /// Windows per forward pass. 1 keeps memory lowest (on 2 CPU cores a 256×256×128 tomogram at
    /// patch 64 peaked at 470 MB with 1 against 1,348 MB with 4, and was not slower).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Also write per-class probability maps, as float16 (MRC mode 12: half the size; read by
    /// mrcfile and RELION ≥ 4) or float32 (mode 2: the choice for RELION 3.x and other readers
    /// without mode 12).
    #[arg(long, value_enum)]
    pub probs: Option<ProbsArg>,
    /// Device: flex (CPU, default), wgpu, vulkan, cuda[:N], rocm[:N].
    #[arg(long, default_value = "flex")]
    pub device: String,
    /// CPU threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Voxel size (Å) to segment at: an OME-Zarr tomogram given as a multiscale group is read at
    /// the level of this voxel size (e.g. 20 for level 1 of a copick 10 Å tomogram); any other
    /// tomogram must have it (within 1 %). Default: a group's finest level, any voxel size.
    #[arg(long, value_name = "Å")]
    pub voxel_size: Option<f32>,
    /// Also write every map as an OME-Zarr multiscale image beside its MRC
    /// (`<tomo>_labels.zarr`, `<tomo>_prob_<class>.zarr`).
    #[arg(long)]
    pub zarr: bool,
    /// Replace existing outputs.
    #[arg(long)]
    pub force: bool,
    /// Print a JSON summary on stdout (per tomogram: label map, windows, seconds, voxels per class).
    #[arg(long)]
    pub json: bool,
    /// Skip tomograms whose outputs are complete (for many-tomogram and cluster runs: rerun the
    /// same command after an interruption and only the missing tomograms are segmented).
    #[arg(long, conflicts_with = "force")]
    pub skip_complete: bool,
}

/// `--blend`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlendArg {
    Uniform,
    Gaussian,
    Crop,
}

/// `--normalize`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormalizeArg {
    Window,
    Tomogram,
}

/// `--probs`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbsArg {
    F16,
    F32,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    crate::purge_freed_memory_at_once();
    if args.voxel_size.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
        bail!("--voxel-size must be a positive number of Å");
    }
    if args.threads == Some(0) {
        bail!("--threads must be at least 1 (leave it out to use all cores)");
    }
    if let Some(n) = args.threads {
        capsid_nn::set_threads(n)?;
    }
    let device = capsid_nn::parse_device(&args.device)?;
    let request = segment_request(&args);
    let mut segmenter = Segmenter::from_run_dir(&args.model, device, &request)?;
    if segmenter.probs_for_peaks() {
        eprintln!(
            "the model picks some classes by peaks of their probability maps: writing them (f16)"
        );
    }
    let mut tomograms = args.tomograms.clone();
    if let Some(list) = &args.list {
        tomograms.extend(capsid_core::fsutil::read_path_list(list)?);
    }
    let mut into_project = None;
    if let Some((project, runs)) = args.copick.tomograms()? {
        tomograms.extend(runs.into_iter().map(|(_, tomo)| tomo));
        if let Some(seg_name) = &args.copick_segmentation {
            into_project = Some(CopickSegmentation::new(
                project,
                segmenter.class_names(),
                seg_name,
                &args,
            )?);
        }
    }
    let names = capsid_core::outputs::tomogram_names(&tomograms);
    // The outputs of each tomogram; with --skip-complete, tomograms whose outputs all exist are
    // left out.
    let mut jobs: Vec<(&PathBuf, &String, Vec<PathBuf>)> = Vec::new();
    let mut table: Vec<SummaryRow> = Vec::new();
    for (tomo, name) in tomograms.iter().zip(&names) {
        capsid_core::guard::check_file_name_part("tomogram name", name)
            .with_context(|| format!("{}", tomo.display()))?;
        let files = output_files(&segmenter, &args, name);
        if args.skip_complete && files.iter().all(|f| capsid_core::guard::is_complete(f)) {
            eprintln!("{}: complete; skipped", files[0].display());
            table.push(SummaryRow::new(name, "skipped (complete)"));
            continue;
        }
        jobs.push((tomo, name, files));
    }
    let created = capsid_core::guard::create_output_dir(&args.out)?;
    let result = (|| {
        let outputs: Vec<&Path> = jobs
            .iter()
            .flat_map(|(_, _, f)| f.iter().map(PathBuf::as_path))
            .collect();
        let mut inputs: Vec<&Path> = vec![&args.model];
        inputs.extend(tomograms.iter().map(PathBuf::as_path));
        let _guard = capsid_core::OutputGuard::new(&outputs, &inputs, args.force)?;
        let mut done = Vec::new();
        let mut failed = 0;
        for (tomo, name, _) in &jobs {
            let t0 = std::time::Instant::now();
            match segment_one(&mut segmenter, &args, tomo, name, into_project.as_ref()) {
                Ok(r) => {
                    let mut row = SummaryRow::new(name, "done");
                    row.windows = Some(r.windows);
                    row.seconds = Some(t0.elapsed().as_secs_f64());
                    row.voxels = r.voxels_per_label[1..].to_vec();
                    table.push(row);
                    done.push(SegmentedJson {
                        tomogram: tomo.to_path_buf(),
                        label_map: r.label_map.clone(),
                        windows: r.windows,
                        seconds: t0.elapsed().as_secs_f64(),
                        voxels_per_class: segmenter
                            .class_names()
                            .iter()
                            .cloned()
                            .zip(r.voxels_per_label[1..].iter().copied())
                            .collect(),
                    });
                }
                // One tomogram: its error is the command's.
                Err(e) if tomograms.len() == 1 => return Err(e),
                // Many: say which failed and go on with the others.
                Err(e) => {
                    eprintln!("error: {}: {e:#}", tomo.display());
                    failed += 1;
                    table.push(SummaryRow::new(name, &format!("failed: {e:#}")));
                }
            }
        }
        if tomograms.len() > 1 {
            eprint!("{}", summary_table(&table, segmenter.class_names()));
        }
        if !jobs.is_empty() {
            segmenter.record(&tomograms).write(&args.out)?;
        }
        if args.json {
            println!("{}", serde_json::to_string_pretty(&done)?);
        }
        if failed > 0 {
            bail!(
                "{failed} of {} tomograms failed (see above); rerun with --skip-complete to do only those",
                tomograms.len()
            );
        }
        anyhow::Ok(())
    })();
    if result.is_err() {
        // A failure leaves no empty output folder behind.
        capsid_core::guard::remove_created_dirs(&created);
    }
    result
}

/// The segmentation settings `args` ask for.
pub(crate) fn segment_request(args: &Args) -> SegmentRequest {
    SegmentRequest {
        patch: args.patch,
        overlap: args.overlap,
        blend: match args.blend {
            BlendArg::Uniform => Blend::Uniform,
            BlendArg::Gaussian => Blend::Gaussian,
            BlendArg::Crop => Blend::Crop,
        },
        normalize: match args.normalize {
            NormalizeArg::Window => capsid_nn::segment::Normalize::Window,
            NormalizeArg::Tomogram => capsid_nn::segment::Normalize::Tomogram,
        },
        tta: args.tta,
        batch: args.batch,
        probs: args.probs.map(|p| match p {
            ProbsArg::F16 => ProbPrecision::F16,
            ProbsArg::F32 => ProbPrecision::F32,
        }),
    }
}

/// The files `capsid segment` writes for tomogram `name` under `args.out` (the label map first;
/// the OME-Zarr copies with `--zarr`): the tomogram is complete when all of them are.
pub(crate) fn output_files(segmenter: &Segmenter, args: &Args, name: &str) -> Vec<PathBuf> {
    let mut files = segmenter.output_files(&args.out, name);
    if args.zarr {
        let images: Vec<PathBuf> = files.iter().map(|f| f.with_extension("zarr")).collect();
        files.extend(images);
    }
    files
}

/// Segments one tomogram into `args.out` (and its OME-Zarr copies with `--zarr`), printing
/// one line of counts.
fn segment_one(
    segmenter: &mut Segmenter,
    args: &Args,
    tomo: &Path,
    name: &str,
    into_project: Option<&CopickSegmentation>,
) -> anyhow::Result<capsid_nn::segment::SegmentedTomogram> {
    let source = capsid_io::VolumeSource::open_at(tomo, args.voxel_size)?;
    let header = source.header();
    let pb = crate::util::progress(segmenter.window_count(header.shape_zyx()) as u64, name);
    let r = segmenter.segment_file(&source, tomo, &args.out, name, &mut |n| pb.inc(n))?;
    pb.finish_and_clear();
    if args.zarr {
        write_zarr_copies(segmenter, &args.out, name, args.force)?;
    }
    if let Some(c) = into_project {
        let written = c.write(&r.label_map, name, header.voxel_size_a[0], args.force)?;
        eprintln!("copick segmentation: {}", written.display());
    }
    let counts: Vec<String> = segmenter
        .class_names()
        .iter()
        .enumerate()
        .map(|(k, c)| format!("{c} {}", r.voxels_per_label[k + 1]))
        .collect();
    eprintln!(
        "{}: {} windows; voxels per class: {}",
        r.label_map.display(),
        r.windows,
        counts.join(", ")
    );
    Ok(r)
}

/// One tomogram's line of the summary table printed after several tomograms.
struct SummaryRow {
    name: String,
    status: String,
    windows: Option<usize>,
    seconds: Option<f64>,
    /// Voxels of each class (label 1 first).
    voxels: Vec<u64>,
}

impl SummaryRow {
    fn new(name: &str, status: &str) -> Self {
        Self {
            name: name.to_string(),
            status: status.to_string(),
            windows: None,
            seconds: None,
            voxels: Vec::new(),
        }
    }
}

/// The summary of a many-tomogram run: one line per tomogram (done, skipped or failed, windows,
/// seconds, voxels per class) and a total line.
fn summary_table(rows: &[SummaryRow], classes: &[String]) -> String {
    use std::fmt::Write;
    let mut header: Vec<String> = ["tomogram", "windows", "seconds"]
        .map(String::from)
        .to_vec();
    header.extend(classes.iter().cloned());
    header.push("status".into());
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut c = vec![
                r.name.clone(),
                opt(r.windows.map(|w| w.to_string())),
                opt(r.seconds.map(|s| format!("{s:.1}"))),
            ];
            c.extend((0..classes.len()).map(|k| opt(r.voxels.get(k).map(|v| v.to_string()))));
            c.push(r.status.clone());
            c
        })
        .collect();
    let mut left = vec![true];
    left.extend(std::iter::repeat_n(false, 2 + classes.len()));
    left.push(true);
    let mut t = format!("\n{}", crate::util::text_table(&header, &cells, &left));
    let count = |s: &str| rows.iter().filter(|r| r.status.starts_with(s)).count();
    let _ = writeln!(
        t,
        "{} tomograms: {} done, {} skipped, {} failed",
        rows.len(),
        count("done"),
        count("skipped"),
        count("failed")
    );
    t
}

/// `--copick-segmentation`: where and how label maps go into the project.
struct CopickSegmentation {
    project: capsid_io::copick_project::Project,
    classes: Vec<String>,
    /// The object label of each of the model's labels (0 = background).
    relabel: Vec<u8>,
    name: String,
    user: String,
    session: String,
}

impl CopickSegmentation {
    /// Checks that every class of the model is an object of the project and the names are
    /// ones copick can parse back.
    fn new(
        project: capsid_io::copick_project::Project,
        classes: &[String],
        name: &str,
        args: &Args,
    ) -> anyhow::Result<Self> {
        for (what, v) in [
            ("segmentation name", name),
            ("--user-id", &args.user_id),
            ("--session-id", &args.session_id),
        ] {
            if v.is_empty() || v.contains(['_', '/', '\\']) {
                bail!("{what} '{v}': copick store names need it non-empty, without '_' or '/'");
            }
        }
        let mut relabel = vec![0u8];
        for c in classes {
            let Some(o) = project.objects.iter().find(|o| &o.name == c) else {
                bail!(
                    "{}: the model's class '{c}' is no pickable object of the project (objects: {}); a copick segmentation stores object labels",
                    project.config.display(),
                    project.objects.iter().map(|o| o.name.as_str()).collect::<Vec<_>>().join(", ")
                );
            };
            relabel.push(o.label);
        }
        Ok(Self {
            project,
            classes: classes.to_vec(),
            relabel,
            name: name.to_string(),
            user: args.user_id.clone(),
            session: args.session_id.clone(),
        })
    }

    /// Writes the label map `label_map` of run `run` (voxel size `voxel_size_a` Å) into the
    /// project's overlay; returns the store's path.
    fn write(
        &self,
        label_map: &Path,
        run: &str,
        voxel_size_a: f32,
        force: bool,
    ) -> anyhow::Result<PathBuf> {
        use capsid_io::zarr::{write_ome_zarr, MapKind, OmeZarrOptions};
        let path = capsid_io::copick_project::multilabel_segmentation_path(
            &self.project.roots[0],
            run,
            f64::from(voxel_size_a),
            &self.user,
            &self.session,
            &self.name,
        );
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("{}: cannot create the folder", dir.display()))?;
        }
        let kind = MapKind::Labels {
            classes: self.classes.clone(),
            relabel: self.relabel.clone(),
        };
        let opts = OmeZarrOptions {
            name: self.name.clone(),
            overwrite: force,
            ..OmeZarrOptions::default()
        };
        let source = capsid_io::VolumeSource::open(label_map)?;
        write_ome_zarr(&source, label_map, &path, &kind, &opts)?;
        Ok(path)
    }
}

/// `--zarr`: the label map (and probability maps) of tomogram `name` in `out` written again as
/// OME-Zarr images beside the MRC files.
fn write_zarr_copies(
    segmenter: &Segmenter,
    out: &Path,
    name: &str,
    force: bool,
) -> anyhow::Result<()> {
    use capsid_io::zarr::{write_ome_zarr, MapKind, OmeZarrOptions};
    let maps = segmenter.output_files(out, name);
    let classes = segmenter.class_names().to_vec();
    for (k, mrc) in maps.iter().enumerate() {
        let kind = if k == 0 {
            MapKind::Labels {
                classes: classes.clone(),
                relabel: vec![],
            }
        } else {
            MapKind::Values
        };
        let opts = OmeZarrOptions {
            name: mrc
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            overwrite: force,
            ..OmeZarrOptions::default()
        };
        let source = capsid_io::VolumeSource::open(mrc)?;
        write_ome_zarr(&source, mrc, &mrc.with_extension("zarr"), &kind, &opts)?;
    }
    Ok(())
}

/// One tomogram of `--json`'s summary.
#[derive(serde::Serialize)]
struct SegmentedJson {
    tomogram: PathBuf,
    label_map: PathBuf,
    windows: usize,
    seconds: f64,
    voxels_per_class: std::collections::BTreeMap<String, u64>,
}
