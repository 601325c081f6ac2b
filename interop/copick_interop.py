#!/usr/bin/env python3
"""copick interoperability: copick itself opens the project `capsid simulate --copick` writes
(crates/capsid-cli/tests/simulate_cli.rs runs this with CAPSID_COPICK_PYTHON=/path/to/python that
has copick, mrcfile and numpy; copick pins zarr 2, so it is not the Python of the other interop
tests).

  check CONFIG SIM_DIR VOXEL_A
      Opens CONFIG with copick.from_file; for every tomogram folder of SIM_DIR (SHREC layout:
      tomo_XXX/reconstruction.mrc, particle_locations.txt) checks that copick lists the run,
      that its VoxelSpacing VOXEL_A 'wbp' tomogram equals mrcfile's reading of the MRC, and that
      the picks of user 'curation', session '0' of each object hold the SHREC file's particles
      of that class at x * VOXEL_A Å (within 1e-3 Å). Prints one line per run.

  picks CONFIG USER SESSION EXPECTED.json
      Checks that copick reads the picks of USER, SESSION (written into the project by
      `capsid convert ... 'ExperimentRuns/{tomo}/Picks/USER_SESSION_{class}.json'`) at the
      positions of EXPECTED.json ({run: {object: [[x, y, z] in Å, ...]}}), within 1e-3 Å.

  create DIR SIM_DIR VOXEL_A
      Makes a copick project in DIR with copick's own API (copick.ops.open.new_config, new_run,
      new_voxel_spacing, new_tomogram(...).from_numpy, new_picks(...).store): the classes of
      SIM_DIR/class_table.toml as pickable objects (radius in Å), each tomogram folder of SIM_DIR
      as a run with its reconstruction.mrc as the 'wbp' tomogram at VOXEL_A Å, and its
      particle_locations.txt (voxels) as picks of user 'curation', session '0' in Å. capsid then
      works on a project it did not write.

  segmentation CONFIG RUN USER SESSION NAME LABELS.mrc MAPPING
      Checks that copick finds exactly one multilabel segmentation NAME of USER, SESSION in RUN
      (written by `capsid segment --copick ... --copick-segmentation NAME`) and that its voxels
      equal mrcfile's reading of capsid's label map LABELS.mrc with each label k replaced by
      MAPPING's value ("k:v,k:v"; unlisted labels become 0).
"""

import sys
from pathlib import Path

import numpy as np


def check(config: Path, sim: Path, voxel: float) -> int:
    import copick
    import mrcfile

    root = copick.from_file(str(config))
    objects = {o.name for o in root.pickable_objects}
    runs = {r.name: r for r in root.runs}
    tomos = sorted(d for d in sim.iterdir() if (d / "reconstruction.mrc").is_file())
    assert tomos, f"no tomogram folders in {sim}"
    for d in tomos:
        run = runs.get(d.name)
        assert run is not None, f"copick lists no run {d.name} (runs: {sorted(runs)})"
        vs = run.get_voxel_spacing(voxel)
        assert vs is not None, f"{d.name}: no voxel spacing {voxel}"
        tomo = vs.get_tomograms("wbp")
        assert len(tomo) == 1, f"{d.name}: {len(tomo)} 'wbp' tomograms"
        data = np.asarray(tomo[0].numpy())
        with mrcfile.open(d / "reconstruction.mrc", permissive=False) as m:
            want = np.asarray(m.data, dtype=np.float32)
        assert data.shape == want.shape, (data.shape, want.shape)
        assert np.array_equal(data, want), f"{d.name}: tomogram differs from the MRC"
        truth = {}
        for line in (d / "particle_locations.txt").read_text().splitlines():
            f = line.split()
            if len(f) >= 4 and f[0] in objects:
                truth.setdefault(f[0], []).append([float(v) * voxel for v in f[1:4]])
        n = 0
        for name, pts in truth.items():
            picks = run.get_picks(object_name=name, user_id="curation", session_id="0")
            assert len(picks) == 1, f"{d.name}/{name}: {len(picks)} picks sets"
            got, _ = picks[0].numpy()
            got = np.asarray(got, dtype=np.float64)
            want = np.asarray(pts, dtype=np.float64)
            assert got.shape == want.shape, (d.name, name, got.shape, want.shape)
            assert np.allclose(got, want, atol=1e-3), f"{d.name}/{name}: positions differ"
            n += len(pts)
        print(f"ok: {d.name}: tomogram {data.shape}, {n} picks in {len(truth)} objects")
    return 0


def create(out: Path, sim: Path, voxel: float) -> int:
    import tomllib

    import mrcfile
    from copick.models import CopickLocation, CopickPoint, PickableObject
    from copick.ops.open import new_config

    table = tomllib.loads((sim / "class_table.toml").read_text())["class"]
    objects = []
    for c in table:
        radius = c.get("radius_a", c.get("radius_vox", 0.0) * voxel)
        objects.append(PickableObject(name=c["name"], is_particle=True, label=c["label"], radius=radius))
    out.mkdir(parents=True, exist_ok=True)
    root = new_config(str(out / "copick_config.json"), str(out.resolve()), "interop", "made by copick", objects)
    names = {c["name"] for c in table}
    for d in sorted(d for d in sim.iterdir() if (d / "reconstruction.mrc").is_file()):
        run = root.new_run(d.name)
        vs = run.new_voxel_spacing(voxel)
        with mrcfile.open(str(d / "reconstruction.mrc"), permissive=True) as m:
            data = np.asarray(m.data, dtype=np.float32)
        vs.new_tomogram("wbp").from_numpy(data, levels=2)
        by_class = {}
        for line in (d / "particle_locations.txt").read_text().splitlines():
            f = line.split()
            if len(f) >= 4 and f[0] in names:
                by_class.setdefault(f[0], []).append([float(v) * voxel for v in f[1:4]])
        for name, pts in by_class.items():
            picks = run.new_picks(name, session_id="0", user_id="curation")
            picks.points = [CopickPoint(location=CopickLocation(x=x, y=y, z=z)) for x, y, z in pts]
            picks.store()
        print(f"{d.name}: tomogram {data.shape}, {sum(len(p) for p in by_class.values())} picks")
    return 0


def segmentation(
    config: Path, run: str, user: str, session: str, name: str, labels: Path, mapping: str
) -> int:
    import copick
    import mrcfile

    root = copick.from_file(str(config))
    r = root.get_run(run)
    assert r is not None, f"copick lists no run {run}"
    segs = r.get_segmentations(user_id=user, session_id=session, name=name, is_multilabel=True)
    assert len(segs) == 1, f"{run}: {len(segs)} multilabel segmentations {name} of {user}/{session}"
    got = np.asarray(segs[0].numpy())
    with mrcfile.open(str(labels), permissive=True) as m:
        lab = np.asarray(m.data)
    expected = np.zeros(lab.shape, dtype=np.uint8)
    for pair in mapping.split(","):
        k, v = (int(x) for x in pair.split(":"))
        expected[lab == k] = v
    assert got.shape == expected.shape, f"shape {got.shape}, expected {expected.shape}"
    assert np.array_equal(got, expected), f"{int((got != expected).sum())} voxels differ"
    print(f"{run}: segmentation {name} of {user}/{session}, {got.shape}, labels {np.unique(got).tolist()}")
    return 0


def picks(config: Path, user: str, session: str, expected: Path) -> int:
    import copick
    import json

    root = copick.from_file(str(config))
    want_all = json.loads(expected.read_text())
    for run_name, objects in want_all.items():
        run = root.get_run(run_name)
        assert run is not None, f"no run {run_name}"
        for name, pts in objects.items():
            found = run.get_picks(object_name=name, user_id=user, session_id=session)
            assert len(found) == 1, f"{run_name}/{name}: {len(found)} pick sets of {user}/{session}"
            got, _ = found[0].numpy()
            got = np.asarray(got, dtype=np.float64)
            want = np.asarray(pts, dtype=np.float64)
            assert got.shape == want.shape, (run_name, name, got.shape, want.shape)
            assert np.allclose(got, want, atol=1e-3), f"{run_name}/{name}: positions differ"
        print(f"ok: {run_name}: {sum(len(p) for p in objects.values())} picks of {user}/{session}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "create":
        sys.exit(create(Path(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4])))
    if len(sys.argv) == 9 and sys.argv[1] == "segmentation":
        sys.exit(segmentation(Path(sys.argv[2]), *sys.argv[3:7], Path(sys.argv[7]), sys.argv[8]))
    if len(sys.argv) == 6 and sys.argv[1] == "picks":
        sys.exit(picks(Path(sys.argv[2]), sys.argv[3], sys.argv[4], Path(sys.argv[5])))
    if len(sys.argv) == 5 and sys.argv[1] == "check":
        sys.exit(check(Path(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4])))
    print(__doc__)
    sys.exit(2)
