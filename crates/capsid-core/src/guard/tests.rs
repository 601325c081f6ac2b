//! Unit tests of the output guard.

use super::temp::temp_owner;
use super::*;
use std::path::Path;

#[test]
fn temp_names_carry_host_and_pid() {
    let name = format!("{}abc123", temp_prefix());
    let (h, p) = temp_owner(&name).unwrap();
    assert_eq!(h, host_name());
    assert_eq!(p, std::process::id());
    assert!(temp_owner(".capsid-tmp-XYZ").is_none());
    assert_eq!(temp_owner(".capsid-tmp-a.b.c.42.zz"), Some(("a.b.c", 42)));
}

#[test]
fn outputs_never_inputs() {
    let d = tempfile::tempdir().unwrap();
    let t = d.path().join("t.mrc");
    std::fs::write(&t, b"x").unwrap();
    assert!(refuse_overwriting_inputs(&[&t], &[&t]).is_err());
    let dotted = d.path().join("sub/../t.mrc");
    assert!(refuse_overwriting_inputs(&[&dotted], &[&t]).is_err());
    assert!(refuse_overwriting_inputs(&[d.path()], &[&t]).is_err());
    let other = d.path().join("new/out.mrc");
    assert!(refuse_overwriting_inputs(&[&other], &[&t]).is_ok());
    #[cfg(unix)]
    {
        let link = d.path().join("hard.mrc");
        std::fs::hard_link(&t, &link).unwrap();
        assert!(refuse_overwriting_inputs(&[&link], &[&t]).is_err());
        let sym = d.path().join("sym.mrc");
        std::os::unix::fs::symlink(&t, &sym).unwrap();
        assert!(refuse_overwriting_inputs(&[&sym], &[&t]).is_err());
    }
}

#[test]
fn locks_exclude_and_sweep() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("a.mrc");
    let l = OutputLock::acquire(&out).unwrap();
    // A second lock of the same output (a live process: ourselves) fails.
    let e = OutputLock::acquire(&out).unwrap_err().to_string();
    assert!(e.contains("being written"), "{e}");
    // Another output in the same folder is independent.
    let other = OutputLock::acquire(&d.path().join("b.mrc")).unwrap();
    drop(l);
    drop(other);
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    // A dead process of this host: swept. Another host's lock: kept.
    let dead = i32::MAX as u32 - 7; // above any pid_max
    std::fs::write(
        lock_path(&out),
        format!("host={}\npid={dead}\n", host_name()),
    )
    .unwrap();
    let l = OutputLock::acquire(&out).unwrap();
    drop(l);
    std::fs::write(lock_path(&out), "host=elsewhere.example\npid=1\n").unwrap();
    assert!(OutputLock::acquire(&out).is_err());
    let tmp = d
        .path()
        .join(format!(".capsid-tmp-{}.{dead}.abc", host_name()));
    std::fs::write(&tmp, b"x").unwrap();
    let foreign = d.path().join(".capsid-tmp-elsewhere.example.1.abc");
    std::fs::write(&foreign, b"x").unwrap();
    assert_eq!(sweep_stale(d.path()), 1);
    assert!(!tmp.exists());
    assert!(foreign.exists());
    assert!(lock_path(&out).exists());
}

#[test]
fn existing_and_complete() {
    let d = tempfile::tempdir().unwrap();
    assert!(
        refuse_existing(d.path(), false, "--force").is_ok(),
        "empty folder"
    );
    let f = d.path().join("x");
    std::fs::write(&f, b"1").unwrap();
    assert!(refuse_existing(&f, false, "--force").is_err());
    assert!(refuse_existing(&f, true, "--force").is_ok());
    assert!(refuse_existing(d.path(), false, "--force").is_err());
    assert!(is_complete(&f));
    assert!(!is_complete(d.path()));
    mark_complete(d.path()).unwrap();
    assert!(is_complete(d.path()));
}

#[test]
fn names_and_grids() {
    assert!(check_file_name_part("class", "ribosome_80S").is_ok());
    for bad in ["../x", "a/b", "..", "", "a\\b"] {
        assert!(check_file_name_part("class", bad).is_err(), "{bad}");
    }
    assert!(check_voxel_size("t.mrc", [0.0, 1.0, 1.0]).is_err());
    assert!(check_voxel_size("t.mrc", [f32::NAN, 1.0, 1.0]).is_err());
    assert!(check_voxel_size("t.mrc", [10.0; 3]).is_ok());
    let (a, b) = (Path::new("a.mrc"), Path::new("b.mrc"));
    assert!(check_same_grid(a, [1, 2, 3], [10.0; 3], b, [1, 2, 3], [10.005; 3]).is_ok());
    assert!(check_same_grid(a, [1, 2, 3], [10.0; 3], b, [1, 2, 3], [10.02; 3]).is_err());
    assert!(check_same_grid(a, [1, 2, 3], [10.0; 3], b, [1, 2, 4], [10.0; 3]).is_err());
}

#[test]
fn backups_before_explicit_replacement() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("picks.json");
    assert_eq!(keep_backup(&p).unwrap(), None);
    std::fs::write(&p, b"old").unwrap();
    let bak = keep_backup(&p).unwrap().unwrap();
    assert_eq!(std::fs::read(bak).unwrap(), b"old");
}

#[test]
fn created_dirs_removed_when_empty() {
    let d = tempfile::tempdir().unwrap();
    let deep = d.path().join("a/b/c");
    let created = create_output_dir(&deep).unwrap();
    assert_eq!(created.len(), 3);
    remove_created_dirs(&created);
    assert!(!d.path().join("a").exists());
}
