#!/usr/bin/env bash
# The packaged model's recipe in one command (docs/generalisation.md): the first leg
# (+experiment=packaged, 12 epochs) and the second (+experiment=packaged_continue, 16 epochs
# from the first leg's EMA weights), then the export. About 1 h 45 min on a 2-core CPU.
# DATA holds natural/, real_blur/, frames_train/, gopro_train_n{7,9,11,13}/ and gopro_val/
# (made by the commands in docs/generalisation.md). Rerun the same command after an
# interruption: a finished leg is skipped and an interrupted one resumes.
#
#   bash scripts/train_packaged.sh DATA [OUT] [hydra overrides for both legs...]
set -euo pipefail
if [ $# -lt 1 ]; then
    echo "usage: bash scripts/train_packaged.sh DATA [OUT] [overrides...]" >&2
    exit 2
fi
data="$(realpath "$1")"
out="$(realpath -m "${2:-runs/packaged}")"
shift $(( $# >= 2 ? 2 : 1 ))
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
bash scripts/setup.sh
# Paths through the environment (oc.env): Hydra's grammar would need quoting for some of them.
export REALBLUR_GAN_DATA_ROOT="$data" REALBLUR_GAN_FIRST_LEG="$out/first/checkpoints/joint/last.ckpt"

leg() {  # leg NAME EXPERIMENT [overrides...]: train one leg into $out/NAME, resuming if begun
    local dir="$out/$1" experiment="$2"
    shift 2
    [ -f "$dir/checkpoints/joint/DONE" ] && return 0
    local resume=()
    [ -d "$dir/checkpoints" ] && resume=("resume=$dir")
    .venv/bin/python -m realblur_gan "+experiment=$experiment" \
        'data_root=${oc.env:REALBLUR_GAN_DATA_ROOT}' logger=csv "hydra.run.dir=$dir" \
        "${resume[@]}" "$@"
}
leg first packaged "$@"
leg second packaged_continue 'stages.joint.init_from.dbgan_g=${oc.env:REALBLUR_GAN_FIRST_LEG}' "$@"
.venv/bin/python -m realblur_gan.export "$out/second/checkpoints/joint/last.ckpt" --out "$out/exported"
