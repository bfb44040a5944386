#!/usr/bin/env bash
# The README's nnU-Net worked example, run as written on phantom data (CPU): an unlabelled
# DICOM folder and a few labelled studies -> planessl pretraining of the network nnU-Net
# plans -> nnUNetv2_train ... -pretrained_weights. Needs pip install '.[nnunet]'.
#
#   bash benchmarks/nnunet_example.sh WORK [TRAINER]
#
# WORK: a new scratch folder; TRAINER: nnU-Net trainer (default nnUNetTrainer_1epoch, the
# shortest; full training is nnUNetTrainer on a GPU: drop -tr and -device). Logs of every
# step go to WORK/logs/. benchmarks/results/nnunet_example/ keeps the run's nnU-Net log.
set -euo pipefail
work=${1:?usage: nnunet_example.sh WORK [TRAINER]}
trainer=${2:-nnUNetTrainer_1epoch}
mkdir -p "$work/logs"
cd "$work"
log() { echo "+ $*" | tee -a logs/commands.txt; }
step() { local name=$1; shift; log "$*"; /usr/bin/time -f "%e s" -a -o logs/times.txt "$@" > "logs/$name.log" 2>&1 || { tail -20 "logs/$name.log"; exit 1; }; echo "$name: $(tail -1 logs/times.txt)" >> logs/steps.txt; }

# Data: 12 unlabelled phantom exams as DICOM, 6 labelled ones in the ACDC layout.
step phantom_dicom planessl phantom --subjects 12 --format dicom --out dicom_unlabelled
step phantom_acdc planessl phantom --subjects 6 --seed 1 --format acdc --out acdc_labelled

# --- the README's commands, as written ---
export nnUNet_raw="$PWD/nnUNet_raw" nnUNet_preprocessed="$PWD/nnUNet_preprocessed" \
       nnUNet_results="$PWD/nnUNet_results" nnUNet_n_proc_DA=1 nnUNet_def_n_proc=1 OMP_WAIT_POLICY=PASSIVE
step ingest_unlabelled planessl ingest dicom_unlabelled --out cache_unlabelled --workers 1
step ingest_labelled planessl ingest acdc_labelled --out cache_labelled --workers 1
step export_dataset planessl export-dataset cache_labelled --nnunet "$nnUNet_raw" --id 501
# CPU only: -overwrite_target_spacing plans the 2D network on a 3.75 mm grid (64 x 64 patches
# instead of 128 x 128), so that nnU-Net's 250 iterations of one epoch take minutes on CPU.
step plan nnUNetv2_plan_and_preprocess -d 501 -c 2d -np 1 -npfp 1 --verify_dataset_integrity \
    -overwrite_target_spacing 8.9 3.75 3.75
step pretrain planessl pretrain --data cache_unlabelled \
    --network "nnunet:$nnUNet_preprocessed/Dataset501_PlaneSSL/nnUNetPlans.json" \
    --out run --max-steps 40 data.batch_size=4 trainer.progress_bar=false
step export planessl export run --nnunet run/nnunet_pretrained.pth
step train nnUNetv2_train 501 2d 0 -tr "$trainer" -device cpu \
    -pretrained_weights run/nnunet_pretrained.pth
# What benchmarks/results/nnunet_example/ keeps: the commands, step times, nnU-Net's own
# training log and stdout (its "Loading pretrained weights" lines) and its validation Dice.
fold="nnUNet_results/Dataset501_PlaneSSL/${trainer}__nnUNetPlans__2d/fold_0"
mkdir -p results
cp logs/commands.txt logs/steps.txt results/
cp "$fold"/training_log_*.txt results/nnunet_training_log.txt
cp "$fold/validation/summary.json" results/nnunet_validation_summary.json
grep -v -E "^(encoder|decoder)\." logs/train.log > results/nnunet_train_stdout.txt
grep -c -E "^(encoder|decoder)\..* shape" logs/train.log > results/pretrained_tensors_listed.txt || true
echo "done; logs in $work/logs, kept files in $work/results"
