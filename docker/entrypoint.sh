#!/bin/sh
# The image's entrypoint: runs the command it is given (CMD: quackml serve).
#
# With QUACKML_TRAINING_BACKEND=ray, the server's container first joins the Ray
# cluster at QUACKML_RAY_ADDRESS (docker-compose.yml: ray-head:6379) as a node
# with no CPUs of its own: a Ray driver connects through a Ray node on its own
# host (ray.init refuses a bare head address without one), and that node's
# object store is what carries the training snapshots to the workers. Trials
# are scheduled on the ray-worker containers only.
set -eu
if [ "${QUACKML_TRAINING_BACKEND:-local}" = ray ] && [ "${1:-}" = quackml ]; then
    ray start --address="${QUACKML_RAY_ADDRESS:?QUACKML_TRAINING_BACKEND=ray needs QUACKML_RAY_ADDRESS}" \
        --num-cpus=0 --num-gpus=0 --disable-usage-stats
fi
exec "$@"
