"""Independent pure-Python reference of the Hugging Face LlamaForCausalLM forward pass.

Used by a Rust test to check the candle implementation's logits. Standard library
only (no numpy, no torch); written from the math below, all arithmetic in Python
floats (float64), weights widened exactly from their stored dtype.

Usage:  python3 reference_llama.py CHECKPOINT_DIR IDS_JSON
  CHECKPOINT_DIR  holds an HF config.json and model.safetensors (F32, BF16 or F16
                  tensors), or shards listed in model.safetensors.index.json.
  IDS_JSON        a JSON list of equal-length lists of token ids, given inline
                  (e.g. '[[1,2,3],[4,5,6]]') or as the path of a file holding it.
Prints one JSON object to stdout: {"logits": [[[float] * vocab] * T] * B}.

Conventions (HF names; weights are [out_features, in_features], y = x . W^T):
  RMSNorm(x) = x / sqrt(mean(x^2) + rms_norm_eps) * w
  h   = x + o_proj(attn(input_layernorm(x)))
  out = h + down_proj(silu(gate_proj(n)) * up_proj(n)),  n = post_attention_layernorm(h),
        silu(z) = z / (1 + exp(-z))
  attn: causal (t attends to 0..t), scores q.k / sqrt(head_dim), softmax over keys;
        query head j uses kv head j // (n_heads // n_kv_heads); positions 0..T-1.
  RoPE ("rotate half"): inv_freq[k] = rope_theta^(-2k/d), k < d/2; a = t * inv_freq[k];
        out[k] = x[k] cos a - x[k+d/2] sin a,  out[k+d/2] = x[k+d/2] cos a + x[k] sin a.
        Optional Llama-3 rope_scaling rescales inv_freq (see rope_inv_freq).
  logits = lm_head(norm(x)); lm_head = embed_tokens when tie_word_embeddings.
"""
import json, math, os, struct, sys
from operator import mul


class Tensor:
    """A row-major tensor viewed as rows of its last dimension, widened to float."""

    def __init__(self, raw, dtype, shape):
        self.cols = shape[-1] if shape else 1
        self.nrows = math.prod(shape[:-1])
        if dtype == "BF16":  # bf16 is the top half of an f32: bytes (lo, hi) -> (0, 0, lo, hi)
            raw, wide = bytes(raw), bytearray(2 * len(raw))
            wide[2::4], wide[3::4] = raw[0::2], raw[1::2]
            raw, dtype = bytes(wide), "F32"
        code = {"F32": "f", "F16": "e"}.get(dtype)
        if code is None:
            raise ValueError(f"unsupported dtype {dtype}")
        if len(raw) != self.nrows * self.cols * struct.calcsize(code):
            raise ValueError(f"byte size does not match shape {shape}")
        self.raw, self.fmt = raw, f"<{self.cols}{code}"

    def row(self, r):
        return struct.unpack_from(self.fmt, self.raw, r * struct.calcsize(self.fmt))

    def rows(self, start, count):
        size = struct.calcsize(self.fmt)
        return list(struct.iter_unpack(self.fmt, self.raw[start * size:(start + count) * size]))


def load_safetensors(path):
    with open(path, "rb") as f:
        data = memoryview(f.read())
    (n,) = struct.unpack_from("<Q", data, 0)
    header = json.loads(bytes(data[8:8 + n]))
    header.pop("__metadata__", None)
    return {name: Tensor(data[8 + n + info["data_offsets"][0]:8 + n + info["data_offsets"][1]],
                         info["dtype"], info["shape"]) for name, info in header.items()}


def linear(tensors, name, xs):
    """y = x . W^T (+ b) for each vector x in xs; W unpacked in blocks of rows."""
    weight, out = tensors[name + ".weight"], [[] for _ in xs]
    for start in range(0, weight.nrows, 4096):
        rows = weight.rows(start, 4096)
        for o, x in zip(out, xs):
            o += [sum(map(mul, w, x)) for w in rows]
    if name + ".bias" in tensors:
        bias = tensors[name + ".bias"].row(0)
        out = [[y + b for y, b in zip(o, bias)] for o in out]
    return out


def rms_norm(x, w, eps):
    scale = 1.0 / math.sqrt(sum(v * v for v in x) / len(x) + eps)
    return [v * scale * g for v, g in zip(x, w)]


def silu(z):
    return z / (1.0 + math.exp(-z)) if z >= 0 else z * math.exp(z) / (1.0 + math.exp(z))


def rope_inv_freq(cfg, d):
    rs = cfg.get("rope_scaling") or cfg.get("rope_parameters") or {}  # the latter: newer HF
    theta = cfg.get("rope_theta") or rs.get("rope_theta") or 10000.0
    inv = [1.0 / theta ** (2 * k / d) for k in range(d // 2)]
    kind = rs.get("rope_type", rs.get("type", "default"))
    if kind == "default":
        return inv
    if kind != "llama3":
        raise ValueError(f"unsupported rope_scaling {rs}")
    factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    old = rs["original_max_position_embeddings"]
    low_wavelen, high_wavelen = old / lo, old / hi
    out = []
    for f in inv:
        wavelen = 2 * math.pi / f
        if wavelen < high_wavelen:
            out.append(f)
        elif wavelen > low_wavelen:
            out.append(f / factor)
        else:
            s = (old / wavelen - lo) / (hi - lo)
            out.append((1 - s) * f / factor + s * f)
    return out


def rope(x, cos, sin):
    h = len(x) // 2
    a, b = x[:h], x[h:]
    return ([p * c - q * s for p, q, c, s in zip(a, b, cos, sin)]
            + [q * c + p * s for p, q, c, s in zip(a, b, cos, sin)])


def attention(q, k, v, n_heads, n_kv, d, cos, sin):
    """Causal grouped-query attention over one sequence; q/k/v: per-position lists."""
    group, scale, T = n_heads // n_kv, 1.0 / math.sqrt(d), len(q)
    heads = lambda x, n, t: [rope(x[i * d:(i + 1) * d], cos[t], sin[t]) for i in range(n)]
    qh = [heads(q[t], n_heads, t) for t in range(T)]
    kh = [heads(k[t], n_kv, t) for t in range(T)]
    out = [[] for _ in range(T)]
    for t in range(T):
        for j in range(n_heads):
            g = j // group
            scores = [sum(map(mul, qh[t][j], kh[s][g])) * scale for s in range(t + 1)]
            m = max(scores)
            p = [math.exp(x - m) for x in scores]
            z = sum(p)
            out[t] += [sum(p[s] * v[s][g * d + i] for s in range(t + 1)) / z for i in range(d)]
    return out


def forward(ckpt_dir, batch):
    with open(os.path.join(ckpt_dir, "config.json")) as f:
        cfg = json.load(f)
    files = ["model.safetensors"]
    if not os.path.exists(os.path.join(ckpt_dir, files[0])):  # sharded: follow the index
        with open(os.path.join(ckpt_dir, "model.safetensors.index.json")) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    W = {}
    for name in files:
        W.update(load_safetensors(os.path.join(ckpt_dir, name)))
    if cfg.get("hidden_act", "silu") != "silu":
        raise ValueError("only hidden_act=silu is supported")
    n_heads = cfg["num_attention_heads"]
    n_kv = cfg.get("num_key_value_heads") or n_heads
    d = cfg.get("head_dim") or cfg["hidden_size"] // n_heads
    eps, T = cfg["rms_norm_eps"], len(batch[0])
    assert all(len(ids) == T for ids in batch), "sequences must have equal length"
    inv = rope_inv_freq(cfg, d)
    cos = [[math.cos(t * f) for f in inv] for t in range(T)]
    sin = [[math.sin(t * f) for f in inv] for t in range(T)]
    norm_w = lambda name: W[name + ".weight"].row(0)
    # x: all B*T positions flattened (sequence-major); attention splits them back.
    embed = W["model.embed_tokens.weight"]
    assert all(0 <= i < embed.nrows for ids in batch for i in ids), "token id out of range"
    x = [list(embed.row(i)) for ids in batch for i in ids]
    for layer in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        n = [rms_norm(v, norm_w(p + "input_layernorm"), eps) for v in x]
        q, k, v = (linear(W, p + "self_attn." + m, n) for m in ("q_proj", "k_proj", "v_proj"))
        a = []
        for b in range(len(batch)):
            s = slice(b * T, (b + 1) * T)
            a += attention(q[s], k[s], v[s], n_heads, n_kv, d, cos, sin)
        x = [[r + y for r, y in zip(row, o)] for row, o in zip(x, linear(W, p + "self_attn.o_proj", a))]
        n = [rms_norm(v, norm_w(p + "post_attention_layernorm"), eps) for v in x]
        gate, up = linear(W, p + "mlp.gate_proj", n), linear(W, p + "mlp.up_proj", n)
        hid = [[silu(g) * u for g, u in zip(gr, ur)] for gr, ur in zip(gate, up)]
        x = [[r + y for r, y in zip(row, o)] for row, o in zip(x, linear(W, p + "mlp.down_proj", hid))]
    x = [rms_norm(v, norm_w("model.norm"), eps) for v in x]
    head = "model.embed_tokens" if cfg.get("tie_word_embeddings") else "lm_head"
    logits = linear(W, head, x)
    return [logits[b * T:(b + 1) * T] for b in range(len(batch))]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    arg = sys.argv[2]
    if os.path.isfile(arg):
        with open(arg) as f:
            arg = f.read()
    # json.dumps (C encoder, float repr = shortest round-trip) is far faster than json.dump.
    sys.stdout.write(json.dumps({"logits": forward(sys.argv[1], json.loads(arg))}) + "\n")


if __name__ == "__main__":
    main()
