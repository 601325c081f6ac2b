#!/usr/bin/env python3
"""MRC interoperability between capsid (Rust) and mrcfile (Python).

Usage (from anywhere; needs a Python with mrcfile and numpy, e.g. /tmp/interop-venv/bin/python):

    python interop/mrc_interop.py            # the whole check: runs
                                             #   cargo test -p capsid-io --test mrc_interop
                                             # with CAPSID_PYTHON set to this Python
    python interop/mrc_interop.py write DIR  # (a) mrcfile writes every mode / byte order / ext
                                             #     header / gzip / permuted case into DIR with
                                             #     DIR/cases.json and raw expected values
    python interop/mrc_interop.py check DIR  # (b) validate + compare the files capsid wrote into
                                             #     DIR (listed in DIR/rust_cases.json)
    python interop/mrc_interop.py expected   # print mrcfile's numbers for ../shared/data/mrc
                                             #     (the constants in tests/mrc_real_files.rs)

Expected values are written as raw little-endian float32 in physical [z, y, x] order (the order
capsid returns), so the Rust side needs no numpy reader.
"""

import io
import json
import os
import struct
import subprocess
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMOD_STAMP = 1146047817


def physical_zyx(data, header):
    """mrcfile's array [sections, rows, columns] transposed to physical [z, y, x]."""
    axes = [int(header.maps), int(header.mapr), int(header.mapc)]  # physical axis of each array axis
    return data.transpose([axes.index(3), axes.index(2), axes.index(1)])


def write_cases(out: Path):
    """(a) mrcfile writes files in every mode capsid reads; capsid must read the same values."""
    import mrcfile
    import numpy as np

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20141)
    shape = (5, 6, 7)  # z, y, x
    cases = []

    def values(kind):
        if kind == "i1":
            return rng.integers(-128, 128, shape).astype(np.int8)
        if kind == "u1":
            return rng.integers(0, 256, shape).astype(np.uint8)
        if kind == "i2":
            return rng.integers(-32768, 32768, shape).astype(np.int16)
        if kind == "u2":
            return rng.integers(0, 65536, shape).astype(np.uint16)
        if kind == "f2":
            return rng.normal(0, 3, shape).astype(np.float16)
        return rng.normal(0, 3, shape).astype(np.float32)

    def add(name, kind, order, ext=None, gzip=False, axis_map=None):
        data = values(kind)
        stored = data if kind != "u1" else data.view(np.int8)
        fname = name + (".mrc.gz" if gzip else ".mrc")
        path = out / fname
        voxel = (1.25, 2.5, 3.75)
        origin = (-10.5, 20.25, 3.0)
        with mrcfile.new(path, overwrite=True, compression="gzip" if gzip else None) as m:
            m.set_data(stored.astype(stored.dtype.newbyteorder(order)))
            if ext is not None:
                m.set_extended_header(np.frombuffer(ext, dtype="V1"))
                m.header.exttyp = b"FEI1"
            if axis_map is not None:
                m.header.mapc, m.header.mapr, m.header.maps = axis_map
            m.voxel_size = voxel
            m.header.origin = origin
            m.update_header_stats()
        if kind == "u1":
            # mrcfile writes uint8 as mode 6; set IMOD's unsigned flag on a mode-0 file by hand.
            raw = bytearray(path.read_bytes())
            fmt = "<ii" if raw[212] == 0x44 else ">ii"  # the file's own byte order
            raw[152:160] = struct.pack(fmt, IMOD_STAMP, 1)
            path.write_bytes(bytes(raw))
        with mrcfile.open(path, permissive=True) as m:
            expect = physical_zyx(m.data, m.header)
            if kind == "u1":
                expect = expect.view(np.uint8)
            mode = int(m.header.mode)
            voxel_read = [float(v) for v in m.voxel_size.tolist()]
            little = bytes(m.header.machst)[0] == 0x44
        if stored.dtype.itemsize > 1 and little != (order == "<"):
            raise SystemExit(f"{fname}: mrcfile did not write the byte order asked for")
        (out / (name + ".f32")).write_bytes(np.ascontiguousarray(expect, dtype="<f4").tobytes())
        cases.append({
            "file": fname,
            "expect": name + ".f32",
            "shape_zyx": list(expect.shape),
            "mode": mode,
            "little_endian": little,
            "voxel_size_a": voxel_read,
            "origin_a": list(origin),
            "nsymbt": 0 if ext is None else len(ext),
            "ext_header": None if ext is None else list(ext),
        })

    for kind in ["i1", "u1", "i2", "f4", "u2", "f2"]:
        for order in ["<", ">"]:
            add(f"{kind}_{'le' if order == '<' else 'be'}", kind, order)
    ext = bytes((i * 13) % 256 for i in range(512))
    add("f4_ext_le", "f4", "<", ext=ext)
    add("i2_ext_be", "i2", ">", ext=ext)
    add("f4_gz", "f4", "<", gzip=True)
    add("u2_gz_be_ext", "u2", ">", ext=ext, gzip=True)
    add("f4_axes_213", "f4", "<", axis_map=(2, 1, 3))
    add("f4_axes_312", "f4", "<", axis_map=(3, 1, 2))
    (out / "cases.json").write_text(json.dumps(cases, indent=1))
    print(f"mrcfile wrote {len(cases)} files into {out}")


def check_cases(d: Path) -> int:
    """(b) files capsid wrote: mrcfile.validate must pass, values and header must match."""
    import mrcfile
    import numpy as np

    cases = json.loads((d / "rust_cases.json").read_text())
    failures = []
    for c in cases:
        path = d / c["file"]
        report = io.StringIO()
        if not c.get("validate", True):
            print(f"note: {c['file']}: mrcfile.validate skipped (mode-0 uint8 above 127: mrcfile "
                  "ignores IMOD's unsigned flag); values checked as uint8")
        elif not mrcfile.validate(str(path), print_file=report):
            failures.append(f"{c['file']}: mrcfile.validate failed: {report.getvalue().strip()}")
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # any mrcfile warning is a failure here
            with mrcfile.open(path) as m:
                h = m.header
                data = m.data
                raw = path.read_bytes()
                stamp, flags = struct.unpack("<ii", raw[152:160])
                if c["uint8"]:
                    if not (stamp == IMOD_STAMP and flags & 1):
                        failures.append(f"{c['file']}: IMOD unsigned flag missing")
                    data = data.view(np.uint8)
                expect = np.fromfile(d / c["expect"], dtype="<f4").reshape(c["shape_zyx"])
                problems = []
                if int(h.mode) != c["mode"]:
                    problems.append(f"mode {int(h.mode)} != {c['mode']}")
                if data.shape != tuple(c["shape_zyx"]):
                    problems.append(f"shape {data.shape} != {c['shape_zyx']}")
                elif not np.array_equal(data.astype(np.float32), expect):
                    problems.append("values differ")
                if bytes(h.map) != b"MAP " or bytes(h.machst)[:2] != b"DD":
                    problems.append(f"stamps {bytes(h.map)!r} {bytes(h.machst)!r}")
                if int(h.nversion) != 20141:
                    problems.append(f"nversion {int(h.nversion)}")
                if (int(h.mapc), int(h.mapr), int(h.maps)) != (1, 2, 3):
                    problems.append("axis order not 1 2 3")
                if int(h.ispg) != c["ispg"]:
                    problems.append(f"ispg {int(h.ispg)} != {c['ispg']}")
                vs = m.voxel_size
                if not np.allclose([vs.x, vs.y, vs.z], c["voxel_size_a"], rtol=1e-6):
                    problems.append(f"voxel size {vs} != {c['voxel_size_a']}")
                o = h.origin
                if not np.allclose([o.x, o.y, o.z], c["origin_a"], rtol=1e-6):
                    problems.append(f"origin {o} != {c['origin_a']}")
                if int(h.nsymbt) != c["nsymbt"]:
                    problems.append(f"nsymbt {int(h.nsymbt)} != {c['nsymbt']}")
                if c["nsymbt"]:
                    ext = bytes(m.extended_header.tobytes())
                    if list(ext) != c["ext_header"]:
                        problems.append("extended header bytes differ")
                    if bytes(h.exttyp) != c["exttyp"].encode():
                        problems.append(f"exttyp {bytes(h.exttyp)!r}")
                labels = [bytes(h.label[i]).decode().rstrip() for i in range(int(h.nlabl))]
                if labels != c["labels"]:
                    problems.append(f"labels {labels} != {c['labels']}")
                v = data.astype(np.float64)  # uint8 view for IMOD-flagged mode 0
                stats = [v.min(), v.max(), v.mean(), v.std()]
                got = [float(h.dmin), float(h.dmax), float(h.dmean), float(h.rms)]
                if not np.allclose(got, stats, rtol=1e-5, atol=1e-5):
                    problems.append(f"stats {got} != {stats}")
                if problems:
                    failures.append(f"{c['file']}: " + "; ".join(problems))
    for f in failures:
        print("FAIL", f)
    print(f"mrcfile checked {len(cases)} files written by capsid: {len(cases) - len(failures)} ok")
    return 1 if failures else 0


def expected():
    """mrcfile's view of the real files (the constants of tests/mrc_real_files.rs)."""
    import mrcfile
    import numpy as np

    data_dir = ROOT.parent / "shared" / "data" / "mrc"
    if not data_dir.is_dir():
        print(f"skipped: {data_dir} not found")
        return
    for f in ["EMD-3197.map", "EMD-3001.map", "emd_3001.map.gz", "fei-extended.mrc",
              "1jzv.ccp4", "subtomo_1bxn_37.mrc"]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with mrcfile.open(data_dir / f, permissive=True) as m:
                d = m.data.astype(np.float64)
                if d.ndim == 2:
                    d = d[None]
                p = physical_zyx(d, m.header)
                print(f, "shape_zyx", p.shape, "mode", int(m.header.mode), "voxel", m.voxel_size,
                      "nsymbt", int(m.header.nsymbt),
                      "mean %.10g min %.10g max %.10g" % (p.mean(), p.min(), p.max()),
                      "p[1,2,3]" if p.shape[0] > 1 else "p[0,2,3]", p[min(1, p.shape[0] - 1), 2, 3])


def run_all() -> int:
    env = dict(os.environ, CAPSID_PYTHON=sys.executable)
    cmd = ["cargo", "test", "-p", "capsid-io", "--test", "mrc_interop", "--", "--nocapture"]
    print("running:", " ".join(cmd), f"(CAPSID_PYTHON={sys.executable})", flush=True)
    return subprocess.call(cmd, cwd=ROOT, env=env)


def main(argv):
    if len(argv) == 1 or argv[1] == "run":
        return run_all()
    if argv[1] == "write" and len(argv) == 3:
        write_cases(Path(argv[2]))
        return 0
    if argv[1] == "check" and len(argv) == 3:
        return check_cases(Path(argv[2]))
    if argv[1] == "expected":
        expected()
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
