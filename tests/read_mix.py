"""Reads samples of an almr mix with the standard library only, from the spec
in schemas/formats.md. Usage: read_mix.py OUT/mix/NAME train|valid I [I ...]
Prints one JSON line per sample: {"i", "source", "tokens"}."""
import bisect, json, os, struct, sys

stem, split, picks = sys.argv[1], ("train", "valid").index(sys.argv[2]), sys.argv[3:]
side = json.load(open(stem + ".json"))
out = os.path.dirname(os.path.dirname(stem))
idx = open(os.path.join(out, side["index"]["path"]), "rb").read()
magic, version, seq_len, n_src, n_train, n_valid = struct.unpack_from("<8s5Q", idx)
assert magic == b"ALMRMIX\0" and version == 1
lens = struct.unpack_from(f"<{2 * n_src}Q", idx, 48)
at, lists = 48 + 16 * n_src, {}
for sp in (0, 1):
    for s in range(n_src):
        n = lens[2 * s + sp]
        lists[sp, s] = struct.unpack_from(f"<{n}I", idx, at)
        at = (at + 4 * n + 7) // 8 * 8
records = at if split == 0 else at + 16 * n_train
shards, first = [], []  # per source: [(lengths, pointers, bin, fmt)], first doc numbers
for src in side["sources"]:
    shards.append([]); first.append([0])
    for sh in src["shards"]:
        p = os.path.join(out, sh["prefix"])
        x = open(p + ".idx", "rb").read()
        code, S = x[17], struct.unpack_from("<Q", x, 18)[0]
        fmt = {1: "B", 2: "b", 3: "h", 4: "i", 5: "q", 8: "H"}[code]
        lengths, ptrs = struct.unpack_from(f"<{S}i", x, 34), struct.unpack_from(f"<{S}q", x, 34 + 4 * S)
        shards[-1].append((lengths, ptrs, open(p + ".bin", "rb").read(), fmt))
        first[-1].append(first[-1][-1] + S)
for i in map(int, picks):
    pos, off, s = struct.unpack_from("<QIH", idx, records + 16 * i)
    need, tokens = seq_len + 1, []
    while need:
        doc = lists[split, s][pos]
        k = bisect.bisect_right(first[s], doc) - 1
        lengths, ptrs, data, fmt = shards[s][k]
        d = doc - first[s][k]
        take = min(lengths[d] - off, need)
        size = struct.calcsize(fmt)
        tokens += struct.unpack_from(f"<{take}{fmt}", data, ptrs[d] + off * size)
        need, pos, off = need - take, pos + 1, 0
    print(json.dumps({"i": i, "source": s, "tokens": tokens}))
