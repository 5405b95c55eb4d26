#!/usr/bin/env python3
"""Writes a random mmproj at the real SigLIP-So400m size for `hearth bench --mmproj` and llama.cpp's `llama-mtmd-cli`
(run by `scripts/make-vision-fixture --so400m-mmproj OUT`). Needs only numpy and llama.cpp's gguf-py (with pyyaml),
not torch: the weights are random, so no model is built or converted.
"""

import argparse
import math
import sys
from pathlib import Path

import numpy as np


def write_so400m_mmproj(dst: Path, projection: int, gguf_py: Path):
    """A random mmproj at the real SigLIP-So400m size (27 blocks of width 1152, MLP 4304, 16 heads, 896/14 geometry),
    F16 matrices and F32 vectors as llama.cpp's converter writes them, for benchmarks only (never committed: 850 MB).
    `projection` is the paired text model's width (640 pairs it with the Gemma 3 270M test model)."""
    sys.path.insert(0, str(gguf_py))
    import gguf

    rng = np.random.default_rng(0)
    d, f, layers, p = 1152, 4304, 27, 14
    w = gguf.GGUFWriter(str(dst), "clip")
    w.add_string("general.type", "mmproj")
    w.add_bool("clip.has_vision_encoder", True)
    w.add_string("clip.projector_type", "gemma3")
    for k, v in [("image_size", 896), ("patch_size", p), ("embedding_length", d), ("feed_forward_length", f),
                 ("block_count", layers), ("attention.head_count", 16), ("projection_dim", projection)]:
        w.add_uint32(f"clip.vision.{k}", v)
    w.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-6)
    w.add_array("clip.vision.image_mean", [0.5, 0.5, 0.5])
    w.add_array("clip.vision.image_std", [0.5, 0.5, 0.5])

    def mat(*shape):
        return (rng.standard_normal(shape, dtype=np.float32) / math.sqrt(shape[-1])).astype(np.float16)

    def vec(n, base=0.0):
        return (base + 0.1 * rng.standard_normal(n, dtype=np.float32)).astype(np.float32)

    w.add_tensor("v.patch_embd.weight", (rng.standard_normal((d, 3, p, p), dtype=np.float32) / 24).astype(np.float32))
    w.add_tensor("v.patch_embd.bias", vec(d))
    w.add_tensor("v.position_embd.weight", 0.5 * rng.standard_normal((4096, d), dtype=np.float32))
    for i in range(layers):
        for m in ("attn_q", "attn_k", "attn_v", "attn_out"):
            w.add_tensor(f"v.blk.{i}.{m}.weight", mat(d, d))
            w.add_tensor(f"v.blk.{i}.{m}.bias", vec(d))
        for n in ("ln1", "ln2"):
            w.add_tensor(f"v.blk.{i}.{n}.weight", vec(d, 1.0))
            w.add_tensor(f"v.blk.{i}.{n}.bias", vec(d))
        w.add_tensor(f"v.blk.{i}.ffn_up.weight", mat(f, d))
        w.add_tensor(f"v.blk.{i}.ffn_up.bias", vec(f))
        w.add_tensor(f"v.blk.{i}.ffn_down.weight", mat(d, f))
        w.add_tensor(f"v.blk.{i}.ffn_down.bias", vec(d))
    w.add_tensor("v.post_ln.weight", vec(d, 1.0))
    w.add_tensor("v.post_ln.bias", vec(d))
    w.add_tensor("mm.soft_emb_norm.weight", vec(d, 1.0))
    w.add_tensor("mm.input_projection.weight", mat(d, projection))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(dst, dst.stat().st_size, "bytes")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path, help="the mmproj GGUF to write (about 850 MB)")
    ap.add_argument("--projection", type=int, default=640, help="the paired text model's width (640: Gemma 3 270M)")
    ap.add_argument("--gguf-py", required=True, type=Path, help="llama.cpp's gguf-py folder")
    a = ap.parse_args()
    write_so400m_mmproj(a.out, a.projection, a.gguf_py)


if __name__ == "__main__":
    main()
