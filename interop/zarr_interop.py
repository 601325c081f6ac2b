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

  check labels|values MAP.mrc MAP.zarr
      Checks an OME-Zarr image capsid wrote from MAP.mrc (crates/capsid-io/tests/zarr_write.rs):
      a Zarr v2 group with OME 0.4 multiscales (axes z, y, x in angstrom), level 0 equal to
      mrcfile's data (uint8 for labels), each level k with scale 2^k × the MRC's voxel size and
      shape ceil(previous / 2); level 1 equal to data[::2, ::2, ::2] (labels, translation = the
      MRC's origin) or to the mean of 2 × 2 × 2 blocks (values, translation + half a voxel).

  ome MAP.zarr LEVELS SCALE0
      ome-zarr-py's Reader opens an image capsid wrote: one image node with LEVELS levels, each
      half the previous one (rounded up), axes z, y, x in angstrom, level k scaled by
      SCALE0 * 2^k. (Run with a Python that has ome-zarr: copick brings it.)
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


def ome(path: Path, levels: int, scale0: float) -> int:
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    nodes = list(Reader(parse_url(str(path), mode="r"))())
    assert nodes, f"ome-zarr finds no image in {path}"
    node = nodes[0]
    shapes = [tuple(d.shape) for d in node.data]
    assert len(shapes) == levels, shapes
    for a, b in zip(shapes, shapes[1:]):
        assert b == tuple((n + 1) // 2 for n in a), shapes
    axes = node.metadata["axes"]
    assert [a["name"] for a in axes] == ["z", "y", "x"], axes
    assert all(a["unit"] == "angstrom" for a in axes), axes
    for k, transforms in enumerate(node.metadata["coordinateTransformations"]):
        scale = [t["scale"] for t in transforms if t["type"] == "scale"][0]
        assert scale == [scale0 * 2 ** k] * 3, (k, scale)
    print(f"ok: ome-zarr reads {path}: levels {shapes}")
    return 0


def block_mean(d):
    """Mean of each 2 x 2 x 2 block, partial blocks at odd edges averaging what exists."""
    pad = [(0, n % 2) for n in d.shape]
    s = np.pad(d.astype(np.float64), pad)
    c = np.pad(np.ones_like(d, dtype=np.float64), pad)
    def pool(a):
        z, y, x = a.shape
        return a.reshape(z // 2, 2, y // 2, 2, x // 2, 2).sum(axis=(1, 3, 5))
    return pool(s) / pool(c)


def check(kind: str, mrc_path: Path, zarr_path: Path) -> int:
    import mrcfile
    with mrcfile.open(mrc_path, permissive=False) as m:
        data = np.asarray(m.data).copy()
        voxel = float(m.voxel_size.x)
        origin = [float(m.header.origin[a]) for a in "zyx"]
    g = zarr.open_group(zarr_path, mode="r")
    assert g.metadata.zarr_format == 2, g.metadata.zarr_format
    ms = g.attrs["multiscales"][0]
    assert ms["version"] == "0.4", ms
    assert [a["name"] for a in ms["axes"]] == ["z", "y", "x"], ms["axes"]
    assert all(a["unit"] == "angstrom" and a["type"] == "space" for a in ms["axes"]), ms["axes"]
    prev = data.shape
    for k, ds in enumerate(ms["datasets"]):
        arr = g[ds["path"]]
        t = {c["type"]: c[c["type"]] for c in ds["coordinateTransformations"]}
        assert t["scale"] == [voxel * 2 ** k] * 3, (k, t)
        shift = 0.0 if kind == "labels" else (2 ** k - 1) / 2 * voxel
        assert np.allclose(t["translation"], [o + shift for o in origin]), (k, t, origin)
        want = data.shape if k == 0 else tuple((n + 1) // 2 for n in prev)
        assert arr.shape == want, (k, arr.shape, want)
        prev = arr.shape
        if kind == "labels":
            assert arr.dtype == np.uint8, arr.dtype
    l0 = g[ms["datasets"][0]["path"]][...]
    assert np.array_equal(l0, data.astype(l0.dtype)), "level 0 differs from the MRC"
    if len(ms["datasets"]) > 1:
        l1 = g[ms["datasets"][1]["path"]][...]
        want = data[::2, ::2, ::2] if kind == "labels" else block_mean(data)
        # float16 maps (capsid's --probs f16) hold means rounded to half precision.
        rtol = 2.0 ** -10 if l1.dtype == np.float16 else 1e-6
        assert np.allclose(l1, want, rtol=rtol, atol=1e-6), "level 1 differs from numpy's downsampling"
    if kind == "labels":
        assert "image-label" in g.attrs, "label image without image-label metadata"
    print(f"ok: {zarr_path} ({len(ms['datasets'])} levels)")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "write":
        sys.exit(write(Path(sys.argv[2])))
    if len(sys.argv) == 5 and sys.argv[1] == "ome":
        sys.exit(ome(Path(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))
    if len(sys.argv) == 5 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])))
    print(__doc__)
    sys.exit(2)
