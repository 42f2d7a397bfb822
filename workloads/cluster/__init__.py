"""Cluster experiments: runners that drive a week stack on a real Kubernetes cluster (docs/cluster-experiments.md).

- `kube`: finding the cluster (kubeconfig, context, in-cluster) and the API calls runners make (`Api`, `KubeApi`).
- `session`: one experiment's time on the cluster; everything it creates or changes is undone on exit.
- `run`: `on_stack()`, what every runner does first (cluster + the week's stack, or a specific skip).
- `stack`: the week stack's names read back from `lab render weekNN -o DIR` (the plans `pulumi up` applies).
- `load`, `portforward`, `prom`: reaching Triton, driving it with the lab's load generator, querying Prometheus.
- `pods`: pods built from the stack's own templates.
- Pure analysis of what the cluster records: `objects` (pods, nodes, events), `scaling`, `recovery`, `timeline`,
  `traffic`, `convergence`, `ordering`.
- `experiments/<idea>.py`: the runners; `bindings.yaml`: experiment id -> runner and parameters.
"""
