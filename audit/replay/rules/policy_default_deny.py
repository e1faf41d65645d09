"""Rule policy-default-deny: The policy pack had no row allowing this combination of facts; it is denied by default."""

from audit.replay.rules.base import FindingContext, Rule, RuleMetadata, what, who


def _explain(ctx: FindingContext) -> str:
    return f"{who(ctx)} {what(ctx)}: no policy row allows it ({ctx.detail})"


RULE = Rule(
    metadata=RuleMetadata(
        id="policy-default-deny",
        title="No policy row allowed the access",
        severity="high",
        description="The policy pack had no row allowing this combination of facts; it is denied by default.",
        remediation=("Extend the policy pack deliberately if the access is legitimate, or stop the access."),
    ),
    explain=_explain,
)
