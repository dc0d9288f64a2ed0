#!/bin/bash
# DDP started by torchrun, on one node or several (run this on every node): Lightning's
# TorchElasticEnvironment reads the ranks torchrun sets. Usage, from the repository root:
#   experiments/launch/torchrun.sh --config experiments/recipes/<recipe>.yaml [<lit-seg fit options>]
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=node0 experiments/launch/torchrun.sh --config experiments/recipes/<recipe>.yaml
# NPROC_PER_NODE defaults to the number of GPUs; MASTER_PORT to 29500.
set -euo pipefail
NPROC_PER_NODE=${NPROC_PER_NODE:-$(nvidia-smi --list-gpus | wc -l)}
NNODES=${NNODES:-1}
if [ "${NNODES}" = 1 ]; then
  rendezvous=(--standalone)
else
  rendezvous=(--node-rank "${NODE_RANK:?set NODE_RANK}" --master-addr "${MASTER_ADDR:?set MASTER_ADDR to the first node}" --master-port "${MASTER_PORT:-29500}")
fi

# BatchNorm synchronised across GPUs unless the options say otherwise; the process layout comes
# last, so that no config file overrides it.
exec torchrun --nnodes "${NNODES}" --nproc-per-node "${NPROC_PER_NODE}" "${rendezvous[@]}" \
  -m lit_seg.commands.main fit --trainer.sync_batchnorm true "$@" \
  --trainer.strategy ddp \
  --trainer.num_nodes "${NNODES}" \
  --trainer.devices "${NPROC_PER_NODE}"
