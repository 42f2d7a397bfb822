"""One module per local service, each exposing `spec(ctx: PlatformContext) -> ServiceSpec`.

The week -> services mapping is data: `local:` of each week in ailab/contract/facts/weeks.yaml. To add a service,
add a module here and name it there.
"""
