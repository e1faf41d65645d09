"""Rule break-glass-unjustified: An emergency (break-glass) approval was used without a recorded justification."""

from audit.replay.rules.base import FindingContext, Rule, RuleMetadata, what, who


def _explain(ctx: FindingContext) -> str:
    return f"{who(ctx)} {what(ctx)} under break-glass approval {ctx.approval_id} without a justification"


RULE = Rule(
    metadata=RuleMetadata(
        id="break-glass-unjustified",
        title="Break-glass access without justification",
        severity="medium",
        description="An emergency (break-glass) approval was used without a recorded justification.",
        remediation=("Require a justification at break-glass time and alert the security team on every use."),
    ),
    explain=_explain,
)
