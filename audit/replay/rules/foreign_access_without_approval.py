"""Rule foreign-access-without-approval: Staff outside $home accessed user data without citing any approval."""

from audit.replay.rules.base import FindingContext, Rule, RuleMetadata, what, who


def _explain(ctx: FindingContext) -> str:
    return f"{who(ctx)} {what(ctx)} without citing any approval"


RULE = Rule(
    metadata=RuleMetadata(
        id="foreign-access-without-approval",
        title="Foreign access without an approval",
        severity="high",
        description="Staff outside $home accessed user data without citing any approval.",
        remediation=(
            "Block the access path for staff outside $home unless an approval from the security team is attached; investigate what was read."
        ),
    ),
    explain=_explain,
)
