"""Rule actor-location-unknown: The actor's location is unknown or a multi-region code, which is not proof of being in $home; the access is judged as foreign."""

from audit.replay.rules.base import FindingContext, Rule, RuleMetadata, what, who


def _explain(ctx: FindingContext) -> str:
    return f"{who(ctx)} {what(ctx)}; location {ctx.event.actor.physical_country or ctx.event.actor.office_country or 'unknown'} is not proof of presence in {ctx.home}"


RULE = Rule(
    metadata=RuleMetadata(
        id="actor-location-unknown",
        title="Actor location unknown or multi-region",
        severity="medium",
        description="The actor's location is unknown or a multi-region code, which is not proof of being in $home; the access is judged as foreign.",
        remediation=(
            "Record each actor's physical country at access time; treat unknown locations as foreign until proven otherwise."
        ),
    ),
    explain=_explain,
)
