"""Rule proxy-access: A worker in $home fetched data on behalf of, or handed it to, a colleague outside $home."""

from audit.replay.rules.base import FindingContext, Rule, RuleMetadata, what, who


def _explain(ctx: FindingContext) -> str:
    return f"{who(ctx)} {what(ctx)} for {ctx.related_actor}, who is outside {ctx.home} ({ctx.detail})"


RULE = Rule(
    metadata=RuleMetadata(
        id="proxy-access",
        title="Proxy access for a colleague outside $home",
        severity="critical",
        description="A worker in $home fetched data on behalf of, or handed it to, a colleague outside $home.",
        remediation=(
            "Prohibit fetching data for colleagues; the colleague must request access through the security team's approval process."
        ),
    ),
    explain=_explain,
)
