"""Rule approver-not-security-team: an approver of the cited approval is not in a security team of the pack, or not at home."""

from audit.replay.rules.base import FindingContext, Rule, RuleMetadata, what, who


def _explain(ctx: FindingContext) -> str:
    return f"{who(ctx)} {what(ctx)} under approval {ctx.approval_id}, {ctx.detail}"


RULE = Rule(
    metadata=RuleMetadata(
        id="approver-not-security-team",
        title="Approver outside the security team",
        severity="high",
        description=(
            "An approver of the cited approval is not a member of a security team the pack names, or is not "
            "located in $home."
        ),
        remediation="Restrict approver rights to the security team and verify approver location.",
    ),
    explain=_explain,
)
