"""One module per local service, each exposing `spec(ctx: PlatformContext) -> ServiceSpec`.

The week -> services mapping is data: ailab/local/weeks.yaml. To add a service, add a module here and name
it in weeks.yaml.
"""
