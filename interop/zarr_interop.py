#!/usr/bin/env python3
"""OME-Zarr interoperability: zarr-python writes tomograms the way the CZ cryoET Data Portal and
copick store them, for capsid to read (crates/capsid-io/tests/zarr_read.rs runs this with
CAPSID_PYTHON=/path/to/python that has zarr, numcodecs and numpy).

  write DIR
      Writes DIR/v2_blosc.zarr (Zarr v2, blosc-zstd with byte shuffle, OME 0.4 multiscales in
      .zattrs, three levels at 10/20/40 Å: copick's layout) and DIR/v3_sharded.zarr (Zarr v3,
      sharding with zstd inner chunks, OME 0.5 metadata under "ome", axes in nanometres, a
      translation), each voxel of level 0 at [z, y, x] holding (z * 1000 + y * 10 + x) * 0.25 - 7,
      and DIR/expected.json with each store's level shapes, voxel sizes and origins in Å.
"""

import json
import sys
from pathlib import Path

import numpy as np
import zarr
from numcodecs import Blosc


def volume(shape):
    z, y, x = np.indices(shape)
    return ((z * 1000 + y * 10 + x) * 0.25 - 7.0).astype(np.float32)


def multiscales(version, unit, scales, translation):
    return [{
        "version": version,
        "axes": [{"name": a, "type": "space", "unit": unit} for a in "zyx"],
        "datasets": [
            {"path": str(i), "coordinateTransformations": [
                {"type": "scale", "scale": [s, s, s]},
                {"type": "translation", "translation": [translation] * 3},
            ]}
            for i, s in enumerate(scales)
        ],
    }]


def write(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    data = volume((20, 36, 28))
    levels = [data, data[::2, ::2, ::2], data[::4, ::4, ::4]]
    expected = {}

    g = zarr.open_group(out / "v2_blosc.zarr", mode="w", zarr_format=2)
    for i, d in enumerate(levels):
        g.create_array(str(i), data=np.ascontiguousarray(d), chunks=(8, 16, 16),
                       compressors=Blosc(cname="zstd", clevel=5, shuffle=Blosc.SHUFFLE))
    g.attrs["multiscales"] = multiscales("0.4", "angstrom", [10.0, 20.0, 40.0], 0.0)
    expected["v2_blosc.zarr"] = [
        {"shape_zyx": list(d.shape), "voxel_a": 10.0 * 2 ** i, "origin_a": 0.0}
        for i, d in enumerate(levels)]

    g = zarr.open_group(out / "v3_sharded.zarr", mode="w", zarr_format=3)
    for i, d in enumerate(levels[:2]):
        g.create_array(str(i), data=np.ascontiguousarray(d), chunks=(4, 8, 8), shards=(8, 16, 16),
                       compressors=zarr.codecs.ZstdCodec(level=3))
    g.attrs["ome"] = {"version": "0.5",
                      "multiscales": multiscales("0.5", "nanometer", [1.0, 2.0], 0.5)}
    expected["v3_sharded.zarr"] = [
        {"shape_zyx": list(d.shape), "voxel_a": 10.0 * 2 ** i, "origin_a": 5.0}
        for i, d in enumerate(levels[:2])]
    (out / "expected.json").write_text(json.dumps(expected))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "write":
        sys.exit(write(Path(sys.argv[2])))
    print(__doc__)
    sys.exit(2)
