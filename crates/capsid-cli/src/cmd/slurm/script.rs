//! The sbatch scripts, the task list and Slurm's array index lists (`0-3,7`).

use super::plan::{Plan, Task, LOGS_DIR};
use anyhow::bail;
use std::path::{Path, PathBuf};

/// How a task's capsid command line is made: `CAPSID BEFORE… "$INPUT" AFTER…`, with
/// `--threads $SLURM_CPUS_PER_TASK` when `threads`, and with `out_per_task = (FLAG, DIR,
/// SUFFIX)` also `FLAG DIR/${NAME}SUFFIX`.
pub struct TaskLine {
    pub argv_before_input: Vec<String>,
    pub argv_after_input: Vec<String>,
    pub out_per_task: Option<(String, PathBuf, String)>,
    pub threads: bool,
}

/// `s` quoted for bash: as is when it is plain, otherwise in single quotes.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn quote_all(v: &[String]) -> String {
    v.iter()
        .map(|s| shell_quote(s))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Sorted, distinct indices as Slurm's array list, runs joined: `[0,1,2,5,7,8]` → `0-2,5,7-8`.
pub fn array_spec(indices: &[usize]) -> String {
    let mut v = indices.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let start = v[i];
        while i + 1 < v.len() && v[i + 1] == v[i] + 1 {
            i += 1;
        }
        parts.push(if v[i] == start {
            start.to_string()
        } else {
            format!("{start}-{}", v[i])
        });
        i += 1;
    }
    parts.join(",")
}

/// The indices of an array list as Slurm prints or takes it: `0-2,5`, `[0-2,5]`, `1-7:2`,
/// `[3-9%2]` (the throttle after `%` is ignored).
pub fn parse_array_spec(spec: &str) -> anyhow::Result<Vec<usize>> {
    let s = spec.trim().trim_start_matches('[').trim_end_matches(']');
    let s = s.split('%').next().unwrap_or("");
    let num = |t: &str| -> anyhow::Result<usize> {
        t.trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("array list '{spec}': '{t}' is not an index"))
    };
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.trim().is_empty()) {
        let (range, step) = match part.split_once(':') {
            Some((r, st)) => (r, num(st)?),
            None => (part, 1),
        };
        match range.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if b < a || step == 0 {
                    bail!("array list '{spec}': '{part}' is no range");
                }
                out.extend((a..=b).step_by(step));
            }
            None => out.push(num(range)?),
        }
    }
    if out.is_empty() {
        bail!("array list '{spec}': no index");
    }
    Ok(out)
}

/// The task list: line i+1 is task i, `NAME<TAB>INPUT`.
pub fn tasks_file(tasks: &[Task]) -> String {
    tasks
        .iter()
        .map(|t| format!("{}\t{}\n", t.name, t.input.display()))
        .collect()
}

/// `#SBATCH` lines: job name, array, log, requeue and the resources.
fn header(plan: &Plan, name: &str, array: Option<&str>, log: &Path, gpus: bool) -> String {
    let mut o = vec![format!("--job-name={name}")];
    if let Some(a) = array {
        o.push(format!("--array={a}"));
    }
    o.push(format!("--output={}", log.display()));
    // Slurm puts a task back in the queue when its node fails or it is preempted; a requeued
    // task skips what is complete.
    o.push("--requeue".into());
    o.extend(plan.resources.sbatch_options(gpus));
    let mut s = String::from("#!/bin/bash\n");
    for line in o {
        // A path with spaces stays one option.
        if line.contains(' ') {
            s.push_str(&format!("#SBATCH \"{line}\"\n"));
        } else {
            s.push_str(&format!("#SBATCH {line}\n"));
        }
    }
    s
}

/// The array script of a segment or pick plan.
pub fn task_script(plan: &Plan, line: &TaskLine, array: &str) -> String {
    let log = plan.dir.join(LOGS_DIR).join("%x_%A_%a.log");
    let mut s = header(plan, &plan.job_name, Some(array), &log, true);
    let verb = if plan.stage == "pick" {
        "picks"
    } else {
        "segments"
    };
    s.push_str(&format!(
        "# Written by capsid {} (`capsid slurm {}`); the plan is jobs.toml beside this script.\n\
         # Task i {verb} line i+1 of tasks.txt (NAME<TAB>INPUT) with --skip-complete, so a\n\
         # requeued or resubmitted task does only what is missing. Progress: `capsid slurm\n\
         # status {}`; failed tasks again: `capsid slurm resubmit {}`.\n",
        plan.capsid_version,
        plan.stage,
        shell_quote(&plan.out.display().to_string()),
        shell_quote(&plan.out.display().to_string()),
    ));
    s.push_str("set -euo pipefail\n");
    s.push_str(&format!(
        "TASKS={}\n",
        shell_quote(&plan.tasks_file().display().to_string())
    ));
    s.push_str(
        ": \"${SLURM_ARRAY_TASK_ID:?submit this script with sbatch: it is a job array}\"\n\
         LINE=$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" \"$TASKS\")\n\
         if [ -z \"$LINE\" ]; then\n  \
           echo \"error: $TASKS: no line for task $SLURM_ARRAY_TASK_ID\" >&2\n  \
           exit 2\n\
         fi\n\
         NAME=${LINE%%$'\\t'*}\n\
         INPUT=${LINE#*$'\\t'}\n\
         echo \"capsid slurm: task $SLURM_ARRAY_TASK_ID ($NAME) of job ${SLURM_ARRAY_JOB_ID:-?} on $(hostname) at $(date -u +%FT%TZ)\"\n",
    );
    let mut cmd = format!(
        "exec {} {} \"$INPUT\"",
        shell_quote(&plan.capsid.display().to_string()),
        quote_all(&line.argv_before_input)
    );
    if let Some((flag, dir, suffix)) = &line.out_per_task {
        cmd.push_str(&format!(
            " {} {}\"$NAME\"{}",
            shell_quote(flag),
            shell_quote(&format!("{}/", dir.display())),
            shell_quote(suffix)
        ));
    }
    if !line.argv_after_input.is_empty() {
        cmd.push(' ');
        cmd.push_str(&quote_all(&line.argv_after_input));
    }
    if line.threads {
        cmd.push_str(" --threads \"${SLURM_CPUS_PER_TASK:-1}\"");
    }
    s.push_str(&cmd);
    s.push('\n');
    s
}

/// The gather job's script: `capsid slurm gather OUT` (no GPUs).
pub fn gather_script(plan: &Plan) -> String {
    let log = plan.dir.join(LOGS_DIR).join("%x_%j.log");
    let mut s = header(
        plan,
        &format!("{}-gather", plan.job_name),
        None,
        &log,
        false,
    );
    s.push_str(&format!(
        "# Written by capsid {}: after the array (afterany), gathers its outputs. It fails while a\n\
         # tomogram's outputs are missing; `capsid slurm resubmit` submits a new one.\n\
         set -euo pipefail\n\
         exec {} slurm gather {}\n",
        plan.capsid_version,
        shell_quote(&plan.capsid.display().to_string()),
        shell_quote(&plan.out.display().to_string()),
    ));
    s
}

/// The training job's script: `capsid train ARGS --out RUN`, or `--resume` when Slurm requeues
/// it after the run has started.
pub fn train_script(plan: &Plan, train_args: &[String], threads: bool) -> String {
    let log = plan.dir.join(LOGS_DIR).join("%x_%j.log");
    let mut s = header(plan, &plan.job_name, None, &log, true);
    let capsid = shell_quote(&plan.capsid.display().to_string());
    let out = shell_quote(&plan.out.display().to_string());
    let threads = if threads {
        " --threads \"${SLURM_CPUS_PER_TASK:-1}\""
    } else {
        ""
    };
    let resume_args: Vec<String> = train_args
        .iter()
        .filter(|a| *a != "--force")
        .cloned()
        .collect();
    let state = shell_quote(&plan.out.join("last/train_state.json").display().to_string());
    s.push_str(&format!(
        "# Written by capsid {}: trains into {out}; a job that Slurm requeues (node failure,\n\
         # preemption) continues the run with --resume.\n\
         set -euo pipefail\n\
         echo \"capsid slurm: job ${{SLURM_JOB_ID:-?}} on $(hostname) at $(date -u +%FT%TZ); GPUs: ${{CUDA_VISIBLE_DEVICES:-none}}\"\n\
         if [ -f {state} ]; then\n  \
           exec {capsid} train --resume {} --out {out}{threads}\n\
         fi\n\
         exec {capsid} train {} --out {out}{threads}\n",
        plan.capsid_version,
        quote_all(&resume_args),
        quote_all(train_args),
    ));
    s
}
