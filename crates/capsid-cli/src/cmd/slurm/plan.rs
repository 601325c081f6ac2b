//! `jobs.toml`: what `capsid slurm` submitted (the command, the resources, the tasks with their
//! outputs, every submission with its job id and sbatch command), read back by `status`,
//! `resubmit` and `gather`.

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The plan's file name.
pub const JOBS_FILE: &str = "jobs.toml";
/// The task list's file name (line i+1 = array task i: `NAME<TAB>INPUT`).
pub const TASKS_FILE: &str = "tasks.txt";
/// The folder of the job logs.
pub const LOGS_DIR: &str = "logs";

/// Slurm resources of every task (and of the gather job, without GPUs).
#[derive(clap::Args, Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resources {
    /// Partition (sbatch --partition) [default: the cluster's default partition].
    #[arg(long)]
    pub partition: Option<String>,
    /// Account to charge (sbatch --account) [default: yours].
    #[arg(long)]
    pub account: Option<String>,
    /// Wall-time limit of each task, [D-]HH:MM:SS or minutes (sbatch --time) [default: the
    /// partition's].
    #[arg(long, value_name = "[D-]HH:MM:SS")]
    pub time: Option<String>,
    /// Memory of each task, e.g. 8G (sbatch --mem) [default: the partition's].
    #[arg(long, value_name = "SIZE")]
    pub mem: Option<String>,
    /// CPU cores of each task (sbatch --cpus-per-task); capsid runs as many threads.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub cpus_per_task: u32,
    /// GPUs of each task (sbatch --gpus; clusters that count GPUs as generic resources take
    /// --sbatch-arg=--gres=gpu:N instead). capsid uses them with --device after --.
    #[arg(long, value_name = "N")]
    pub gpus: Option<u32>,
    /// Any other sbatch option, verbatim (repeat), e.g. --sbatch-arg=--qos=long or
    /// --sbatch-arg=--constraint=avx512.
    #[arg(long = "sbatch-arg", value_name = "OPTION", allow_hyphen_values = true)]
    pub sbatch_args: Vec<String>,
}

/// One task of the array: a tomogram (or label map) and the outputs that make it complete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// The array index (SLURM_ARRAY_TASK_ID): line index+1 of tasks.txt.
    pub index: usize,
    /// The tomogram's name (as its outputs and rlnTomoName carry it).
    pub name: String,
    /// The tomogram, label map or (training) run folder.
    pub input: PathBuf,
    /// Its true particles, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truth: Option<PathBuf>,
    /// The files the task writes; it is done when all are complete.
    pub outputs: Vec<PathBuf>,
}

/// One `sbatch` call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    /// `tasks` (an array), `gather` or `train`.
    pub role: String,
    /// The job id sbatch returned (an array's id for all its tasks).
    pub job_id: String,
    /// The array indices submitted (`0-2`, `1,4`), for arrays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array: Option<String>,
    /// The job it waits for (afterany), for gather jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// The exact command.
    pub command: String,
    /// When (UTC).
    pub submitted: String,
}

/// The plan of a `capsid slurm` submission, `jobs.toml` in its folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub capsid_version: String,
    /// `segment`, `pick` or `train`.
    pub stage: String,
    /// The `capsid slurm …` command line that made the plan.
    pub command: Vec<String>,
    /// The capsid binary the jobs run.
    pub capsid: PathBuf,
    /// The output folder (the run folder for training).
    pub out: PathBuf,
    /// The folder of jobs.toml, the scripts and the logs.
    pub dir: PathBuf,
    /// The job script (an array for segment and pick).
    pub script: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gather_script: Option<PathBuf>,
    pub job_name: String,
    /// The options after -- given to every task's capsid command.
    #[serde(default)]
    pub task_args: Vec<String>,
    /// The class table of the gather's pick and evaluate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<PathBuf>,
    /// One list of true particles for all tomograms (else the tasks' own, if any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truth: Option<PathBuf>,
    #[serde(default)]
    pub pick_args: Vec<String>,
    #[serde(default)]
    pub eval_args: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_running: Option<u32>,
    pub resources: Resources,
    #[serde(rename = "task")]
    pub tasks: Vec<Task>,
    #[serde(rename = "submission", default)]
    pub submissions: Vec<Submission>,
}

/// Refuses an sbatch option value that would break the script's `#SBATCH` line.
pub fn check_option(flag: &str, v: &str) -> anyhow::Result<()> {
    if v.is_empty() || v.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
        bail!("{flag} '{v}': expected one word without spaces or quotes");
    }
    Ok(())
}

impl Resources {
    /// Checks the values before they go into a script.
    pub fn check(&self) -> anyhow::Result<()> {
        for (flag, v) in [
            ("--partition", &self.partition),
            ("--account", &self.account),
            ("--time", &self.time),
            ("--mem", &self.mem),
        ] {
            if let Some(v) = v {
                check_option(flag, v)?;
            }
        }
        if let Some(t) = &self.time {
            if !t
                .chars()
                .all(|c| c.is_ascii_digit() || c == ':' || c == '-')
            {
                bail!("--time '{t}': expected Slurm's [D-]HH:MM:SS, MM:SS or minutes");
            }
        }
        if let Some(m) = &self.mem {
            let digits = m.trim_end_matches(['K', 'M', 'G', 'T', 'k', 'm', 'g', 't']);
            if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
                bail!("--mem '{m}': expected a size such as 8G or 500M");
            }
        }
        if self.cpus_per_task == 0 {
            bail!("--cpus-per-task must be at least 1");
        }
        for s in &self.sbatch_args {
            if !s.starts_with('-') || s.contains(['\n', '\r']) {
                bail!("--sbatch-arg '{s}': expected one sbatch option such as --qos=long");
            }
        }
        Ok(())
    }

    /// The `#SBATCH` options, in order (without --gpus when `gpus` is false).
    pub fn sbatch_options(&self, gpus: bool) -> Vec<String> {
        let mut o = Vec::new();
        if let Some(p) = &self.partition {
            o.push(format!("--partition={p}"));
        }
        if let Some(a) = &self.account {
            o.push(format!("--account={a}"));
        }
        if let Some(t) = &self.time {
            o.push(format!("--time={t}"));
        }
        if let Some(m) = &self.mem {
            o.push(format!("--mem={m}"));
        }
        o.push(format!("--cpus-per-task={}", self.cpus_per_task));
        if gpus {
            if let Some(g) = self.gpus.filter(|g| *g > 0) {
                o.push(format!("--gpus={g}"));
            }
        }
        o.extend(self.sbatch_args.iter().cloned());
        o
    }
}

impl Plan {
    /// A plan of `tasks` in `dir` for `stage`, run by the binary `capsid`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        stage: &str,
        dir: PathBuf,
        out: PathBuf,
        capsid: PathBuf,
        resources: Resources,
        max_running: Option<u32>,
        job_name: String,
        tasks: Vec<Task>,
    ) -> anyhow::Result<Self> {
        resources.check()?;
        check_option("--job-name", &job_name)?;
        if max_running == Some(0) {
            bail!("--max-running must be at least 1");
        }
        if tasks.is_empty() {
            bail!("nothing to submit: no tomogram given");
        }
        Ok(Self {
            capsid_version: capsid_core::VERSION.to_string(),
            stage: stage.to_string(),
            command: std::env::args().collect(),
            capsid,
            script: dir.join(format!("{stage}.sbatch")),
            gather_script: None,
            dir,
            out,
            job_name,
            task_args: Vec::new(),
            classes: None,
            truth: None,
            pick_args: Vec::new(),
            eval_args: Vec::new(),
            max_running,
            resources,
            tasks,
            submissions: Vec::new(),
        })
    }

    /// With a gather job: picking (and scoring) after the array.
    pub fn with_gather(
        mut self,
        classes: PathBuf,
        truth: Option<PathBuf>,
        pick_args: Vec<String>,
        eval_args: Vec<String>,
    ) -> Self {
        self.gather_script = Some(self.dir.join("gather.sbatch"));
        self.classes = Some(classes);
        self.truth = truth;
        self.pick_args = pick_args;
        self.eval_args = eval_args;
        self
    }

    /// The task list file.
    pub fn tasks_file(&self) -> PathBuf {
        self.dir.join(TASKS_FILE)
    }

    /// True when the gather job scores the picks.
    pub fn has_truth(&self) -> bool {
        self.truth.is_some() || self.tasks.iter().any(|t| t.truth.is_some())
    }

    /// The options of the gather's `capsid pick` (after the label maps).
    pub fn gather_pick_argv(&self, picks: &Path) -> Vec<String> {
        let mut v = vec![
            "--classes".to_string(),
            self.classes
                .as_deref()
                .map(|c| c.display().to_string())
                .unwrap_or_default(),
            "--out".into(),
            picks.display().to_string(),
        ];
        v.extend(self.pick_args.iter().cloned());
        v
    }

    /// The options of the gather's `capsid evaluate`.
    pub fn gather_eval_argv(&self, picks: &Path, truth: &Path) -> Vec<String> {
        let mut v = vec![
            "--picks".to_string(),
            picks.display().to_string(),
            "--truth".into(),
            truth.display().to_string(),
            "--classes".into(),
            self.classes
                .as_deref()
                .map(|c| c.display().to_string())
                .unwrap_or_default(),
            "--out".into(),
            self.out.join(super::EVAL_DIR).display().to_string(),
        ];
        v.extend(self.eval_args.iter().cloned());
        v
    }

    /// Parses the gather's pick and evaluate options now, as the gather job will.
    pub fn check_gather_args(&self) -> anyhow::Result<()> {
        let picks = self.out.join(super::PICKS_FILE);
        if self.stage == "segment" {
            let mut argv = vec![self.tasks[0].outputs[0].display().to_string()];
            argv.extend(self.gather_pick_argv(&picks));
            let _: crate::cmd::pick::Args = super::parse_as("pick", &argv)?;
        }
        if self.has_truth() {
            let argv = self.gather_eval_argv(&picks, &self.dir.join("truth.star"));
            let _: crate::cmd::evaluate::Args = super::parse_as("evaluate", &argv)?;
        }
        for t in self
            .truth
            .iter()
            .chain(self.tasks.iter().filter_map(|t| t.truth.as_ref()))
        {
            if !t.is_file() {
                bail!("{}: no such file (true particles)", t.display());
            }
        }
        Ok(())
    }

    /// The true particles for the gather's evaluate: the one list given, or the tasks' lists
    /// joined into `slurm/truth.star` with each particle named by its tomogram; `None` without
    /// truth.
    pub fn truth_for_gather(&self) -> anyhow::Result<Option<PathBuf>> {
        use capsid_io::particles::{read_particles, write_particles, ReadOptions, WriteOptions};
        if let Some(t) = &self.truth {
            return Ok(Some(t.clone()));
        }
        if !self.tasks.iter().any(|t| t.truth.is_some()) {
            return Ok(None);
        }
        let mut all = Vec::new();
        for t in &self.tasks {
            let Some(truth) = &t.truth else {
                continue;
            };
            let opts = ReadOptions {
                default_tomogram: Some(t.name.clone()),
                ..ReadOptions::default()
            };
            let mut ps = read_particles(truth, &opts)?;
            // The list is this tomogram's: its particles carry its name.
            for p in &mut ps {
                p.tomogram = Some(t.name.clone());
            }
            all.extend(ps);
        }
        let path = self.dir.join("truth.star");
        write_particles(&path, &all, &WriteOptions::default())?;
        Ok(Some(path))
    }

    /// The last submission that ran task `index` (the job for training).
    pub fn last_submission_of(&self, index: usize) -> Option<&Submission> {
        self.submissions.iter().rev().find(|s| match &s.array {
            Some(a) => {
                s.role == "tasks"
                    && super::script::parse_array_spec(a)
                        .map(|v| v.contains(&index))
                        .unwrap_or(false)
            }
            None => s.role == "train",
        })
    }

    /// Writes a file of the plan atomically.
    pub fn write_file(&self, path: &Path, text: &str) -> anyhow::Result<()> {
        capsid_core::write_atomically(path, |w| std::io::Write::write_all(w, text.as_bytes()))?;
        #[cfg(unix)]
        if path.extension().is_some_and(|e| e == "sbatch") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("{}", path.display()))?;
        }
        Ok(())
    }

    /// Writes `jobs.toml`.
    pub fn write(&self) -> anyhow::Result<()> {
        let path = self.dir.join(JOBS_FILE);
        let text = toml::to_string_pretty(self)
            .with_context(|| format!("{}: cannot write the plan", path.display()))?;
        self.write_file(&path, &text)
    }

    /// Reads `dir/jobs.toml`.
    pub fn read(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(JOBS_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
        toml::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "{}: not a capsid slurm plan: {}",
                path.display(),
                e.to_string().lines().next().unwrap_or("")
            )
        })
    }

    /// `sbatch --parsable OPTIONS script`; records the submission in jobs.toml and returns the
    /// job id.
    pub fn submit(
        &mut self,
        role: &str,
        options: &[String],
        script: &Path,
        array: Option<String>,
        after: Option<String>,
    ) -> anyhow::Result<String> {
        let mut argv: Vec<String> = vec!["--parsable".into()];
        argv.extend(options.iter().cloned());
        argv.push(script.display().to_string());
        let stdout = super::query::run_slurm("sbatch", &argv)?;
        let id = super::query::parse_sbatch_id(&stdout).with_context(|| {
            format!(
                "sbatch {}: no job id in its output '{}'",
                argv.join(" "),
                stdout.trim()
            )
        })?;
        self.submissions.push(Submission {
            role: role.to_string(),
            job_id: id.clone(),
            array,
            after,
            command: format!("sbatch {}", argv.join(" ")),
            submitted: utc_now(),
        });
        self.write()?;
        Ok(id)
    }
}

/// The current time, UTC, as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    utc_from_unix(secs)
}

/// `secs` after 1970-01-01 as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian).
pub fn utc_from_unix(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}
