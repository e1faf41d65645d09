"""Rule approval-threshold-not-met: Fewer qualifying approvers signed off before the access than the approval requires."""

from audit.replay.rules.base import FindingContext, Rule, RuleMetadata, what, who


def _explain(ctx: FindingContext) -> str:
    return f"{who(ctx)} {what(ctx)} under approval {ctx.approval_id}: {ctx.detail}"


RULE = Rule(
    metadata=RuleMetadata(
        id="approval-threshold-not-met",
        title="Approval threshold not met",
        severity="medium",
        description="Fewer qualifying approvers signed off before the access than the approval requires.",
        remediation=("Only activate an approval once its threshold of distinct qualifying approvers is reached."),
    ),
    explain=_explain,
)
