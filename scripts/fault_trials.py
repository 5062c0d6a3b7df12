#!/usr/bin/env python3
"""Fault trials: SIGKILL `almr build`, `almr mix` and `almr-train train` at
random moments, check what a kill leaves, rerun, and compare every output
byte with an uninterrupted run.

    python3 scripts/fault_trials.py [--kills 20] [--seed 1] [--work DIR]

Run from the repository root after `cargo build --release` (or use
scripts/fault_trials.sh, which builds first). Prints one line per kill and a
summary; exits non-zero if any trial fails.

- build: two pipelines, A (pipelines/default.toml, every step) and B
  (pipelines/tokenize_only.toml), built in turn into one output directory.
  Each trial kills a build of the other pipeline than the one OUT holds. After
  the kill OUT must hold exactly the previous complete build or exactly the
  new one (`almr verify` passes, every file equal to the reference); then the
  rerun must give exactly the new one. Most kills fall at a random moment of
  the build; every fourth waits for the new generation's manifest (the
  publishing step) and kills then.
- mix: the same with `almr mix --force` of one name with two seeds in turn:
  after a kill the mix is the old one, the new one, or absent (no sidecar).
- train: a small Llama on a mix, checkpoints every 2 steps; each trial kills
  a run once, then resumes it with `--resume` (or, killed before its first
  checkpoint, starts it again) and compares the final checkpoint's bytes with
  an uninterrupted run.
"""

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ALMR = "target/release/almr"
TRAIN = "target/release/almr-train"
PIPELINES = {"A": "pipelines/default.toml", "B": "pipelines/tokenize_only.toml"}


def tree(root, skip=()):
    """sha256 of every file reachable from root (following its links),
    hidden entries and `skip` names left out."""
    out = {}
    root = Path(root)
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in skip]
        for f in filenames:
            if f.startswith("."):
                continue
            p = Path(dirpath) / f
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, **kw)


def must(args):
    r = run(args)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, args))}\n{r.stderr}")
    return r


def timed(args):
    t = time.monotonic()
    must(args)
    return time.monotonic() - t


def kill_at(args, delay=None, wait_for=None):
    """Starts args, kills it with SIGKILL after `delay` seconds or as soon as
    `wait_for()` is true; returns whether it was still running."""
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    start = time.monotonic()
    while p.poll() is None:
        if delay is not None and time.monotonic() - start >= delay:
            break
        if wait_for is not None and wait_for():
            break
        time.sleep(0.0005)
    alive = p.poll() is None
    if alive:
        p.send_signal(signal.SIGKILL)
    p.wait()
    return alive


def publishing(out):
    """True once a generation that `.current` does not name has its manifest."""
    gens = Path(out) / ".generations"
    try:
        current = os.readlink(Path(out) / ".current")
    except OSError:
        current = None
    if not gens.is_dir():
        return False
    for g in gens.iterdir():
        if f".generations/{g.name}" != current and (
            (g / "manifest.json").exists() or (g / "manifest.json.partial").exists()
        ):
            return True
    return False


class Tally:
    def __init__(self):
        self.rows = []

    def add(self, kind, i, when, alive, state, ok, note=""):
        self.rows.append((kind, ok))
        flag = "ok  " if ok else "FAIL"
        print(f"{flag} {kind:5} kill {i:2} at {when:>14}  running={alive!s:5}  after the kill: {state:9} {note}")


def build_trials(work, kills, rng, tally):
    refs, times = {}, {}
    for name, pipeline in PIPELINES.items():
        ref = work / f"ref-{name}"
        times[name] = timed([ALMR, "build", pipeline, "--out", ref])
        refs[name] = tree(ref, skip=("mix",))
    out = work / "build-out"
    must([ALMR, "build", PIPELINES["A"], "--out", out])
    held = "A"
    for i in range(kills):
        new = "B" if held == "A" else "A"
        args = [ALMR, "build", PIPELINES[new], "--out", str(out)]
        if i % 4 == 3:
            when = "publishing"
            alive = kill_at(args, wait_for=lambda: publishing(out))
        else:
            delay = rng.uniform(0, 0.95 * times[new])
            when = f"{delay:.3f}s/{times[new]:.2f}s"
            alive = kill_at(args, delay=delay)
        now = tree(out, skip=("mix",))
        state = {refs[held] == now: f"old ({held})", refs[new] == now: f"new ({new})"}.get(True, "MIXTURE")
        verified = run([ALMR, "verify", out]).returncode == 0
        must(args)
        rerun_ok = tree(out, skip=("mix",)) == refs[new]
        ok = state != "MIXTURE" and verified and rerun_ok
        tally.add("build", i, when, alive, state, ok, "" if rerun_ok else "rerun differs")
        held = new


def mix_trials(work, kills, rng, tally):
    out = work / "mix-out"
    must([ALMR, "build", PIPELINES["A"], "--out", out])
    base = [ALMR, "mix", str(out), "--name", "m", "--almr", "0.5", "--seq-len", "64", "--samples", "3000000", "--force"]
    refs, times = {}, {}
    for seed in ("1", "2"):
        times[seed] = timed(base + ["--seed", seed])
        refs[seed] = tree(out / "mix")
    held = "2"
    for i in range(kills):
        new = "1" if held == "2" else "2"
        delay = rng.uniform(0, 0.95 * times[new])
        alive = kill_at(base + ["--seed", new], delay=delay)
        sidecar = out / "mix" / "m.json"
        now = {k: v for k, v in tree(out / "mix").items() if k in ("m.json", "m.mix")}
        if not sidecar.exists():
            state, ok = "absent", True
        else:
            state = {refs[held] == now: f"old (seed {held})", refs[new] == now: f"new (seed {new})"}.get(True, "MIXTURE")
            ok = state != "MIXTURE" and run([ALMR, "verify", out]).returncode == 0
        must(base + ["--seed", new])
        rerun_ok = tree(out / "mix") == refs[new]
        tally.add("mix", i, f"{delay:.3f}s/{times[new]:.2f}s", alive, state, ok and rerun_ok)
        held = new


def train_trials(work, kills, rng, tally):
    out = work / "mix-out"
    must([ALMR, "mix", out, "--name", "t", "--almr", "0.5", "--seq-len", "64", "--samples", "400"])
    config = json.loads(Path("trainer/configs/tiny.json").read_text())
    config.update(num_hidden_layers=2, hidden_size=32, intermediate_size=64, head_dim=8)
    cfg = work / "micro.json"
    cfg.write_text(json.dumps(config))
    steps = 12
    args = lambda run_dir: [TRAIN, "train", "--mix", str(out / "mix" / "t"), "--out", str(run_dir),
                            "--config", str(cfg), "--steps", str(steps), "--micro-batch", "2",
                            "--save-every", "2", "--eval-every", "0"]
    ref_dir = work / "train-ref"
    t = timed(args(ref_dir))
    final = f"checkpoint-{steps:06d}"
    ref = tree(ref_dir / final)
    for i in range(kills):
        run_dir = work / f"train-{i}"
        delay = rng.uniform(0, 0.95 * t)
        alive = kill_at(args(run_dir), delay=delay)
        resumed = run(args(run_dir) + ["--resume"])
        if resumed.returncode != 0 and "checkpoint" in resumed.stderr:
            shutil.rmtree(run_dir)  # killed before its first checkpoint
            state = "restarted"
            must(args(run_dir))
        elif resumed.returncode != 0 and not alive:
            state = "finished"
        else:
            state = "resumed" if resumed.returncode == 0 else "FAILED"
        ok = state != "FAILED" and tree(run_dir / final) == ref
        tally.add("train", i, f"{delay:.3f}s/{t:.2f}s", alive, state, ok)
        shutil.rmtree(run_dir)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", type=Path)
    ap.add_argument("--only", choices=["build", "mix", "train"])
    a = ap.parse_args()
    work = a.work or Path(tempfile.mkdtemp(prefix="almr-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(a.seed)
    tally = Tally()
    for kind, trials in (("build", build_trials), ("mix", mix_trials), ("train", train_trials)):
        if a.only in (None, kind):
            if kind == "train" and not (work / "mix-out").exists():
                must([ALMR, "build", PIPELINES["A"], "--out", work / "mix-out"])
            trials(work, a.kills, rng, tally)
    for kind in ("build", "mix", "train"):
        rows = [ok for k, ok in tally.rows if k == kind]
        if rows:
            print(f"{kind}: {len(rows)} kills, {sum(rows)} ok, {len(rows) - sum(rows)} failed")
    if a.work is None:
        shutil.rmtree(work)
    sys.exit(0 if all(ok for _, ok in tally.rows) else 1)


if __name__ == "__main__":
    main()
