"""Rule foreign-sensitive-access: Staff outside $home accessed a sensitive category; the commitment denies this even with an approval."""

from audit.replay.rules.base import FindingContext, Rule, RuleMetadata, what, who


def _explain(ctx: FindingContext) -> str:
    return f"{who(ctx)} {what(ctx)}; sensitive categories are denied to staff outside {ctx.home} even with an approval"


RULE = Rule(
    metadata=RuleMetadata(
        id="foreign-sensitive-access",
        title="Sensitive data seen by staff outside $home",
        severity="critical",
        description="Staff outside $home accessed a sensitive category; the commitment denies this even with an approval.",
        remediation=(
            "Remove sensitive categories from every approval grantable to staff outside $home and block them at the data layer."
        ),
    ),
    explain=_explain,
)
