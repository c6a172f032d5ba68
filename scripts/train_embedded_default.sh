#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The openvla_ros Authors
#
# Rebuild the embedded default (data/embedded_default) from nothing with the project's own
# tools only: scripted-expert demos -> LeRobot v3 dataset -> a random small OpenVLA base ->
# `openvla-ros finetune --full` -> `openvla-ros eval-sim` on held-out seeds. Nothing here is
# special to the demo: every setting is a flag of those commands. The numbers it printed when
# the shipped checkpoint was made are in data/embedded_default/TRAINING.md.
#
# Usage: scripts/train_embedded_default.sh [WORK_DIR]   (default: out/embedded_default_build)
# Environment (data/embedded_default/TRAINING.md, "Rebuild settings"; checked before anything
# is made): STEPS1-5, THREADS, THREADS_LATE, DEMOS_CUBE, DEMOS_COLOUR(_MORE), DART_CUBE,
# DART_COLOUR, CONTRAST_COLOUR, EVAL_EPISODES override the defaults (those that made the shipped
# checkpoint, except THREADS_LATE: the shipped run trained every stage on 1 thread);
# EVAL_DOMAIN (41): the ROS domain of the first evaluation (the second uses the next one);
# INSTALL=1 copies the result into data/embedded_default. Logs: WORK_DIR/demos.log (the
# demonstrations made while training) and WORK_DIR/eval_TASK.log.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
venv="${OPENVLA_ROS_VENV:-$repo/.venv}"
export PATH="$venv/bin:$PATH"
work="${1:-out/embedded_default_build}"
steps1="${STEPS1:-1000}"
steps2="${STEPS2:-6000}"
steps3="${STEPS3:-2500}"
threads="${THREADS:-1}"
# The cores this process may use (nproc would also obey an OMP_NUM_THREADS in the
# environment; each command below sets its own).
cores="$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)"
threads_late="${THREADS_LATE:-$cores}"
demos_cube="${DEMOS_CUBE:-300}"
demos_colour="${DEMOS_COLOUR:-342}"
demos_colour_more="${DEMOS_COLOUR_MORE:-500}"
dart_cube="${DART_CUBE:-700}"
dart_colour="${DART_COLOUR:-832}"
steps4="${STEPS4:-12000}"
contrast_colour="${CONTRAST_COLOUR:-1816}"
steps5="${STEPS5:-9000}"
eval_episodes="${EVAL_EPISODES:-60}"
domain="${EVAL_DOMAIN:-41}"
install="${INSTALL:-0}"
key=sim_reach
# Refuse a bad setting before anything is made (bash arithmetic would read "abc" as 0).
bad() { echo "train_embedded_default.sh: $1" >&2; exit 2; }
whole() { [[ "$2" =~ ^[1-9][0-9]*$ ]] && [ "${#2}" -le 7 ] && [ "$2" -le "$3" ] ||
  bad "$1 must be a whole number from 1 to $3, not '$2'"; }
for v in STEPS1:"$steps1" STEPS2:"$steps2" STEPS3:"$steps3" STEPS4:"$steps4" \
    STEPS5:"$steps5"; do
  whole "${v%%:*}" "${v#*:}" 9999999
done
# Each demo set's scene seeds start 100000 after the previous set's (the evaluation's at
# 1000000): larger counts would train on another set's scenes or on the evaluation's.
for v in DEMOS_CUBE:"$demos_cube" DEMOS_COLOUR:"$demos_colour" \
    DEMOS_COLOUR_MORE:"$demos_colour_more" DART_CUBE:"$dart_cube" \
    DART_COLOUR:"$dart_colour" CONTRAST_COLOUR:"$contrast_colour" \
    EVAL_EPISODES:"$eval_episodes"; do
  whole "${v%%:*}" "${v#*:}" 99999
done
[ $((demos_colour + demos_colour_more)) -le 99999 ] ||
  bad "DEMOS_COLOUR + DEMOS_COLOUR_MORE must be at most 99999 (one seed range)"
whole THREADS "$threads" "$cores"
whole THREADS_LATE "$threads_late" "$cores"
# The two evaluations use EVAL_DOMAIN and the next one; ROS 2 advises domain IDs 0-101 (higher
# ones can collide with the operating system's ephemeral ports).
[[ "$domain" =~ ^(0|[1-9][0-9]{0,2})$ ]] && [ "$domain" -le 100 ] ||
  bad "EVAL_DOMAIN must be a ROS domain ID from 0 to 100 (it uses the next one too), not '$domain'"
[[ "$install" =~ ^[01]$ ]] || bad "INSTALL must be 0 or 1, not '$install'"
[ -x "$venv/bin/openvla-ros" ] ||
  bad "no openvla-ros in $venv/bin (OPENVLA_ROS_VENV; run scripts/setup_env.sh first)"
mkdir -p "$work"
if [ -d "$work/model/training" ] && [ ! -d "$work/stage4" ] && [ ! -d "$work/demos_c" ]; then
  # Before stage 5 existed, stage 4 wrote to model/: resuming there would continue stage 4.
  echo "$work/model holds a stage-4 run of an older version of this script:" \
    "move it to $work/stage4 (or use a new WORK_DIR)" >&2
  exit 2
fi
start=$(date +%s)
stamp() { echo "[$(( $(date +%s) - start )) s] $*"; }

# 1. Expert demonstrations (scenes from seeds 0.. and 100000..; eval-sim's default seeds start
#    at 1000000, so evaluation scenes are never trained on): reach_cube alone, then copies with
#    more appended (each stage trains on a superset of the previous one's data). Only
#    demos_cube is made before training starts; the others are made on the second core while
#    stages 1 and 2 train on the first (THREADS, default 1); stages 3-5 wait until all of
#    them are made and then train on every core (THREADS_LATE, default all): a second
#    thread speeds a training step up ~1.4x. Where the demos on one core fall behind the
#    training, stage 3 waits for them (26 min on a slow VM; training card). Datasets appear
#    by a rename once
#    complete, so a partial one is never trained on, and a rerun resumes where it stopped.
# extend SRC DEST LABEL SIM-DEMOS-ARGS...: DEST = a copy of SRC (none if SRC is "") with those
# episodes appended, made in DEST.tmp and renamed once complete.
extend() {
  local src="$1" dest="$2" label="$3"
  shift 3
  [ -f "$dest/meta/info.json" ] && return 0
  stamp "demos: $label"
  rm -rf "$dest.tmp" "$dest"
  if [ -n "$src" ]; then cp -r "$src" "$dest.tmp"; fi
  openvla-ros sim-demos --out "$dest.tmp" --unnorm-key "$key" "$@"
  mv "$dest.tmp" "$dest"
}
extend "" "$work/demos_cube" "reach_cube x $demos_cube" \
  --task reach_cube --episodes "$demos_cube" --seed 0 --workers 2
later_demos() {
  extend "$work/demos_cube" "$work/demos_all" "+ reach_colour x $demos_colour" \
    --task reach_colour --episodes "$demos_colour" --seed 100000
  extend "$work/demos_all" "$work/demos_big" \
    "+ reach_colour x $demos_colour_more (the next seeds)" \
    --task reach_colour --episodes "$demos_colour_more" --seed $((100000 + demos_colour))
  # (An older version of this script made demos_dart in one step, without demos_dart1.)
  [ -f "$work/demos_dart/meta/info.json" ] || extend "$work/demos_big" "$work/demos_dart1" \
    "+ perturbed (DART-style) reach_cube x $dart_cube" \
    --task reach_cube --episodes "$dart_cube" --seed 200000 --perturb-prob 0.3 --perturb-m 0.05
  extend "$work/demos_dart1" "$work/demos_dart" "+ perturbed reach_colour x $dart_colour" \
    --task reach_colour --episodes "$dart_colour" --seed 300000 --perturb-prob 0.3 \
    --perturb-m 0.05
  extend "$work/demos_dart" "$work/demos_c" \
    "+ contrastive reach_colour x $contrast_colour (each layout once per colour)" \
    --task reach_colour --episodes "$contrast_colour" --seed 400000 --every-colour
}
# Background jobs (the demos, later the evaluations) are stopped with the script when it
# exits early (an error; a signal once the foreground command has ended): their children
# first, then their shells.
stop_bg() {
  local p
  for p in $(jobs -pr); do pkill -P "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
}
trap stop_bg EXIT
echo "== $(date)" >> "$work/demos.log"
later_demos >> "$work/demos.log" 2>&1 &
demos_pid=$!
demos_running() { jobs -pr | grep -qx "$demos_pid"; }
# need DIR: wait until the background demos have written DIR; fail as soon as they have failed
# (the last set missing and the job gone), not only when a stage needs the missing set.
need() {
  [ -f "$1/meta/info.json" ] || stamp "waiting for $1 (the demonstrations: $work/demos.log)"
  while [ ! -f "$1/meta/info.json" ]; do
    if ! demos_running && [ ! -f "$1/meta/info.json" ]; then
      echo "the demonstrations stopped before $1 was complete; see $work/demos.log" >&2
      exit 1
    fi
    sleep 5
  done
  if ! demos_running && [ ! -f "$work/demos_c/meta/info.json" ]; then
    echo "the demonstrations stopped before $work/demos_c was complete; see $work/demos.log" >&2
    exit 1
  fi
}

# 2. A random base with OpenVLA's architecture and published layout; sizes for this CPU:
#    32 px patches (49 image tokens per tower), 64-wide towers, a 4 x 128 Llama.
stamp "base checkpoint"
openvla-ros make-checkpoint "$work/base" --seed 0 --shards 1 --dtype fp32 \
  --patch-size 32 --vision-dim 64 --vision-depth 3 --vision-heads 2 \
  --llm-hidden 128 --llm-layers 4 --llm-heads 4

# 3. Full fine-tunes from scratch (towers included) with OpenVLA's loss (7 action tokens +
#    EOS): stage 1 on reach_cube, stage 2 from stage 1 on reach_cube + reach_colour, stage 3
#    from stage 2 on the larger set (stage 2 had started to overfit its 4.5 k frames), stage 4
#    from stage 3 on that set plus the perturbed (DART-style) demos, with a cosine decay,
#    stage 5 from stage 4 on all of it plus the contrastive colour demos (lr 5e-4, cosine).
common=(--full --train-vision --batch 16 --lr 1e-3 --weight-decay 0.0 --max-grad-norm 1.0
        --val-every 1000 --val-frames 128 --save-every 500 --log-every 50 --seed 0)
early=(--threads "$threads" "${common[@]}")
late=(--threads "$threads_late" "${common[@]}")
resume() { [ -d "$1/training" ] && echo --resume || true; }
warmup() { if [ "$2" -gt "$1" ]; then echo "$1"; else echo $(($2 - 1)); fi; }  # < steps
stamp "finetune stage 1: $steps1 steps on reach_cube"
OMP_NUM_THREADS="$threads" openvla-ros finetune --base "$work/base" \
  --dataset "$work/demos_cube" --unnorm-key "$key" --out "$work/stage1" --steps "$steps1" \
  --val-episodes 15 --save-dtype fp32 "${early[@]}" $(resume "$work/stage1")
need "$work/demos_all"
stamp "finetune stage 2: $steps2 steps on reach_cube + reach_colour"
OMP_NUM_THREADS="$threads" openvla-ros finetune --base "$work/stage1" \
  --dataset "$work/demos_all" --unnorm-key "$key" --overwrite-key --out "$work/stage2" \
  --steps "$steps2" --val-episodes 25 --save-dtype bf16 "${early[@]}" \
  $(resume "$work/stage2")
need "$work/demos_c"  # every set: the second core is free for training from here on
stamp "finetune stage 3: $steps3 steps on the larger reach_cube + reach_colour set"
OMP_NUM_THREADS="$threads_late" openvla-ros finetune --base "$work/stage2" \
  --dataset "$work/demos_big" --unnorm-key "$key" --overwrite-key --out "$work/stage3" \
  --steps "$steps3" --val-episodes 25 --save-dtype bf16 "${late[@]}" \
  $(resume "$work/stage3")
stamp "finetune stage 4: $steps4 steps on the clean + perturbed set, cosine decay"
OMP_NUM_THREADS="$threads_late" openvla-ros finetune --base "$work/stage3" \
  --dataset "$work/demos_dart" --unnorm-key "$key" --overwrite-key --out "$work/stage4" \
  --steps "$steps4" --val-episodes 25 --save-dtype bf16 --lr-schedule cosine \
  --warmup-steps "$(warmup 300 "$steps4")" "${late[@]}" $(resume "$work/stage4")
stamp "finetune stage 5: $steps5 steps on everything + the contrastive colour demos, cosine"
OMP_NUM_THREADS="$threads_late" openvla-ros finetune --base "$work/stage4" \
  --dataset "$work/demos_c" --unnorm-key "$key" --overwrite-key --out "$work/model" \
  --steps "$steps5" --val-episodes 25 --save-dtype bf16 --lr-schedule cosine \
  --warmup-steps "$(warmup 200 "$steps5")" "${late[@]}" --lr 5e-4 $(resume "$work/model")

# 4. Closed-loop evaluation through the ROS graph on held-out seeds, the two tasks at once on
#    two ROS domains (EVAL_DOMAIN and the next one; eval-sim refuses a domain already in use).
wait "$demos_pid" || { echo "the demonstrations failed; see $work/demos.log" >&2; exit 1; }
pids=()
for task in reach_cube reach_colour; do
  stamp "eval-sim $task x $eval_episodes (ROS_DOMAIN_ID $domain)"
  ROS_DOMAIN_ID="$domain" openvla-ros eval-sim --checkpoint "$work/model" --task "$task" \
    --episodes "$eval_episodes" --seed 1000000 --out "$work/eval_$task" --pictures 6 \
    > "$work/eval_$task.log" 2>&1 &
  pids+=("$!")
  domain=$((domain + 1))
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
[ "$rc" = 0 ] || { echo "eval-sim failed; see $work/eval_*.log" >&2; exit 1; }
for task in reach_cube reach_colour; do
  grep -A8 "^$task: success" "$work/eval_$task.log" || true
done
stamp "done"

if [ "$install" = 1 ]; then
  dest=data/embedded_default
  mkdir -p "$dest"
  for f in config.json generation_config.json preprocessor_config.json processor_config.json \
      tokenizer.json tokenizer.model tokenizer_config.json special_tokens_map.json \
      added_tokens.json dataset_statistics.json model.safetensors.index.json; do
    cp "$work/model/$f" "$dest/"
  done
  cp "$work/model/"model-*.safetensors "$dest/"
  echo "installed into $dest (update TRAINING.md with the numbers above)"
fi
