"""Rule third-party-sensitive-data: A vendor or advertiser accessed, or received, health-related or other sensitive data."""

from audit.replay.rules.base import FindingContext, Rule, RuleMetadata, who


def _explain(ctx: FindingContext) -> str:
    return f"{ctx.related_actor or who(ctx)} got {ctx.event.resource.category} data from {ctx.event.resource.dataset} ({ctx.event.action} by {ctx.event.actor.id})"


RULE = Rule(
    metadata=RuleMetadata(
        id="third-party-sensitive-data",
        title="Vendor or advertiser touched sensitive data",
        severity="critical",
        description="A vendor or advertiser accessed, or received, health-related or other sensitive data.",
        remediation=("Remove vendor and advertiser access to sensitive categories; review contracts and data flows."),
    ),
    explain=_explain,
)
