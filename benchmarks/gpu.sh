#!/usr/bin/env bash
# Every GPU figure of lit_seg's training-speed benchmarks in one run. NOT YET MEASURED: no GPU has run it.
#
# Usage, from the repository root on a CUDA machine with lit_seg installed:
#     bash benchmarks/gpu.sh [PEAK_TFLOPS]
# PEAK_TFLOPS is the reference of model-FLOPs utilisation (MFU); the default, 790, is the bf16 matrix
# rate measured on this project's H100/H200 machines (NVIDIA's datasheet says 989). Every command
# writes benchmarks/<timestamp>-<model>-<gpu>[-<mode>].json and .md, stamped with the GPU, the versions
# and the command. Set DATA_DIR to put the generated Cityscapes-sized PNGs elsewhere than /tmp.
set -euo pipefail
export HF_HUB_OFFLINE=1 WANDB_MODE=disabled
peak=${1:-790}
data=${DATA_DIR:-/tmp/lit_seg_cityscapes_sized}
bench() { lit-seg benchmark --device cuda --peak-tflops "$peak" "$@"; }
deeplab=(--model deeplabv3plus --backbone resnet50 --model-option output_stride=8 --classes 19)
fast=(--precision bf16-mixed --channels-last --compile --cudnn-benchmark --optimizer fused)

# 1. DeepLabV3+ R50 at output stride 8, 512x512 crops, batch 16, 19 classes, with every fast path:
#    bf16-mixed + channels_last + compile (+ cudnn.benchmark and the fused SGD); one synthetic batch on the GPU.
bench "${deeplab[@]}" --size 512 --batch 16 "${fast[@]}"

# 2. The ladder, one fast path added per rung: fp32 NCHW eager -> +cudnn.benchmark -> +channels_last
#    -> +bf16-mixed -> +compile -> +fused SGD; rungs run round-robin (3 rounds), ratios to the rung before.
bench --ladder "${deeplab[@]}" --size 512 --batch 16
bench --ladder --model pspnet --backbone resnet50 --classes 19 --size 512 --batch 16
bench --ladder --model fcn8s --classes 19 --size 512 --batch 8  # VGG16 padded by 100: 8 fit comfortably in fp32

# 3. The data path, against the synthetic batch of 1: 200 generated 1024x2048 PNG pairs (Cityscapes' size and
#    formats) through FolderDataModule, (a) decoded and augmented on the CPU by 15 loader workers, the default
#    path, and (b) decoded once into memory and augmented per batch on the GPU (cache + device_augment).
bench "${deeplab[@]}" --size 512 --batch 16 "${fast[@]}" --data-root "$data" --make-data 200 --data-size 1024 2048 \
    --data-option num_workers=15
bench "${deeplab[@]}" --size 512 --batch 16 "${fast[@]}" --data-root "$data" \
    --data-option num_workers=4 --data-option cache=memory --data-option device_augment=true

# 4. Inference at Cityscapes' full resolution, 1024x2048, batch 1, bf16: frames/s of the module's infer().
bench --inference "${deeplab[@]}" --size 1024 2048 --batch 1 --precision bf16-mixed --channels-last --compile \
    --cudnn-benchmark

# 5. Lightning's overhead on the GPU: Trainer.fit against a plain PyTorch loop, interleaved, for a small
#    model whose steps are short enough for per-step CPU work (hooks, logging, the NaN check's sync) to show.
bench --overhead --model deeplabv3 --backbone resnet18 --model-option multi_grid=null --classes 19 --size 256 --batch 8
