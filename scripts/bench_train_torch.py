#!/usr/bin/env python3
"""PyTorch baseline for almr-train's training throughput.

Trains the Llama-3 model of a Hugging Face config.json (or a preset of
trainer/configs/) on random token ids for a few steps and reports the step
time, tokens/s and, on CUDA, peak memory and MFU. The model is written here
from the math (no `transformers`), as almr-train's `trainer/src/model.rs`
defines it:

  x = embed_tokens[ids]
  per layer:  n = RMSNorm(x);  q, k, v = n Wq^T, n Wk^T, n Wv^T  (no bias)
              q, k = RoPE(q), RoPE(k)    (rotate-half; rope_theta; Llama-3 rope_scaling)
              x = x + o_proj(causal SDPA(q, repeat_kv(k), repeat_kv(v)))
              n = RMSNorm(x);  x = x + down(silu(gate(n)) * up(n))
  logits = RMSNorm(x) lm_head^T   (lm_head = embed_tokens when tie_word_embeddings)
  RMSNorm(x) = w * x / sqrt(mean(x^2) + eps), computed in f32.

A step is what almr-train does with --grad-accum 1: mean cross-entropy of the
next token (logits widened to f32), backward, global gradient-norm clip at
1.0, AdamW (lr 3e-4, betas (0.9, 0.95), eps 1e-8, weight decay 0.1 except on
norm weights). --dtype bf16 runs the forward under torch.autocast(bf16) with
f32 master weights, gradients and moments, like almr-train's CUDA path.

The batch is one fixed random [B, L+1] array of ids, reused every step:
inputs = ids[:, :-1], targets = ids[:, 1:]. The first --warmup-steps steps
(compilation, allocator and cuBLAS warm-up) are not timed. Every step ends
with a device synchronisation, so each step is timed on its own.

FLOPs per token (training, PaLM appendix B): 6 N + 12 l h q L, with N the
parameters that take part in matrix multiplies (all but the input embedding
lookup; with tied embeddings the shared matrix counts once, as lm_head), l
layers, h query heads, q head_dim, L sequence length. The attention term
counts the full L x L score matrix (no causal halving), as PaLM does.
MFU = flops_per_token * tokens/s / (--peak-tflops * 1e12).

    python scripts/bench_train_torch.py --config tiny --micro-batch 8 --seq-len 128
    python scripts/bench_train_torch.py --config proxy-1b --micro-batch 4 --seq-len 2048 \\
        --device cuda --dtype bf16 [--compile] [--json]
"""
import argparse
import inspect
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRESETS = os.path.join(ROOT, "trainer", "configs")

FLOPS_FORMULA = ("flops/token = 6*N + 12*n_layers*n_heads*head_dim*seq_len "
                 "(PaLM; N = params in matmuls: all but the input embedding, "
                 "the tied matrix counted once as lm_head; no causal halving)")


# --------------------------------------------------------------------------- config

def load_config(arg):
    """A config dict from a config.json path or a preset name."""
    path = arg
    if not os.path.isfile(path):
        preset = os.path.join(PRESETS, arg + ".json")
        if os.path.isfile(preset):
            path = preset
        else:
            names = sorted(f[:-5] for f in os.listdir(PRESETS) if f.endswith(".json"))
            sys.exit(f"--config {arg!r}: no such file, nor a preset ({', '.join(names)})")
    with open(path) as f:
        c = json.load(f)
    c.setdefault("num_key_value_heads", c["num_attention_heads"])
    if c.get("head_dim") is None:
        c["head_dim"] = c["hidden_size"] // c["num_attention_heads"]
    c.setdefault("rms_norm_eps", 1e-6)
    rp = c.get("rope_parameters") or {}  # newer HF configs keep RoPE settings here
    if c.get("rope_theta") is None:
        c["rope_theta"] = rp.get("rope_theta", 10000.0)
    if not c.get("rope_scaling") and rp:
        c["rope_scaling"] = rp
    c.setdefault("initializer_range", 0.02)
    c.setdefault("tie_word_embeddings", False)
    if c.get("attention_bias") or c.get("mlp_bias"):
        sys.exit("attention_bias / mlp_bias configs are not supported (almr-train has no biases)")
    if c["num_attention_heads"] % c["num_key_value_heads"]:
        sys.exit("num_attention_heads must be a multiple of num_key_value_heads")
    c["_path"] = path
    return c


def rope_inv_freq(c):
    """RoPE inverse frequencies (f64), with the Llama-3 rope_scaling rule."""
    d, theta = c["head_dim"], float(c["rope_theta"])
    inv = [1.0 / theta ** (2 * k / d) for k in range(d // 2)]
    s = c.get("rope_scaling")
    if not s:
        return inv
    kind = s.get("rope_type", s.get("type"))
    if kind == "default":
        return inv
    if kind != "llama3":
        sys.exit(f"rope_scaling type {kind!r} is not supported (only llama3)")
    factor, low, high = float(s["factor"]), float(s["low_freq_factor"]), float(s["high_freq_factor"])
    old = float(s["original_max_position_embeddings"])
    low_wavelen, high_wavelen = old / low, old / high
    out = []
    for f in inv:
        wavelen = 2 * math.pi / f
        if wavelen < high_wavelen:  # high frequency: kept
            out.append(f)
        elif wavelen > low_wavelen:  # low frequency: divided by factor
            out.append(f / factor)
        else:  # in between: interpolated
            smooth = (old / wavelen - low) / (high - low)
            out.append((1 - smooth) * f / factor + smooth * f)
    return out


# --------------------------------------------------------------------------- model

class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def repeat_kv(x, n):
    """[b, kv, t, d] -> [b, kv*n, t, d]; query head j uses kv head j // n."""
    if n == 1:
        return x
    b, kv, t, d = x.shape
    return x[:, :, None].expand(b, kv, n, t, d).reshape(b, kv * n, t, d)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        h, self.nh, self.nkv, self.hd = (c["hidden_size"], c["num_attention_heads"],
                                         c["num_key_value_heads"], c["head_dim"])
        self.q_proj = nn.Linear(h, self.nh * self.hd, bias=False)
        self.k_proj = nn.Linear(h, self.nkv * self.hd, bias=False)
        self.v_proj = nn.Linear(h, self.nkv * self.hd, bias=False)
        self.o_proj = nn.Linear(self.nh * self.hd, h, bias=False)

    def forward(self, x, cos, sin):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.nh, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.nkv, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.nkv, self.hd).transpose(1, 2)
        cos, sin = cos.to(q.dtype), sin.to(q.dtype)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.nh // self.nkv
        y = F.scaled_dot_product_attention(q, repeat_kv(k, rep), repeat_kv(v, rep), is_causal=True)
        return self.o_proj(y.transpose(1, 2).reshape(b, t, self.nh * self.hd))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        h, i = c["hidden_size"], c["intermediate_size"]
        self.gate_proj = nn.Linear(h, i, bias=False)
        self.up_proj = nn.Linear(h, i, bias=False)
        self.down_proj = nn.Linear(i, h, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.input_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.self_attn = Attention(c)
        self.post_attention_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.mlp = MLP(c)

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class Body(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList(Layer(c) for _ in range(c["num_hidden_layers"]))
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])


class Llama(nn.Module):
    """Parameters named as in HF checkpoints (model.layers.N.self_attn.q_proj.weight, ...)."""

    def __init__(self, c, max_len):
        super().__init__()
        self.tied = bool(c["tie_word_embeddings"])
        self.model = Body(c)
        if not self.tied:
            self.lm_head = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)
        # RoPE tables for positions 0..max_len-1, [max_len, head_dim], in f32
        # (angles computed in f64).
        inv = torch.tensor(rope_inv_freq(c), dtype=torch.float64)
        ang = torch.arange(max_len, dtype=torch.float64)[:, None] * inv[None, :]
        ang = torch.cat((ang, ang), dim=-1)
        self.register_buffer("cos", ang.cos().float(), persistent=False)
        self.register_buffer("sin", ang.sin().float(), persistent=False)
        std = float(c["initializer_range"])
        for name, p in self.named_parameters():
            if name.endswith("norm.weight"):
                nn.init.ones_(p)
            else:
                nn.init.normal_(p, mean=0.0, std=std)

    def forward(self, ids):
        t = ids.shape[1]
        cos, sin = self.cos[:t], self.sin[:t]
        x = self.model.embed_tokens(ids)
        for layer in self.model.layers:
            x = layer(x, cos, sin)
        x = self.model.norm(x)
        head = self.model.embed_tokens.weight if self.tied else self.lm_head.weight
        return F.linear(x, head)


def matmul_params(c):
    """Parameters that take part in matrix multiplies (PaLM's N)."""
    h, i, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    q = c["num_attention_heads"] * c["head_dim"]
    kv = c["num_key_value_heads"] * c["head_dim"]
    layer = h * q + 2 * h * kv + q * h + 3 * h * i
    return c["num_hidden_layers"] * layer + v * h  # + lm_head (tied or not)


# --------------------------------------------------------------------------- main

def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True,
                   help="an HF config.json, or a preset of trainer/configs/ (tiny, proxy-125m, proxy-1b)")
    p.add_argument("--micro-batch", type=int, required=True, help="samples per step (B)")
    p.add_argument("--seq-len", type=int, required=True, help="tokens per sample (L)")
    p.add_argument("--steps", type=int, default=20, help="timed steps (default 20)")
    p.add_argument("--warmup-steps", type=int, default=3, help="untimed steps first (default 3)")
    p.add_argument("--device", choices=["cpu", "cuda"], default=None,
                   help="default: cuda if available, else cpu")
    p.add_argument("--dtype", choices=["f32", "bf16"], default=None,
                   help="forward dtype; bf16 = autocast bf16 over f32 weights (default: bf16 on cuda, f32 on cpu)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--tf32", action="store_true", help="allow TF32 matmuls for --dtype f32 on CUDA")
    p.add_argument("--peak-tflops", type=float, default=989.0,
                   help="peak dense TFLOP/s for MFU (default 989: H100/H200 SXM bf16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object only")
    a = p.parse_args()
    if a.micro_batch < 1 or a.seq_len < 1 or a.steps < 1 or a.warmup_steps < 0:
        p.error("--micro-batch, --seq-len, --steps must be >= 1 and --warmup-steps >= 0")
    return a


def main():
    a = parse_args()
    c = load_config(a.config)
    if a.threads:
        torch.set_num_threads(a.threads)
    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: torch sees no CUDA device "
                 f"(torch {torch.__version__}, built for CUDA {torch.version.cuda})")
    dtype = a.dtype or ("bf16" if device == "cuda" else "f32")
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = a.tf32
        torch.backends.cudnn.allow_tf32 = a.tf32
    dev = torch.device(device)
    say = (lambda *x, **k: None) if a.json else (lambda *x, **k: print(*x, **k, file=sys.stderr, flush=True))

    torch.manual_seed(a.seed)
    model = Llama(c, a.seq_len).to(dev)
    params = sum(p.numel() for p in model.parameters())  # the tied matrix once
    n_mm = matmul_params(c)
    flops_per_token = (6 * n_mm + 12 * c["num_hidden_layers"] * c["num_attention_heads"]
                       * c["head_dim"] * a.seq_len)

    decay = [p for n, p in model.named_parameters() if not n.endswith("norm.weight")]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("norm.weight")]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
    fused = device == "cuda" and "fused" in inspect.signature(torch.optim.AdamW).parameters
    opt_kw = {"fused": True} if fused else {}
    opt = torch.optim.AdamW(groups, lr=3e-4, betas=(0.9, 0.95), eps=1e-8, **opt_kw)

    g = torch.Generator().manual_seed(a.seed + 1)
    ids = torch.randint(0, c["vocab_size"], (a.micro_batch, a.seq_len + 1), generator=g).to(dev)
    inputs, targets = ids[:, :-1].contiguous(), ids[:, 1:].contiguous()

    fwd = torch.compile(model) if a.compile else model
    autocast = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=(dtype == "bf16"))
    all_params = list(model.parameters())

    def step():
        with autocast:
            logits = fwd(inputs)
        loss = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(all_params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.detach()

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    dev_name = torch.cuda.get_device_name(dev) if device == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    say(f"{os.path.basename(c['_path'])}: {params / 1e6:.2f}M parameters, "
        f"B={a.micro_batch} L={a.seq_len} ({a.micro_batch * a.seq_len} tokens/step), "
        f"{device} {dtype}{' compiled' if a.compile else ''}, {dev_name}, torch {torch.__version__}")

    losses, times = [], []
    try:
        sync()
        t_warm = time.perf_counter()
        for i in range(a.warmup_steps + a.steps):
            if i == a.warmup_steps:
                sync()
                warmup_s = time.perf_counter() - t_warm
                if device == "cuda":
                    torch.cuda.reset_peak_memory_stats(dev)
            t0 = time.perf_counter()
            loss = step()
            sync()
            dt = time.perf_counter() - t0
            losses.append(loss.item())
            if i >= a.warmup_steps:
                times.append(dt)
            say(f"  step {i + 1:3d}{' (warmup)' if i < a.warmup_steps else '         '} "
                f"loss {losses[-1]:.4f}  {dt * 1e3:9.1f} ms")
        if a.warmup_steps == 0:
            warmup_s = 0.0
    except torch.cuda.OutOfMemoryError as e:
        res = {"error": "out of memory", "detail": str(e).splitlines()[0],
               "config": os.path.basename(c["_path"]), "micro_batch": a.micro_batch,
               "seq_len": a.seq_len, "dtype": dtype, "compile": a.compile}
        print(json.dumps(res) if a.json else f"out of memory: {res['detail']}")
        sys.exit(1)

    tokens = a.micro_batch * a.seq_len
    med, best = statistics.median(times), min(times)
    tps = tokens / med
    res = {
        "config": os.path.basename(c["_path"]),
        "device": device,
        "device_name": dev_name,
        "torch": torch.__version__,
        "dtype": dtype,
        "compile": a.compile,
        "threads": torch.get_num_threads() if device == "cpu" else None,
        "parameters": params,
        "matmul_parameters": n_mm,
        "micro_batch": a.micro_batch,
        "seq_len": a.seq_len,
        "tokens_per_step": tokens,
        "warmup_steps": a.warmup_steps,
        "timed_steps": a.steps,
        "warmup_s": round(warmup_s, 4),
        "step_s_median": round(med, 6),
        "step_s_min": round(best, 6),
        "step_s_mean": round(statistics.fmean(times), 6),
        "tokens_per_s": round(tps, 1),
        "tokens_per_s_best": round(tokens / best, 1),
        "flops_per_token": flops_per_token,
        "flops_formula": FLOPS_FORMULA,
        "achieved_tflops": round(flops_per_token * tps / 1e12, 4),
        "initial_loss": round(losses[0], 5),
        "ln_vocab": round(math.log(c["vocab_size"]), 5),
        "final_loss": round(losses[-1], 5),
        "fused_adamw": fused,
    }
    if device == "cpu":
        import resource  # ru_maxrss: KiB on Linux
        res["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)
    if device == "cuda":
        res["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(dev) / 2**30, 3)
        res["peak_tflops"] = a.peak_tflops
        res["mfu"] = round(flops_per_token * tps / (a.peak_tflops * 1e12), 4)
    if a.json:
        print(json.dumps(res))
        return
    print(f"parameters       {params:,} ({n_mm:,} in matmuls)")
    print(f"tokens/step      {tokens:,} (B={a.micro_batch} x L={a.seq_len})")
    print(f"step time        median {med * 1e3:.1f} ms, min {best * 1e3:.1f} ms "
          f"over {a.steps} steps (after {a.warmup_steps} warmup, {warmup_s:.1f} s)")
    print(f"tokens/s         {tps:,.0f} (median), {tokens / best:,.0f} (best step)")
    print(f"initial loss     {losses[0]:.4f} (ln vocab = {math.log(c['vocab_size']):.4f}); "
          f"final {losses[-1]:.4f}")
    print(f"throughput       {flops_per_token * tps / 1e12:.3f} TFLOP/s; {FLOPS_FORMULA}")
    if device == "cuda":
        print(f"peak memory      {res['peak_memory_gib']:.2f} GiB (max_memory_allocated)")
        print(f"MFU              {res['mfu'] * 100:.1f} % of {a.peak_tflops:g} TFLOP/s ({dev_name})")


if __name__ == "__main__":
    main()
