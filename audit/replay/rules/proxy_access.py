"""Rule proxy-access: A US-based worker fetched data on behalf of, or handed it to, a colleague outside the US."""

from audit.replay.rules.base import FindingContext, Rule, RuleMetadata, what, who


def _explain(ctx: FindingContext) -> str:
    return f"{who(ctx)} {what(ctx)} for {ctx.related_actor}, who is outside the US ({ctx.detail})"


RULE = Rule(
    metadata=RuleMetadata(
        id="proxy-access",
        title="Proxy access for a colleague outside the US",
        severity="critical",
        commitment="C8",
        description="A US-based worker fetched data on behalf of, or handed it to, a colleague outside the US.",
        remediation=(
            "Prohibit fetching data for colleagues; the colleague must request access through the US security team's approval process."
        ),
    ),
    explain=_explain,
)
