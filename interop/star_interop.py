#!/usr/bin/env python3
"""STAR interoperability between capsid and the `starfile` Python package.

Driven by the Rust test crates/capsid-io/tests/particles_star_interop.rs (run it with
CAPSID_PYTHON=/path/to/python that has starfile and pandas). Two commands:

  dump SRC_DIR OUT_DIR
      For every *.star in SRC_DIR, write OUT_DIR/<name>.json with what starfile reads: per block its
      key-value pairs or its loop (columns and rows). Also writes STAR files of particles with
      starfile itself (OUT_DIR/starfile_*.star) and their dumps, for capsid to read.
      Values: numbers as JSON numbers, text as strings, missing (NaN) as null.

  check DIR
      For every DIR/<name>.star written by capsid with DIR/<name>.expected.json
      ({"block": NAME, "columns": {COLUMN: [values]}}), read the STAR with starfile and check that
      the block has exactly those columns with equal values (numbers to 1e-9
      relative, text exactly); with "optics": {COLUMN: [values]}, the block data_optics too
      (RELION 3.1 and RELION 5's documented optics columns). Prints one line per file; exits 1 on
      the first mismatch.
"""

import json
import math
import sys
from pathlib import Path

import pandas as pd
import starfile


def plain(v):
    """A JSON-able value: float/int for numbers, str for text, None for NaN."""
    if isinstance(v, str):
        return v
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if math.isnan(f):
        return None
    return f


def dump_file(star_path: Path) -> dict:
    blocks = []
    for name, block in starfile.read(star_path, always_dict=True).items():
        if isinstance(block, pd.DataFrame):
            blocks.append(
                {
                    "name": name,
                    "columns": [str(c) for c in block.columns],
                    "rows": [[plain(v) for v in row] for row in block.itertuples(index=False)],
                }
            )
        else:
            blocks.append({"name": name, "pairs": {str(k): plain(v) for k, v in block.items()}})
    return {"file": star_path.name, "blocks": blocks}


def write_starfile_particles(out_dir: Path) -> list:
    """STAR files written by starfile for capsid to read."""
    written = []
    particles = pd.DataFrame(
        {
            "rlnTomoName": ["TS_01", "TS 02", "TS_01"],
            "rlnCoordinateX": [10.25, 0.0, 63.5],
            "rlnCoordinateY": [20.5, 199.75, 1.125],
            "rlnCoordinateZ": [3.0, 99.125, 12.0],
            "rlnAngleRot": [10.0, -170.0, 33.5],
            "rlnAngleTilt": [40.0, 0.0, 179.0],
            "rlnAnglePsi": [-70.0, 5.0, 0.0],
            "rlnClassNumber": [1, 2, 1],
            "rlnAutopickFigureOfMerit": [0.93, 0.5, 0.001],
        }
    )
    optics = pd.DataFrame({"rlnOpticsGroup": [1], "rlnImagePixelSize": [10.0]})
    p = out_dir / "starfile_particles.star"
    starfile.write({"optics": optics, "particles": particles}, p, overwrite=True)
    written.append(p)
    named = particles.drop(columns=["rlnClassNumber"]).assign(capsidClassName=["ribosome", "4b4t", "ribosome"])
    p = out_dir / "starfile_named.star"
    starfile.write({"particles": named}, p, overwrite=True)
    written.append(p)
    return written


def cmd_dump(src: Path, out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    sources = sorted(src.glob("*.star")) + write_starfile_particles(out)
    for star in sources:
        (out / (star.stem + ".json")).write_text(json.dumps(dump_file(star)))
        print(f"dumped {star}")
    return 0


def same(a, b) -> bool:
    if isinstance(b, (int, float)) and not isinstance(b, bool):
        try:
            fa = float(a)
        except (TypeError, ValueError):
            return False
        return math.isclose(fa, float(b), rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def cmd_check(directory: Path) -> int:
    stars = sorted(directory.glob("*.star"))
    if not stars:
        print(f"no .star files in {directory}")
        return 1
    for star in stars:
        expected = json.loads((directory / (star.stem + ".expected.json")).read_text())
        blocks = starfile.read(star, always_dict=True)
        df = blocks.get(expected["block"])
        if not isinstance(df, pd.DataFrame):
            print(f"{star}: starfile found no loop in block '{expected['block']}' (blocks: {list(blocks)})")
            return 1
        want_cols = sorted(expected["columns"])
        if sorted(df.columns) != want_cols:
            print(f"{star}: starfile columns {list(df.columns)} != capsid's {want_cols}")
            return 1
        for col, values in expected["columns"].items():
            got = [plain(v) for v in df[col]]
            if len(got) != len(values):
                print(f"{star}: column {col}: starfile has {len(got)} rows, capsid wrote {len(values)}")
                return 1
            for i, (g, w) in enumerate(zip(got, values)):
                if not same(g, w):
                    print(f"{star}: column {col} row {i + 1}: starfile reads {g!r}, capsid wrote {w!r}")
                    return 1
        optics = expected.get("optics")
        if optics is not None:
            odf = blocks.get("optics")
            if not isinstance(odf, pd.DataFrame):
                print(f"{star}: starfile found no loop in block 'optics' (blocks: {list(blocks)})")
                return 1
            if sorted(odf.columns) != sorted(optics):
                print(f"{star}: optics columns {list(odf.columns)} != {sorted(optics)}")
                return 1
            for col, values in optics.items():
                got = [plain(v) for v in odf[col]]
                if len(got) != len(values) or not all(same(g, w) for g, w in zip(got, values)):
                    print(f"{star}: optics column {col}: starfile reads {got}, expected {values}")
                    return 1
        print(f"ok {star.name}: {len(df)} rows, {len(want_cols)} columns equal")
    return 0


def main(argv) -> int:
    if len(argv) == 4 and argv[1] == "dump":
        return cmd_dump(Path(argv[2]), Path(argv[3]))
    if len(argv) == 3 and argv[1] == "check":
        return cmd_check(Path(argv[2]))
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
