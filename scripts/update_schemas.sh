#!/usr/bin/env bash
# Regenerates the JSON Schemas in schemas/ from the Rust types (the source of
# truth); tests/cli.rs fails when the committed files are stale.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet
for which in pipeline manifest mix; do
  target/debug/almr schema "$which" > "schemas/$which.schema.json"
done
