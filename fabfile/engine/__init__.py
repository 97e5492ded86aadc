"""The rollout engine: the plan, the rollout's phases, batches, canary and warm-up;
`strategies` decide the order of steps, `runtimes` how a release goes live on a node."""
