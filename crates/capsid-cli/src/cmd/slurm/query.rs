//! Asking Slurm: `sbatch`, `scancel`, and job states from `sacct` (where accounting is
//! configured) or else `squeue` and `scontrol show job`.

use anyhow::bail;
use std::collections::HashMap;
use std::process::Command;

/// Runs a Slurm command; its stdout, or one error line with its stderr.
pub fn run_slurm(program: &str, args: &[String]) -> anyhow::Result<String> {
    let out = Command::new(program).args(args).output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow::anyhow!(
                "{program}: not found on PATH: run this on a Slurm login node (--dry-run writes the scripts without submitting)"
            )
        } else {
            anyhow::anyhow!("{program}: {e}")
        }
    })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!(
            "{program} {}: {}",
            args.join(" "),
            err.trim().replace('\n', "; ")
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The job id in `sbatch --parsable`'s output (`123` or `123;cluster`).
pub fn parse_sbatch_id(stdout: &str) -> Option<String> {
    let line = stdout.lines().map(str::trim).rfind(|l| !l.is_empty())?;
    let id = line.split(';').next()?.trim();
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_digit())).then(|| id.to_string())
}

/// What a Slurm job state means here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateKind {
    /// Waiting to run (PENDING, REQUEUED, SUSPENDED, …).
    Pending,
    /// Running or finishing (RUNNING, COMPLETING, CONFIGURING, …).
    Running,
    /// COMPLETED.
    Finished,
    /// Ended otherwise (FAILED, CANCELLED, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, PREEMPTED, …).
    Ended,
}

impl StateKind {
    /// The kind of a state as Slurm prints it (`CANCELLED by 0`, `RUNNING`, `PD`, …).
    pub fn of(state: &str) -> Self {
        let s = state
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_end_matches('+');
        match s {
            "PENDING" | "PD" | "REQUEUED" | "RQ" | "REQUEUE_HOLD" | "REQUEUE_FED" | "SUSPENDED"
            | "S" | "RESV_DEL_HOLD" | "STOPPED" | "ST" | "RESIZING" | "RS" => StateKind::Pending,
            "RUNNING" | "R" | "COMPLETING" | "CG" | "CONFIGURING" | "CF" | "STAGE_OUT" | "SO"
            | "SIGNALING" | "SI" => StateKind::Running,
            "COMPLETED" | "CD" => StateKind::Finished,
            _ => StateKind::Ended,
        }
    }
}

/// One job (or array task, or range of pending array tasks) as Slurm lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The array job's id (the job's own for a job that is no array).
    pub job: String,
    /// The array task indices the record stands for; `None` for a job that is no array.
    pub tasks: Option<Vec<usize>>,
    /// The state, first word (`CANCELLED`, not `CANCELLED by 0`).
    pub state: String,
}

/// Splits `123_4`, `123_[5-7%2]` or `123` into the job id and its task indices.
fn split_job_id(id: &str) -> Option<(String, Option<Vec<usize>>)> {
    let id = id.trim();
    if id.contains('.') {
        return None; // a job step (123_4.batch)
    }
    match id.split_once('_') {
        Some((job, tasks)) => Some((
            job.to_string(),
            Some(super::script::parse_array_spec(tasks).ok()?),
        )),
        None => Some((id.to_string(), None)),
    }
}

fn first_word(s: &str) -> String {
    s.split_whitespace().next().unwrap_or("").to_string()
}

/// `sacct -X -P -n --jobs=ID --format=JobID,State,ExitCode`: `123_0|COMPLETED|0:0` per line
/// (requeued tasks may appear more than once: the last line is the latest).
pub fn parse_sacct(text: &str) -> Vec<Record> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split('|');
            let (job, tasks) = split_job_id(f.next()?)?;
            let state = first_word(f.next()?);
            (!state.is_empty()).then_some(Record { job, tasks, state })
        })
        .collect()
}

/// `squeue -h -r --jobs=ID -o %i|%T`: `123_4|RUNNING` per line.
pub fn parse_squeue(text: &str) -> Vec<Record> {
    parse_sacct(text)
}

/// `scontrol show job -o ID`: one line per job or array task, `KEY=VALUE` words
/// (`JobId=124 ArrayJobId=123 ArrayTaskId=1 … JobState=CANCELLED …`).
pub fn parse_scontrol(text: &str) -> Vec<Record> {
    text.lines()
        .filter_map(|l| {
            let mut kv: HashMap<&str, &str> = HashMap::new();
            for w in l.split_whitespace() {
                if let Some((k, v)) = w.split_once('=') {
                    kv.entry(k).or_insert(v);
                }
            }
            let state = kv.get("JobState")?.to_string();
            match (kv.get("ArrayJobId"), kv.get("ArrayTaskId")) {
                (Some(job), Some(tasks)) => Some(Record {
                    job: job.to_string(),
                    tasks: Some(super::script::parse_array_spec(tasks).ok()?),
                    state,
                }),
                _ => Some(Record {
                    job: kv.get("JobId")?.to_string(),
                    tasks: None,
                    state,
                }),
            }
        })
        .collect()
}

/// Job states, asked once per job id.
pub struct Slurm {
    cache: HashMap<String, Vec<Record>>,
    /// Where states came from: `sacct`, `squeue+scontrol`, or that Slurm could not be asked.
    sources: Vec<&'static str>,
}

impl Slurm {
    pub fn new() -> Self {
        Self {
            cache: HashMap::new(),
            sources: Vec::new(),
        }
    }

    /// Where the states came from, for the summary line.
    pub fn source(&self) -> String {
        let mut s = self.sources.clone();
        s.dedup();
        if s.is_empty() {
            "nowhere: nothing submitted".into()
        } else {
            s.join(", ")
        }
    }

    fn note(&mut self, source: &'static str) {
        if !self.sources.contains(&source) {
            self.sources.push(source);
        }
    }

    /// The records of job `id`: sacct's when it knows the job; otherwise the queue's
    /// (`squeue`) and, for tasks that left the queue, `scontrol show job`'s.
    fn records(&mut self, id: &str) -> &[Record] {
        if !self.cache.contains_key(id) {
            let records = self.ask(id);
            self.cache.insert(id.to_string(), records);
        }
        &self.cache[id]
    }

    fn ask(&mut self, id: &str) -> Vec<Record> {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let jobs = format!("--jobs={id}");
        if let Ok(text) = run_slurm(
            "sacct",
            &s(&["-X", "-P", "-n", &jobs, "--format=JobID,State,ExitCode"]),
        ) {
            let r = parse_sacct(&text);
            if !r.is_empty() {
                self.note("sacct");
                return r;
            }
        }
        let mut records = Vec::new();
        let mut asked = false;
        // squeue says "Invalid job id" (exit 1) once the job has left the queue.
        if let Ok(text) = run_slurm("squeue", &s(&["-h", "-r", &jobs, "-o", "%i|%T"])) {
            asked = true;
            records.extend(parse_squeue(&text));
        }
        if let Ok(text) = run_slurm("scontrol", &s(&["show", "job", "-o", id])) {
            asked = true;
            for r in parse_scontrol(&text) {
                let known = records.iter().any(|q| q.job == r.job && overlaps(q, &r));
                if !known {
                    records.push(r);
                }
            }
        }
        self.note(if asked {
            "squeue+scontrol"
        } else {
            "nowhere: sacct, squeue and scontrol failed"
        });
        records
    }

    /// Slurm's state of task `index` of array job `id` (`None`: the whole job `id`), if Slurm
    /// knows it.
    pub fn task_state(&mut self, id: &str, index: Option<usize>) -> Option<String> {
        let id = id.to_string();
        self.records(&id)
            .iter()
            .rev()
            .find(|r| {
                r.job == id
                    && match (&r.tasks, index) {
                        (Some(t), Some(i)) => t.contains(&i),
                        (None, None) => true,
                        _ => false,
                    }
            })
            .map(|r| r.state.clone())
    }
}

fn overlaps(a: &Record, b: &Record) -> bool {
    match (&a.tasks, &b.tasks) {
        (Some(x), Some(y)) => x.iter().any(|i| y.contains(i)),
        (None, None) => true,
        _ => false,
    }
}
