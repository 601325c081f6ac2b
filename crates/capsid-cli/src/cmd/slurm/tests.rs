//! Script generation, array lists and the parsing of Slurm's outputs (no Slurm needed; the real
//! thing runs in `.ci/slurm_test.sh`).

use super::plan::{utc_from_unix, Plan, Resources, Task};
use super::query::{parse_sacct, parse_sbatch_id, parse_scontrol, parse_squeue, Record, StateKind};
use super::script::{array_spec, parse_array_spec, shell_quote, task_script, tasks_file, TaskLine};
use super::{progress_of, Progress};
use std::path::PathBuf;

fn plan(n: usize) -> Plan {
    let tasks = (0..n)
        .map(|i| Task {
            index: i,
            name: format!("tomo_{i:03}"),
            input: PathBuf::from(format!("/data/tomo_{i:03}/reconstruction.mrc")),
            truth: None,
            outputs: vec![PathBuf::from(format!("/seg/tomo_{i:03}_labels.mrc"))],
        })
        .collect();
    Plan::new(
        "segment",
        PathBuf::from("/seg/slurm"),
        PathBuf::from("/seg"),
        PathBuf::from("/opt/capsid/bin/capsid"),
        Resources {
            partition: Some("gpu".into()),
            account: Some("lab".into()),
            time: Some("01:30:00".into()),
            mem: Some("8G".into()),
            cpus_per_task: 4,
            gpus: Some(1),
            sbatch_args: vec!["--qos=long".into()],
        },
        Some(2),
        "capsid-segment".into(),
        tasks,
    )
    .unwrap()
    .with_gather(
        PathBuf::from("/runs/m/class_table.toml"),
        None,
        vec![],
        vec![],
    )
}

#[test]
fn array_lists_join_runs_and_parse_back() {
    assert_eq!(array_spec(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
    assert_eq!(array_spec(&[4]), "4");
    assert_eq!(array_spec(&[3, 1, 2, 2]), "1-3");
    assert_eq!(parse_array_spec("0-2,5,7-8").unwrap(), [0, 1, 2, 5, 7, 8]);
    assert_eq!(parse_array_spec("[3-5%2]").unwrap(), [3, 4, 5]);
    assert_eq!(parse_array_spec("1-7:3").unwrap(), [1, 4, 7]);
    assert_eq!(parse_array_spec("12").unwrap(), [12]);
    for bad in ["", "a-b", "5-2", "[]"] {
        assert!(parse_array_spec(bad).is_err(), "{bad}");
    }
    let v: Vec<usize> = (0..40).filter(|i| i % 3 != 0).collect();
    assert_eq!(parse_array_spec(&array_spec(&v)).unwrap(), v);
}

#[test]
fn the_array_script_has_the_resources_log_and_one_task_per_line() {
    let p = plan(3);
    let line = TaskLine {
        argv_before_input: vec!["segment".into(), "/runs/my model".into()],
        argv_after_input: vec!["--out".into(), "/seg".into(), "--skip-complete".into()],
        out_per_task: None,
        threads: true,
    };
    let s = task_script(&p, &line, "0-2%2");
    for want in [
        "#!/bin/bash\n",
        "#SBATCH --job-name=capsid-segment\n",
        "#SBATCH --array=0-2%2\n",
        "#SBATCH --output=/seg/slurm/logs/%x_%A_%a.log\n",
        "#SBATCH --requeue\n",
        "#SBATCH --partition=gpu\n",
        "#SBATCH --account=lab\n",
        "#SBATCH --time=01:30:00\n",
        "#SBATCH --mem=8G\n",
        "#SBATCH --cpus-per-task=4\n",
        "#SBATCH --gpus=1\n",
        "#SBATCH --qos=long\n",
        "TASKS=/seg/slurm/tasks.txt\n",
        "exec /opt/capsid/bin/capsid segment '/runs/my model' \"$INPUT\" --out /seg --skip-complete --threads \"${SLURM_CPUS_PER_TASK:-1}\"\n",
    ] {
        assert!(s.contains(want), "no {want:?} in:\n{s}");
    }
    // #SBATCH lines come before the first command, or sbatch ignores them.
    let first_cmd = s.find("set -euo").unwrap();
    assert!(s.rfind("#SBATCH").unwrap() < first_cmd);
    assert_eq!(
        tasks_file(&p.tasks),
        "tomo_000\t/data/tomo_000/reconstruction.mrc\ntomo_001\t/data/tomo_001/reconstruction.mrc\ntomo_002\t/data/tomo_002/reconstruction.mrc\n"
    );
    // The gather job: no array, no GPU, the same partition and account.
    let g = super::script::gather_script(&p);
    assert!(
        g.contains("#SBATCH --job-name=capsid-segment-gather\n"),
        "{g}"
    );
    assert!(
        g.contains("#SBATCH --output=/seg/slurm/logs/%x_%j.log\n"),
        "{g}"
    );
    assert!(
        g.contains("#SBATCH --partition=gpu\n") && !g.contains("--gpus") && !g.contains("--array")
    );
    assert!(
        g.contains("exec /opt/capsid/bin/capsid slurm gather /seg\n"),
        "{g}"
    );
}

#[test]
fn the_task_script_runs_in_bash_and_reads_its_line() {
    // The script's own shell code (line lookup, name and input split at the tab) as bash runs
    // it, with capsid replaced by echo.
    let dir = tempfile::tempdir().unwrap();
    let mut p = plan(3);
    p.dir = dir.path().to_path_buf();
    p.capsid = PathBuf::from("echo");
    p.tasks[1].input = PathBuf::from("/data/with space/t 1.mrc");
    std::fs::write(p.tasks_file(), tasks_file(&p.tasks)).unwrap();
    let line = TaskLine {
        argv_before_input: vec!["pick".into()],
        argv_after_input: vec!["--skip-complete".into()],
        out_per_task: Some(("--out".into(), PathBuf::from("/o"), "_picks.star".into())),
        threads: false,
    };
    let script = dir.path().join("t.sbatch");
    std::fs::write(&script, task_script(&p, &line, "0-2")).unwrap();
    let run = |task: &str| {
        std::process::Command::new("bash")
            .arg(&script)
            .env("SLURM_ARRAY_TASK_ID", task)
            .output()
            .unwrap()
    };
    let out = run("1");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l
                == "pick /data/with space/t 1.mrc --out /o/tomo_001_picks.star --skip-complete"),
        "{text}"
    );
    let out = run("7");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no line for task 7"));
}

#[test]
fn shell_quoting_keeps_words_whole() {
    assert_eq!(shell_quote("/a/b_c-1.mrc"), "/a/b_c-1.mrc");
    assert_eq!(shell_quote("a b"), "'a b'");
    assert_eq!(shell_quote("it's"), r"'it'\''s'");
    assert_eq!(shell_quote(""), "''");
    assert_eq!(shell_quote("$HOME"), "'$HOME'");
}

#[test]
fn resources_are_checked_before_they_reach_a_script() {
    let ok = Resources {
        time: Some("1-00:00:00".into()),
        mem: Some("500M".into()),
        cpus_per_task: 1,
        ..Resources::default()
    };
    ok.check().unwrap();
    for (r, needle) in [
        (
            Resources {
                time: Some("1 hour".into()),
                cpus_per_task: 1,
                ..Resources::default()
            },
            "--time",
        ),
        (
            Resources {
                mem: Some("lots".into()),
                cpus_per_task: 1,
                ..Resources::default()
            },
            "--mem",
        ),
        (Resources::default(), "--cpus-per-task"),
        (
            Resources {
                cpus_per_task: 1,
                sbatch_args: vec!["qos=long".into()],
                ..Resources::default()
            },
            "--sbatch-arg",
        ),
    ] {
        let e = r.check().unwrap_err().to_string();
        assert!(e.contains(needle), "{e}");
    }
}

#[test]
fn sbatch_ids_and_slurm_states_parse() {
    assert_eq!(parse_sbatch_id("4242\n").as_deref(), Some("4242"));
    assert_eq!(parse_sbatch_id("4242;cluster2\n").as_deref(), Some("4242"));
    assert_eq!(parse_sbatch_id("Submitted batch job 1\n"), None);
    // sacct -X -P -n --format=JobID,State,ExitCode, a requeued task listed twice.
    let sacct = "17_0|COMPLETED|0:0\n17_1|CANCELLED by 0|0:15\n17_2|NODE_FAIL|0:0\n17_2|RUNNING|0:0\n17_[3-5%2]|PENDING|0:0\n18|PENDING|0:0\n17_1.batch|CANCELLED|0:15\n";
    let r = parse_sacct(sacct);
    assert_eq!(r.len(), 6);
    assert_eq!(
        r[1],
        Record {
            job: "17".into(),
            tasks: Some(vec![1]),
            state: "CANCELLED".into()
        }
    );
    assert_eq!(r[4].tasks, Some(vec![3, 4, 5]));
    assert_eq!(r[5].tasks, None);
    // squeue -h -r -o '%i|%T'
    let q = parse_squeue("21_0|RUNNING\n21_2|PENDING\n");
    assert_eq!(q[1].tasks, Some(vec![2]));
    assert_eq!(q[0].state, "RUNNING");
    // scontrol show job -o: array tasks (finished and pending ranges) and a plain job.
    let sc = "JobId=31 ArrayJobId=30 ArrayTaskId=1 JobName=capsid-segment UserId=root(0) JobState=CANCELLED Reason=None Dependency=(null) ExitCode=0:15\n\
JobId=30 ArrayJobId=30 ArrayTaskId=2-3 JobName=capsid-segment JobState=PENDING Reason=Resources\n\
JobId=33 JobName=capsid-segment-gather JobState=COMPLETED Reason=None ExitCode=0:0\n";
    let s = parse_scontrol(sc);
    assert_eq!(s.len(), 3);
    assert_eq!(
        (s[0].job.as_str(), s[0].tasks.clone()),
        ("30", Some(vec![1]))
    );
    assert_eq!(s[1].tasks, Some(vec![2, 3]));
    assert_eq!((s[2].job.as_str(), s[2].tasks.clone()), ("33", None));
    assert_eq!(s[2].state, "COMPLETED");
}

#[test]
fn progress_comes_from_outputs_and_slurm() {
    assert_eq!(StateKind::of("CANCELLED by 0"), StateKind::Ended);
    assert_eq!(StateKind::of("PD"), StateKind::Pending);
    assert_eq!(StateKind::of("COMPLETING"), StateKind::Running);
    assert_eq!(progress_of(1, 1, Some("COMPLETED")), Progress::Done);
    assert_eq!(progress_of(1, 1, None), Progress::Done);
    assert_eq!(progress_of(0, 1, Some("COMPLETED")), Progress::Failed);
    assert_eq!(progress_of(0, 1, Some("CANCELLED")), Progress::Failed);
    assert_eq!(progress_of(0, 1, Some("TIMEOUT")), Progress::Failed);
    assert_eq!(progress_of(0, 1, Some("RUNNING")), Progress::Running);
    assert_eq!(progress_of(0, 2, Some("PENDING")), Progress::Pending);
    assert_eq!(progress_of(1, 2, None), Progress::Missing);
}

#[test]
fn the_plan_round_trips_and_finds_each_tasks_last_submission() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = plan(4);
    p.dir = dir.path().to_path_buf();
    for (role, id, array) in [
        ("tasks", "100", Some("0-3")),
        ("gather", "101", None),
        ("tasks", "102", Some("1,3")),
    ] {
        p.submissions.push(super::plan::Submission {
            role: role.into(),
            job_id: id.into(),
            array: array.map(String::from),
            after: None,
            command: format!("sbatch --parsable {id}"),
            submitted: "2026-12-07T05:00:00Z".into(),
        });
    }
    p.write().unwrap();
    let text = std::fs::read_to_string(dir.path().join("jobs.toml")).unwrap();
    assert!(text.starts_with("capsid_version = "), "{text}");
    assert!(
        text.contains("[[task]]") && text.contains("[[submission]]"),
        "{text}"
    );
    let back = Plan::read(dir.path()).unwrap();
    assert_eq!(back, p);
    let job = |i| back.last_submission_of(i).map(|s| s.job_id.as_str());
    assert_eq!(
        [job(0), job(1), job(2), job(3)],
        [Some("100"), Some("102"), Some("100"), Some("102")]
    );
    std::fs::write(dir.path().join("jobs.toml"), "stage = 3\n").unwrap();
    let e = Plan::read(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("jobs.toml") && e.contains("not a capsid slurm plan"),
        "{e}"
    );
}

#[test]
fn utc_times_are_civil_dates() {
    assert_eq!(utc_from_unix(0), "1970-01-01T00:00:00Z");
    assert_eq!(utc_from_unix(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(utc_from_unix(1_796_619_845), "2026-12-07T05:04:05Z");
}

#[test]
fn task_options_are_parsed_as_the_task_will_parse_them() {
    let argv = |extra: &[&str]| -> Vec<String> {
        ["runs/m", "t.mrc", "--out", "seg", "--skip-complete"]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    let ok: crate::cmd::segment::Args =
        super::parse_as("segment", &argv(&["--tta", "--probs", "f16"])).unwrap();
    assert!(ok.tta && ok.skip_complete && ok.probs.is_some());
    let e = super::parse_as::<crate::cmd::segment::Args>("segment", &argv(&["--ttta"]))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("capsid segment ") && e.contains("'--ttta'"),
        "{e}"
    );
    assert!(!e.contains('\n'), "{e}");
    // --force cannot go with the tasks' --skip-complete.
    assert!(super::parse_as::<crate::cmd::segment::Args>("segment", &argv(&["--force"])).is_err());
}

#[test]
fn the_training_script_reserves_the_gpu_and_resumes_when_requeued() {
    let mut p = plan(1);
    p.stage = "train".into();
    p.out = PathBuf::from("/runs/ribo");
    p.dir = PathBuf::from("/runs/ribo.slurm");
    let args: Vec<String> = [
        "--model",
        "unet",
        "--data",
        "train.txt",
        "--device",
        "cuda",
        "--force",
    ]
    .map(String::from)
    .to_vec();
    let s = super::script::train_script(&p, &args, true);
    for want in [
        "#SBATCH --gpus=1\n",
        "#SBATCH --requeue\n",
        "#SBATCH --output=/runs/ribo.slurm/logs/%x_%j.log\n",
        "if [ -f /runs/ribo/last/train_state.json ]; then\n",
        "train --resume --model unet --data train.txt --device cuda --out /runs/ribo --threads",
        "train --model unet --data train.txt --device cuda --force --out /runs/ribo --threads",
    ] {
        assert!(s.contains(want), "no {want:?} in:\n{s}");
    }
    assert!(!s.contains("--array"), "{s}");
}
