//! `capsid slurm`: many tomograms on a Slurm cluster. `segment` and `pick` write and submit a job
//! array (one task per tomogram, each running `capsid segment|pick` on its one input with
//! `--skip-complete`) and a gather job that depends on it (`afterany`: picks all label maps into
//! one list and, with true particles, scores them); `train` submits one job. `status` tells per
//! tomogram what is done, running, pending, failed or missing, from the outputs and from Slurm;
//! `resubmit` submits the unfinished tasks again as an array of their indices. Slurm does the
//! arrays, dependencies and requeueing; capsid writes the scripts and reads the states.
//!
//! Everything lives in `OUT/slurm/` (`RUN.slurm/` for training): `jobs.toml` (the plan: the
//! command, resources, tasks with their outputs, every submission with its job id and command),
//! `tasks.txt` (line i+1 = array task i: `NAME<TAB>INPUT`), the sbatch scripts and `logs/`.

mod plan;
mod query;
mod script;

use anyhow::{bail, Context};
use clap::FromArgMatches;
pub use plan::{Plan, Resources, Task};
use std::path::{Path, PathBuf};

/// The folder of the Slurm files inside an output folder.
pub const SLURM_DIR: &str = "slurm";
/// The gathered pick list of a segment or pick array, in the output folder.
pub const PICKS_FILE: &str = "picks.star";
/// The gathered scores (with true particles), in the output folder.
pub const EVAL_DIR: &str = "eval";

/// Arguments of `capsid slurm`.
#[derive(clap::Args)]
#[command(after_help = "\
Each tomogram is one task of a Slurm job array; a task runs capsid on its one
tomogram with --skip-complete, so a rerun does only what is missing. A gather
job waits for the array (afterany) and picks all label maps into OUT/picks.star
(and, with true particles, scores them into OUT/eval). The scripts, the task
list, the logs and jobs.toml (job ids and the sbatch commands) are in
OUT/slurm. Nothing is submitted with --dry-run.

Examples:
  capsid slurm segment runs/ribo --list tomos.txt --out seg --partition cpu \\
      --time 02:00:00 --mem 16G --cpus-per-task 8
  capsid slurm status seg
  capsid slurm resubmit seg --time 04:00:00
  capsid slurm train --out runs/ribo --partition gpu --gpus 1 --time 12:00:00 \\
      -- --model unet --data train.txt --device cuda")]
pub struct Args {
    #[command(subcommand)]
    pub command: SlurmCommand,
}

/// The subcommands of `capsid slurm`.
#[derive(clap::Subcommand)]
pub enum SlurmCommand {
    /// Segment tomograms as a job array (a task per tomogram), then pick (and score) them all.
    Segment(SegmentArgs),
    /// Pick label maps as a job array (a task per map), then gather the picks (and score them).
    Pick(PickArgs),
    /// Train a model as one Slurm job (e.g. on a GPU node).
    Train(TrainArgs),
    /// Show per tomogram: done, running, pending, failed or missing.
    Status(StatusArgs),
    /// Submit again the tasks that are neither complete nor queued, and a new gather job.
    Resubmit(ResubmitArgs),
    /// Gather the outputs of an array (what the gather job runs).
    Gather(GatherArgs),
}

/// Options of every submission.
#[derive(clap::Args, Debug, Clone)]
pub struct Submit {
    /// Job name (sbatch --job-name; logs are OUT/slurm/logs/NAME_JOBID_TASK.log) [default:
    /// capsid-segment, capsid-pick, capsid-train].
    #[arg(long, value_name = "NAME")]
    pub job_name: Option<String>,
    /// Write the scripts and jobs.toml and print the sbatch commands, but submit nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Replace the scripts and jobs.toml of an earlier submission in the same folder (the old
    /// jobs.toml is kept as jobs.toml.bak; outputs stay, and complete ones are skipped).
    #[arg(long)]
    pub force: bool,
}

/// What the arrays of `slurm segment` and `slurm pick` share: the true particles and the
/// options of the gather's scoring, the resources, the throttle and the submission switches.
#[derive(clap::Args, Debug)]
pub struct ArrayOptions {
    /// True particles of all tomograms in one list (named by rlnTomoName or a 'tomogram'
    /// column): the gather job scores the picks (`capsid evaluate`) into OUT/eval.
    #[arg(long, value_name = "FILE")]
    pub truth: Option<PathBuf>,
    /// An option of the gather's `capsid evaluate`, verbatim (repeat), e.g.
    /// --eval-arg=--tolerance=0.5.
    #[arg(long = "eval-arg", value_name = "OPTION", allow_hyphen_values = true)]
    pub eval_args: Vec<String>,
    #[command(flatten)]
    pub resources: Resources,
    /// At most this many tasks run at once (sbatch --array=…%N).
    #[arg(long, value_name = "N")]
    pub max_running: Option<u32>,
    #[command(flatten)]
    pub submit: Submit,
}

impl ArrayOptions {
    /// The truth list as an absolute path; an error when a list's second column also names
    /// true particles (`items`: inputs and their own truths).
    fn truth(&self, items: &[(PathBuf, Option<PathBuf>)]) -> anyhow::Result<Option<PathBuf>> {
        let truth = self.truth.as_deref().map(absolute).transpose()?;
        if truth.is_some() && items.iter().any(|(_, t)| t.is_some()) {
            bail!("--truth and a list's second column both name true particles: give one");
        }
        Ok(truth)
    }

    /// The plan of a `stage` array writing into `out` (its jobs in OUT/slurm).
    fn plan(&self, stage: &str, out: &Path, tasks: Vec<Task>) -> anyhow::Result<Plan> {
        Plan::new(
            stage,
            out.join(SLURM_DIR),
            out.to_path_buf(),
            capsid_binary()?,
            self.resources.clone(),
            self.max_running,
            self.submit
                .job_name
                .clone()
                .unwrap_or_else(|| format!("capsid-{stage}")),
            tasks,
        )
    }
}

/// Arguments of `capsid slurm segment`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Writes OUT/slurm/tasks.txt (line i+1 = task i), segment.sbatch (the array: task
i runs `capsid segment MODEL TOMO_i --out OUT --skip-complete --threads
$SLURM_CPUS_PER_TASK` and the options after --), gather.sbatch (after the
array: `capsid slurm gather OUT`, which picks every label map into
OUT/picks.star, and with --truth or a list's second column scores them with
`capsid evaluate` into OUT/eval) and jobs.toml; then submits both with `sbatch
--parsable` (the gather with --dependency=afterany:ARRAY). Tasks are requeued
by Slurm when a node fails (--requeue); `capsid slurm status OUT` shows
progress, `capsid slurm resubmit OUT` reruns what failed. Options after -- go
to every task's `capsid segment` and are checked before anything is submitted.

Examples:
  capsid slurm segment runs/ribo --list tomos.txt --out seg --partition cpu \\
      --account lab --time 01:00:00 --mem 8G --cpus-per-task 4
  capsid slurm segment runs/ribo t1.mrc t2.mrc t3.mrc --out seg --gpus 1 \\
      --truth truth.star -- --device cuda --tta
  capsid slurm segment runs/ribo --list tomos.txt --out seg --dry-run")]
pub struct SegmentArgs {
    /// Trained model (run folder of `capsid train`).
    pub model: PathBuf,
    /// Tomograms (MRC or OME-Zarr), one task each.
    #[arg(required_unless_present = "list")]
    pub tomograms: Vec<PathBuf>,
    /// A list file, one tomogram per line, relative to the list's folder (`#` comments); a
    /// second field is that tomogram's true particle list (a training list `TOMO PARTICLES`
    /// will do): the gather job then scores the picks.
    #[arg(long, value_name = "FILE")]
    pub list: Option<PathBuf>,
    /// Output folder (label maps as `capsid segment` names them; OUT/slurm for the jobs).
    #[arg(long)]
    pub out: PathBuf,
    /// Class table for picking and scoring [default: MODEL/class_table.toml].
    #[arg(long, value_name = "TOML")]
    pub classes: Option<PathBuf>,
    /// An option of the gather's `capsid pick`, verbatim (repeat), e.g. --pick-arg=--bin=2.
    #[arg(long = "pick-arg", value_name = "OPTION", allow_hyphen_values = true)]
    pub pick_args: Vec<String>,
    #[command(flatten)]
    pub array: ArrayOptions,
    /// Options of `capsid segment` for every task, after --.
    #[arg(last = true, value_name = "SEGMENT OPTIONS")]
    pub segment_args: Vec<String>,
}

/// Arguments of `capsid slurm pick`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Like `capsid slurm segment`, for label maps: task i runs `capsid pick MAP_i
--classes TOML --out OUT/<tomo>_picks.star --skip-complete` and the options
after --; the gather job joins the lists into OUT/picks.star (picks named by
tomogram) and with --truth scores them into OUT/eval.

Examples:
  capsid slurm pick seg/t1_labels.mrc seg/t2_labels.mrc --classes classes.toml \\
      --out picks --time 00:30:00 --mem 4G --cpus-per-task 2
  capsid slurm pick --list maps.txt --classes classes.toml --out picks \\
      --truth truth.star -- --bin 2")]
pub struct PickArgs {
    /// Label maps (MRC), one task each.
    #[arg(required_unless_present = "list")]
    pub maps: Vec<PathBuf>,
    /// A list file, one label map per line, relative to the list's folder (`#` comments); a
    /// second field is that tomogram's true particle list.
    #[arg(long, value_name = "FILE")]
    pub list: Option<PathBuf>,
    /// Class table (TOML): names, labels, radii.
    #[arg(long, value_name = "TOML")]
    pub classes: PathBuf,
    /// Output folder (a list per tomogram, the joined OUT/picks.star; OUT/slurm for the jobs).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub array: ArrayOptions,
    /// Options of `capsid pick` for every task, after --.
    #[arg(last = true, value_name = "PICK OPTIONS")]
    pub pick_args: Vec<String>,
}

/// Arguments of `capsid slurm train`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Writes RUN.slurm/train.sbatch (one job: `capsid train OPTIONS --out RUN`; when
Slurm requeues it after the run has started, `capsid train --resume` continues
from RUN/last) and RUN.slurm/jobs.toml, and submits it. On a GPU node give
--gpus N for Slurm and --device (cuda, rocm, wgpu or vulkan) for capsid, with a
capsid built with that feature (`cargo build --release -p capsid-cli --features
cuda`); without --device capsid trains on the node's CPUs (--cpus-per-task
threads). The GPU path has not been run on a GPU cluster yet: see the README's
Slurm section.

Examples:
  capsid slurm train --out runs/ribo --partition gpu --gpus 1 --time 12:00:00 \\
      --mem 32G --cpus-per-task 8 -- --model unet --data train.txt --device cuda
  capsid slurm train --out runs/tiny --time 00:10:00 --cpus-per-task 2 \\
      -- --model unet --data sim --patch 32 --epochs 5 --steps 20")]
pub struct TrainArgs {
    /// Run folder of the training.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub resources: Resources,
    #[command(flatten)]
    pub submit: Submit,
    /// Options of `capsid train` (all but --out), after --.
    #[arg(last = true, value_name = "TRAIN OPTIONS", required = true)]
    pub train_args: Vec<String>,
}

/// Arguments of `capsid slurm status`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
A row per tomogram (task): done when its outputs are complete, otherwise the
state Slurm gives its last submission: running, pending, failed (FAILED,
CANCELLED, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, … or COMPLETED without outputs)
or missing (not submitted, or Slurm no longer knows the job). States come from
`sacct` where accounting is configured, otherwise from `squeue` and `scontrol
show job` (which keep finished jobs for MinJobAge, 5 min by default). Then the
gather job's state and the gathered files.

Examples:
  capsid slurm status seg
  capsid slurm status runs/ribo.slurm --json")]
pub struct StatusArgs {
    /// Output folder of `capsid slurm segment|pick` (or its slurm folder, or RUN.slurm).
    pub dir: PathBuf,
    /// Print the rows as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `capsid slurm resubmit`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Submits the same script again as `sbatch --array=i,j,…` with only the tasks
that are failed or missing (see `capsid slurm status`; running and pending ones
are left alone), cancels a gather job still pending from before and submits a
new one after the new array. Options given here go on the sbatch command line
and override the script's (e.g. more time after TIMEOUT).

Examples:
  capsid slurm resubmit seg
  capsid slurm resubmit seg --time 04:00:00 --mem 32G
  capsid slurm resubmit seg --dry-run")]
pub struct ResubmitArgs {
    /// Output folder of `capsid slurm segment|pick|train`.
    pub dir: PathBuf,
    /// Wall-time limit for the resubmitted tasks ([D-]HH:MM:SS).
    #[arg(long, value_name = "[D-]HH:MM:SS")]
    pub time: Option<String>,
    /// Memory per task for the resubmitted tasks (e.g. 16G).
    #[arg(long)]
    pub mem: Option<String>,
    /// Partition for the resubmitted tasks.
    #[arg(long)]
    pub partition: Option<String>,
    /// Print the sbatch commands, submit nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Arguments of `capsid slurm gather`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
The gather job runs this after the array. It fails with the names of the
tomograms without complete outputs (resubmit them, a new gather follows);
otherwise it picks every label map into OUT/picks.star (segment arrays) or
joins the per-tomogram lists (pick arrays), and with true particles scores them
into OUT/eval. Files that are complete are kept.

Examples:
  capsid slurm gather seg")]
pub struct GatherArgs {
    /// Output folder of `capsid slurm segment|pick`.
    pub dir: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        SlurmCommand::Segment(a) => submit_segment(a),
        SlurmCommand::Pick(a) => submit_pick(a),
        SlurmCommand::Train(a) => submit_train(a),
        SlurmCommand::Status(a) => status(a),
        SlurmCommand::Resubmit(a) => resubmit(a),
        SlurmCommand::Gather(a) => gather(a),
    }
}

/// Parses `argv` (without the program name) as the options of `capsid NAME`, as a task will
/// run them: errors are one line naming the command.
fn parse_as<A: clap::Args + FromArgMatches>(
    name: &'static str,
    argv: &[String],
) -> anyhow::Result<A> {
    let cmd = A::augment_args(clap::Command::new(name).no_binary_name(true));
    let m = cmd.try_get_matches_from(argv).map_err(|e| {
        let text = e.to_string();
        let first = text
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("invalid options")
            .trim_start_matches("error: ")
            .to_string();
        anyhow::anyhow!("capsid {name} {}: {first}", argv.join(" "))
    })?;
    A::from_arg_matches(&m).map_err(|e| anyhow::anyhow!("capsid {name}: {e}"))
}

/// The absolute form of `p` (from the current folder; not resolving links), as jobs run
/// elsewhere.
fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(p)
        .with_context(|| format!("{}: cannot make the path absolute", p.display()))
}

/// The inputs of an array and their true particle lists: the arguments, then the list's lines
/// (`INPUT [TRUTH …]`, relative to the list's folder).
fn inputs_and_truths(
    args: &[PathBuf],
    list: Option<&Path>,
) -> anyhow::Result<Vec<(PathBuf, Option<PathBuf>)>> {
    let mut out: Vec<(PathBuf, Option<PathBuf>)> = args.iter().map(|p| (p.clone(), None)).collect();
    if let Some(list) = list {
        let inputs = capsid_core::fsutil::read_path_list(list)?;
        let text = std::fs::read_to_string(list).with_context(|| format!("{}", list.display()))?;
        let base = list.parent().unwrap_or(Path::new("."));
        let truths = text
            .lines()
            .map(str::trim)
            .filter(|t| !t.is_empty() && !t.starts_with('#'))
            .map(|t| {
                t.split_whitespace()
                    .nth(1)
                    .filter(|f| !f.starts_with('#') && *f != "-")
                    .map(|f| base.join(f))
            });
        out.extend(inputs.into_iter().zip(truths));
    }
    for (p, t) in &mut out {
        *p = absolute(p)?;
        if let Some(t) = t {
            *t = absolute(t)?;
        }
    }
    Ok(out)
}

/// Refuses names or paths a tab-separated task list or a shell line could not carry.
fn check_task_field(what: &str, s: &str) -> anyhow::Result<()> {
    if s.contains(['\t', '\n', '\r']) {
        bail!(
            "{what} '{}': tabs and line breaks cannot go into the task list",
            s.escape_default()
        );
    }
    Ok(())
}

/// The capsid binary the jobs run: this one.
fn capsid_binary() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("cannot find the path of the capsid binary")
}

/// The folder that holds jobs.toml: `DIR/slurm`, `DIR` itself, or `DIR.slurm` for a run folder.
fn plan_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    let mut candidates = vec![dir.join(SLURM_DIR), dir.to_path_buf()];
    let mut s = dir.as_os_str().to_owned();
    s.push(".slurm");
    candidates.push(PathBuf::from(s));
    candidates
        .into_iter()
        .find(|c| c.join(plan::JOBS_FILE).is_file())
        .with_context(|| {
            format!(
                "{}: no {} (in it, in {}/ or beside it as .slurm): was it submitted with `capsid slurm`?",
                dir.display(),
                plan::JOBS_FILE,
                SLURM_DIR
            )
        })
}

fn submit_segment(a: SegmentArgs) -> anyhow::Result<()> {
    let model = absolute(&a.model)?;
    let out = absolute(&a.out)?;
    let items = inputs_and_truths(&a.tomograms, a.list.as_deref())?;
    let classes = absolute(
        &a.classes
            .clone()
            .unwrap_or_else(|| model.join("class_table.toml")),
    )?;
    if !classes.is_file() {
        bail!("{}: no class table (give --classes)", classes.display());
    }
    let truth = a.array.truth(&items)?;
    // Every task's `capsid segment`, parsed as the task will run it (errors now, not in N logs).
    let paths: Vec<PathBuf> = items.iter().map(|(p, _)| p.clone()).collect();
    let names = capsid_core::outputs::tomogram_names(&paths);
    let probe = |tomo: &Path| -> anyhow::Result<super::segment::Args> {
        let mut argv = vec![
            model.display().to_string(),
            tomo.display().to_string(),
            "--out".into(),
            out.display().to_string(),
            "--skip-complete".into(),
        ];
        argv.extend(a.segment_args.iter().cloned());
        parse_as("segment", &argv)
    };
    let seg_args = probe(&paths[0])?;
    if seg_args.list.is_some() || seg_args.copick.copick.is_some() || seg_args.tomograms.len() != 1
    {
        bail!("options after --: the tasks' tomograms come from capsid slurm's arguments or --list; give no tomograms, --list or --copick there");
    }
    if seg_args.copick_segmentation.is_some() {
        bail!("options after --: --copick-segmentation needs --copick, which capsid slurm does not pass on");
    }
    // The outputs of each tomogram, as `capsid segment` names them (the model says whether
    // probability maps are written).
    let request = super::segment::segment_request(&seg_args);
    let segmenter = capsid_nn::segment::Segmenter::from_run_dir(
        &model,
        capsid_nn::parse_device("flex")?,
        &request,
    )?;
    let mut tasks = Vec::with_capacity(items.len());
    for (i, ((tomo, t), name)) in items.iter().zip(&names).enumerate() {
        let alone = capsid_core::outputs::tomogram_name(tomo);
        if &alone != name {
            let other = paths
                .iter()
                .zip(&names)
                .find(|(p, _)| *p != tomo && capsid_core::outputs::tomogram_name(p) == alone)
                .map(|(p, _)| p.display().to_string())
                .unwrap_or_default();
            bail!(
                "{} and {other}: both are tomogram '{alone}', and a task segmenting one alone would write the other's outputs; give them distinct file names (e.g. symbolic links)",
                tomo.display()
            );
        }
        capsid_core::guard::check_file_name_part("tomogram name", name)
            .with_context(|| format!("{}", tomo.display()))?;
        check_task_field("tomogram", &tomo.display().to_string())?;
        tasks.push(Task {
            index: i,
            name: name.clone(),
            input: tomo.clone(),
            truth: t.clone(),
            outputs: super::segment::output_files(&segmenter, &seg_args, name),
        });
    }
    let plan = a.array.plan("segment", &out, tasks)?.with_gather(
        classes,
        truth,
        a.pick_args.clone(),
        a.array.eval_args.clone(),
    );
    let task_line = script::TaskLine {
        argv_before_input: vec!["segment".into(), model.display().to_string()],
        argv_after_input: {
            let mut v = vec![
                "--out".to_string(),
                out.display().to_string(),
                "--skip-complete".into(),
            ];
            v.extend(a.segment_args.iter().cloned());
            v
        },
        out_per_task: None,
        threads: seg_args.threads.is_none(),
    };
    // The gather's pick and evaluate options, checked now.
    plan.check_gather_args()?;
    submit_array(plan, &task_line, &a.array.submit, a.segment_args.clone())
}

fn submit_pick(a: PickArgs) -> anyhow::Result<()> {
    let out = absolute(&a.out)?;
    let classes_path = absolute(&a.classes)?;
    let classes = capsid_core::ClassTable::load(&classes_path)?;
    let items = inputs_and_truths(&a.maps, a.list.as_deref())?;
    let truth = a.array.truth(&items)?;
    let class_names = classes.names();
    let mut tasks: Vec<Task> = Vec::with_capacity(items.len());
    for (i, (map, t)) in items.iter().enumerate() {
        let stem = map
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name =
            capsid_core::outputs::tomogram_of_map(&stem, class_names.iter().map(String::as_str));
        capsid_core::guard::check_file_name_part("tomogram name", &name)
            .with_context(|| format!("{}", map.display()))?;
        check_task_field("label map", &map.display().to_string())?;
        if let Some(other) = tasks.iter().find(|t| t.name == name) {
            bail!(
                "{} and {}: both are tomogram '{name}'; their pick lists would be one file",
                other.input.display(),
                map.display()
            );
        }
        let list = out.join(format!("{name}_picks.star"));
        let argv: Vec<String> = [
            map.display().to_string(),
            "--classes".into(),
            classes_path.display().to_string(),
            "--out".into(),
            list.display().to_string(),
            "--skip-complete".into(),
        ]
        .into_iter()
        .chain(a.pick_args.iter().cloned())
        .collect();
        let p: super::pick::Args = parse_as("pick", &argv)?;
        if p.labels.len() != 1 || p.list.is_some() {
            bail!("options after --: the tasks' label maps come from capsid slurm's arguments or --list; give none there");
        }
        tasks.push(Task {
            index: i,
            name,
            input: map.clone(),
            truth: t.clone(),
            outputs: vec![list.clone(), capsid_pick::stage::record_file(&list)],
        });
    }
    let plan = a.array.plan("pick", &out, tasks)?.with_gather(
        classes_path.clone(),
        truth,
        Vec::new(),
        a.array.eval_args.clone(),
    );
    plan.check_gather_args()?;
    let task_line = script::TaskLine {
        argv_before_input: vec!["pick".into()],
        argv_after_input: {
            let mut v = vec!["--classes".to_string(), classes_path.display().to_string()];
            v.extend(a.pick_args.iter().cloned());
            v.push("--skip-complete".into());
            v
        },
        out_per_task: Some(("--out".into(), out.clone(), "_picks.star".into())),
        threads: false,
    };
    submit_array(plan, &task_line, &a.array.submit, a.pick_args.clone())
}

/// Writes the scripts and jobs.toml of an array plan, then submits the array and its gather.
fn submit_array(
    mut plan: Plan,
    task_line: &script::TaskLine,
    submit: &Submit,
    task_args: Vec<String>,
) -> anyhow::Result<()> {
    plan.task_args = task_args;
    let dir = plan.dir.clone();
    prepare_plan_dir(&dir, submit.force)?;
    let n = plan.tasks.len();
    let array = format!(
        "{}{}",
        script::array_spec(&(0..n).collect::<Vec<_>>()),
        plan.max_running
            .map(|m| format!("%{m}"))
            .unwrap_or_default()
    );
    let task_script = script::task_script(&plan, task_line, &array);
    let gather_script = script::gather_script(&plan);
    plan.write_file(&plan.tasks_file(), &script::tasks_file(&plan.tasks))?;
    plan.write_file(&plan.script, &task_script)?;
    if let Some(g) = &plan.gather_script {
        plan.write_file(g, &gather_script)?;
    }
    plan.write()?;
    eprintln!(
        "{n} {} task(s); scripts and task list in {}",
        plan.stage,
        dir.display()
    );
    if submit.dry_run {
        println!("sbatch --parsable {}", plan.script.display());
        if let Some(g) = &plan.gather_script {
            println!(
                "sbatch --parsable --dependency=afterany:<ARRAY_JOB_ID> {}",
                g.display()
            );
        }
        eprintln!("--dry-run: nothing submitted");
        return Ok(());
    }
    let script = plan.script.clone();
    let (array_id, gather_id) = submit_with_gather(&mut plan, &[], &script, array.clone())?;
    println!(
        "submitted array job {array_id} ({n} task(s)){}; `capsid slurm status {}` shows progress",
        gather_id
            .map(|g| format!(", gather job {g} after it"))
            .unwrap_or_default(),
        plan.out.display()
    );
    Ok(())
}

/// Submits the array `script` (tasks `array`, extra sbatch options `task_opts`), then the
/// plan's gather job, if it has one, after it (`afterany`); their job ids.
fn submit_with_gather(
    plan: &mut Plan,
    task_opts: &[String],
    script: &Path,
    array: String,
) -> anyhow::Result<(String, Option<String>)> {
    let array_id = plan.submit("tasks", task_opts, script, Some(array), None)?;
    let gather_id = match plan.gather_script.clone() {
        Some(g) => Some(plan.submit(
            "gather",
            &[format!("--dependency=afterany:{array_id}")],
            &g,
            None,
            Some(array_id.clone()),
        )?),
        None => None,
    };
    Ok((array_id, gather_id))
}

/// Creates the plan's folder and its logs folder; refuses an earlier plan that submitted jobs
/// unless `force` (which keeps a copy of the old jobs.toml). A plan that submitted nothing
/// (`--dry-run`, or sbatch refused it) is replaced.
fn prepare_plan_dir(dir: &Path, force: bool) -> anyhow::Result<()> {
    let jobs = dir.join(plan::JOBS_FILE);
    let submitted = Plan::read(dir).map_or(true, |p| !p.submissions.is_empty());
    if jobs.is_file() && submitted {
        if !force {
            bail!(
                "{}: already exists (an earlier submission); `capsid slurm status` and `capsid slurm resubmit` continue it, --force replaces it",
                jobs.display()
            );
        }
        capsid_core::guard::keep_backup(&jobs)?;
    }
    std::fs::create_dir_all(dir.join(plan::LOGS_DIR)).with_context(|| {
        format!(
            "{}: cannot create the folder",
            dir.join(plan::LOGS_DIR).display()
        )
    })?;
    Ok(())
}

fn submit_train(a: TrainArgs) -> anyhow::Result<()> {
    let out = absolute(&a.out)?;
    let mut argv = a.train_args.clone();
    argv.extend(["--out".to_string(), out.display().to_string()]);
    let t: super::train::Args = parse_as("train", &argv)?;
    if a.resources.gpus.is_some_and(|g| g > 0) && t.device == "flex" {
        eprintln!(
            "warning: --gpus without --device after --: capsid trains on the CPU unless told --device cuda|rocm|wgpu|vulkan (with a build of that feature)"
        );
    }
    let mut dir = out.as_os_str().to_owned();
    dir.push(".slurm");
    let dir = PathBuf::from(dir);
    let mut plan = Plan::new(
        "train",
        dir.clone(),
        out.clone(),
        capsid_binary()?,
        a.resources.clone(),
        None,
        a.submit
            .job_name
            .clone()
            .unwrap_or_else(|| "capsid-train".into()),
        vec![Task {
            index: 0,
            name: out
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "run".into()),
            input: out.clone(),
            truth: None,
            outputs: vec![out.join("net.toml"), out.join("weights.bpk")],
        }],
    )?;
    plan.task_args = a.train_args.clone();
    prepare_plan_dir(&dir, a.submit.force)?;
    let text = script::train_script(&plan, &a.train_args, t.threads.is_none());
    plan.write_file(&plan.script, &text)?;
    plan.write()?;
    if a.submit.dry_run {
        println!("sbatch --parsable {}", plan.script.display());
        eprintln!("--dry-run: nothing submitted");
        return Ok(());
    }
    let id = plan.submit("train", &[], &plan.script.clone(), None, None)?;
    println!(
        "submitted training job {id}; log in {}; `capsid slurm status {}` shows its state",
        dir.join(plan::LOGS_DIR).display(),
        dir.display()
    );
    Ok(())
}

/// What a task is at: from its outputs and Slurm's state of its last submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Progress {
    Done,
    Running,
    Pending,
    Failed,
    Missing,
}

impl Progress {
    fn name(self) -> &'static str {
        match self {
            Progress::Done => "done",
            Progress::Running => "running",
            Progress::Pending => "pending",
            Progress::Failed => "failed",
            Progress::Missing => "missing",
        }
    }
}

/// One row of `capsid slurm status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TaskStatus {
    pub index: usize,
    pub name: String,
    /// `ARRAYID_INDEX` (or the job id) of the last submission, if any.
    pub job: Option<String>,
    /// Slurm's state of that job, if Slurm knows it (e.g. `CANCELLED`, `RUNNING`).
    pub slurm_state: Option<String>,
    pub outputs_complete: usize,
    pub outputs: usize,
    pub progress: Progress,
}

/// The progress of a task with `complete` of its outputs complete out of `total`, and Slurm's
/// state of its last submission (`None`: no submission, or Slurm no longer knows it).
pub fn progress_of(complete: usize, total: usize, state: Option<&str>) -> Progress {
    match state.map(query::StateKind::of) {
        Some(query::StateKind::Running) => Progress::Running,
        Some(query::StateKind::Pending) => Progress::Pending,
        _ if complete == total => Progress::Done,
        Some(query::StateKind::Finished) | Some(query::StateKind::Ended) => Progress::Failed,
        None => Progress::Missing,
    }
}

/// The rows of `capsid slurm status` (and what `capsid slurm gather` knows of the gather job).
fn task_statuses(plan: &Plan, slurm: &mut query::Slurm) -> Vec<TaskStatus> {
    plan.tasks
        .iter()
        .map(|t| {
            let complete = t
                .outputs
                .iter()
                .filter(|o| capsid_core::guard::is_complete(o))
                .count();
            let sub = plan.last_submission_of(t.index);
            let (job, state) = match sub {
                Some(s) if s.array.is_some() => (
                    Some(format!("{}_{}", s.job_id, t.index)),
                    slurm.task_state(&s.job_id, Some(t.index)),
                ),
                Some(s) => (Some(s.job_id.clone()), slurm.task_state(&s.job_id, None)),
                None => (None, None),
            };
            TaskStatus {
                index: t.index,
                name: t.name.clone(),
                job,
                progress: progress_of(complete, t.outputs.len(), state.as_deref()),
                slurm_state: state,
                outputs_complete: complete,
                outputs: t.outputs.len(),
            }
        })
        .collect()
}

fn status(a: StatusArgs) -> anyhow::Result<()> {
    let plan = Plan::read(&plan_dir(&a.dir)?)?;
    let mut slurm = query::Slurm::new();
    let rows = task_statuses(&plan, &mut slurm);
    let gather = plan
        .submissions
        .iter()
        .rev()
        .find(|s| s.role == "gather")
        .map(|s| (s.job_id.clone(), slurm.task_state(&s.job_id, None)));
    if a.json {
        let v = serde_json::json!({
            "stage": plan.stage,
            "tasks": rows,
            "gather": gather.as_ref().map(|(id, st)| serde_json::json!({"job": id, "slurm_state": st})),
            "picks_complete": plan.gather_script.as_ref().map(|_| capsid_core::guard::is_complete(&plan.out.join(PICKS_FILE))),
            "slurm_states_from": slurm.source(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    print!("{}", status_table(&rows));
    let count = |p: Progress| rows.iter().filter(|r| r.progress == p).count();
    println!(
        "{} {}: {} done, {} running, {} pending, {} failed, {} missing (Slurm states from {})",
        rows.len(),
        if plan.stage == "train" {
            "job"
        } else {
            "tomograms"
        },
        count(Progress::Done),
        count(Progress::Running),
        count(Progress::Pending),
        count(Progress::Failed),
        count(Progress::Missing),
        slurm.source()
    );
    if let Some((id, state)) = gather {
        let picks = plan.out.join(PICKS_FILE);
        let eval = plan
            .out
            .join(EVAL_DIR)
            .join(capsid_eval::stage::SUMMARY_JSON);
        println!(
            "gather job {id}: {}; {}: {}{}",
            state.as_deref().unwrap_or("unknown to Slurm"),
            picks.display(),
            if capsid_core::guard::is_complete(&picks) {
                "complete"
            } else {
                "not yet"
            },
            if plan.has_truth() {
                format!(
                    "; {}: {}",
                    eval.display(),
                    if eval.is_file() {
                        "complete"
                    } else {
                        "not yet"
                    }
                )
            } else {
                String::new()
            }
        );
    }
    if count(Progress::Failed) + count(Progress::Missing) > 0 {
        println!(
            "`capsid slurm resubmit {}` submits the failed and missing ones again (logs in {})",
            a.dir.display(),
            plan.dir.join(plan::LOGS_DIR).display()
        );
    }
    Ok(())
}

/// The status rows as a text table.
fn status_table(rows: &[TaskStatus]) -> String {
    let header: Vec<String> = ["task", "tomogram", "job", "slurm", "outputs", "status"]
        .map(String::from)
        .to_vec();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.index.to_string(),
                r.name.clone(),
                r.job.clone().unwrap_or_else(|| "-".into()),
                r.slurm_state.clone().unwrap_or_else(|| "-".into()),
                format!("{}/{}", r.outputs_complete, r.outputs),
                r.progress.name().to_string(),
            ]
        })
        .collect();
    crate::util::text_table(&header, &cells, &[false, true, true, true, false, true])
}

fn resubmit(a: ResubmitArgs) -> anyhow::Result<()> {
    let mut plan = Plan::read(&plan_dir(&a.dir)?)?;
    let mut slurm = query::Slurm::new();
    let rows = task_statuses(&plan, &mut slurm);
    let again: Vec<usize> = rows
        .iter()
        .filter(|r| matches!(r.progress, Progress::Failed | Progress::Missing))
        .map(|r| r.index)
        .collect();
    let queued = rows
        .iter()
        .filter(|r| matches!(r.progress, Progress::Running | Progress::Pending))
        .count();
    if again.is_empty() {
        println!(
            "nothing to resubmit: {} done, {queued} running or pending",
            rows.len() - queued
        );
        return Ok(());
    }
    let mut extra = Vec::new();
    for (flag, v) in [
        ("--time", &a.time),
        ("--mem", &a.mem),
        ("--partition", &a.partition),
    ] {
        if let Some(v) = v {
            plan::check_option(flag, v)?;
            extra.push(format!("{flag}={v}"));
        }
    }
    let names: Vec<&str> = again.iter().map(|i| plan.tasks[*i].name.as_str()).collect();
    eprintln!(
        "resubmitting {} of {} ({}){}",
        again.len(),
        rows.len(),
        names.join(", "),
        if queued > 0 {
            format!("; {queued} running or pending left alone")
        } else {
            String::new()
        }
    );
    let script = plan.script.clone();
    if plan.stage == "train" {
        if a.dry_run {
            println!("sbatch --parsable {} {}", extra.join(" "), script.display());
            return Ok(());
        }
        let id = plan.submit("train", &extra, &script, None, None)?;
        println!("submitted training job {id}");
        return Ok(());
    }
    let array = format!(
        "{}{}",
        script::array_spec(&again),
        plan.max_running
            .map(|m| format!("%{m}"))
            .unwrap_or_default()
    );
    let mut task_opts = vec![format!("--array={array}")];
    task_opts.extend(extra);
    if a.dry_run {
        println!(
            "sbatch --parsable {} {}",
            task_opts.join(" "),
            script.display()
        );
        if let Some(g) = &plan.gather_script {
            println!(
                "sbatch --parsable --dependency=afterany:<ARRAY_JOB_ID> {}",
                g.display()
            );
        }
        eprintln!("--dry-run: nothing submitted");
        return Ok(());
    }
    // A gather job still waiting for the earlier array would run before the new tasks end.
    let pending_gathers: Vec<String> = plan
        .submissions
        .iter()
        .filter(|s| s.role == "gather")
        .filter(|s| {
            slurm
                .task_state(&s.job_id, None)
                .as_deref()
                .map(query::StateKind::of)
                == Some(query::StateKind::Pending)
        })
        .map(|s| s.job_id.clone())
        .collect();
    for id in &pending_gathers {
        query::run_slurm("scancel", std::slice::from_ref(id))?;
        eprintln!("cancelled the pending gather job {id}");
    }
    let (array_id, gather_id) = submit_with_gather(&mut plan, &task_opts, &script, array)?;
    println!(
        "submitted array job {array_id} ({} task(s)){}",
        again.len(),
        gather_id
            .map(|g| format!(", gather job {g} after it"))
            .unwrap_or_default()
    );
    Ok(())
}

fn gather(a: GatherArgs) -> anyhow::Result<()> {
    let plan = Plan::read(&plan_dir(&a.dir)?)?;
    if plan.stage == "train" {
        bail!("{}: a training job has nothing to gather", a.dir.display());
    }
    let incomplete: Vec<&Task> = plan
        .tasks
        .iter()
        .filter(|t| !t.outputs.iter().all(|o| capsid_core::guard::is_complete(o)))
        .collect();
    if !incomplete.is_empty() {
        let names: Vec<&str> = incomplete.iter().map(|t| t.name.as_str()).collect();
        bail!(
            "{} of {} tomograms have no complete outputs ({}): see `capsid slurm status {}`, then `capsid slurm resubmit {}`",
            incomplete.len(),
            plan.tasks.len(),
            names.join(", "),
            plan.out.display(),
            plan.out.display()
        );
    }
    let picks = plan.out.join(PICKS_FILE);
    if capsid_core::guard::is_complete(&picks) {
        eprintln!("{}: complete; kept", picks.display());
    } else {
        match plan.stage.as_str() {
            "segment" => {
                let mut argv: Vec<String> = plan
                    .tasks
                    .iter()
                    .map(|t| t.outputs[0].display().to_string())
                    .collect();
                argv.extend(plan.gather_pick_argv(&picks));
                eprintln!("capsid pick {}", argv.join(" "));
                super::pick::run(parse_as("pick", &argv)?)?;
            }
            _ => join_pick_lists(&plan, &picks)?,
        }
    }
    if let Some(truth) = plan.truth_for_gather()? {
        let summary = plan
            .out
            .join(EVAL_DIR)
            .join(capsid_eval::stage::SUMMARY_JSON);
        if summary.is_file() {
            eprintln!("{}: complete; kept", summary.display());
        } else {
            let mut argv = plan.gather_eval_argv(&picks, &truth);
            // Class radii may be in Å: the voxel size of the maps converts them.
            if !argv.iter().any(|a| a.starts_with("--voxel-size")) {
                let task = &plan.tasks[0];
                let map = if plan.stage == "segment" {
                    &task.outputs[0]
                } else {
                    &task.input
                };
                let v = capsid_io::mrc::read_header(map)?.voxel_size_a[0];
                if v > 0.0 {
                    argv.extend(["--voxel-size".to_string(), v.to_string()]);
                }
            }
            eprintln!("capsid evaluate {}", argv.join(" "));
            super::evaluate::run(parse_as("evaluate", &argv)?)?;
        }
    }
    Ok(())
}

/// A pick array's gather: the per-tomogram lists joined into `to`, each pick named by its
/// tomogram.
fn join_pick_lists(plan: &Plan, to: &Path) -> anyhow::Result<()> {
    use capsid_io::particles::{read_particles, write_particles, ReadOptions, WriteOptions};
    let classes = plan
        .classes
        .as_deref()
        .map(capsid_core::ClassTable::load)
        .transpose()?;
    let mut all = Vec::new();
    for t in &plan.tasks {
        let opts = ReadOptions {
            default_tomogram: Some(t.name.clone()),
            ..ReadOptions::default()
        };
        // A list without picks is refused by the reader; its record says it is one.
        let record = capsid_pick::stage::record_file(&t.outputs[0]);
        let n_picks = std::fs::read_to_string(&record)
            .ok()
            .and_then(|text| text.parse::<toml::Table>().ok())
            .and_then(|r| r.get("n_picks").and_then(toml::Value::as_integer));
        let picks = if n_picks == Some(0) {
            Vec::new()
        } else {
            read_particles(&t.outputs[0], &opts)?
        };
        eprintln!("{}: {} picks", t.name, picks.len());
        all.extend(picks);
    }
    let _guard = capsid_core::OutputGuard::new(&[to], &[], false)?;
    let opts = WriteOptions {
        classes,
        ..WriteOptions::default()
    };
    write_particles(to, &all, &opts)?;
    println!(
        "{} picks of {} tomograms → {}",
        all.len(),
        plan.tasks.len(),
        to.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests;
