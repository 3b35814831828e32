"""``syndicate doctor``: the pre-flight deliverability report (docs/deliverability.md).

Exit status: 0 when no check fails (warnings allowed), 1 when any fails. The doctor
package (dnspython, pyspf, the publishing stack for the rendered message) is imported
inside the command: the other commands do not pay for it.
"""

from __future__ import annotations

import json

import click

from ._group import AppContext, cli, pass_app


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.option("--nameserver", metavar="IP[:PORT]", default="",
              help="Ask only this DNS server (default: the system's resolvers).")
@click.option("--timeout", type=click.FloatRange(0.1, 60), default=3.0, show_default=True,
              help="Seconds per DNS try (2 tries) and for the HTTP test.")
@click.option("--channel", metavar="NAME", default="",
              help="The smtp channel to check (default: the first enabled one).")
@click.option("--skip-http", is_flag=True, help="Do not POST to the one-click endpoint.")
@pass_app
def doctor(app: AppContext, as_json: bool, nameserver: str, timeout: float, channel: str,
           skip_http: bool) -> None:
    """Check SPF, DKIM, DMARC, one-click unsubscribe, list headers and size; exit 1 on a fail."""
    from ..doctor import DnsSettings, Options, diagnose

    if nameserver:
        try:
            dns = DnsSettings.parse(nameserver, timeout=timeout)
        except ValueError as exc:
            raise click.BadParameter(f"{nameserver!r}: expected IP or IP:PORT ({exc})",
                                     param_hint="--nameserver") from None
    else:
        dns = DnsSettings(timeout=timeout)
    checks = diagnose(app.config, Options(dns=dns, channel=channel, skip_http=skip_http,
                                          http_timeout=max(timeout, 5.0)))
    counts = {s: sum(c.status == s for c in checks) for s in ("pass", "warn", "fail")}
    if as_json:
        click.echo(json.dumps({
            "ok": not counts["fail"],
            "summary": counts,
            "checks": [{"rule": c.rule, "status": c.status, "detail": c.detail,
                        "source": c.source, "fix": c.fix} for c in checks],
        }, ensure_ascii=False, indent=2))
    else:
        width = max(len(c.rule) for c in checks)
        for c in checks:
            click.echo(f"{c.status:<5} {c.rule:<{width}}  {c.detail}")
            if c.fix and c.status != "pass":
                click.echo(f"{'':<5} {'':<{width}}  fix: {c.fix}")
        click.echo(f"{counts['pass']} pass, {counts['warn']} warn, {counts['fail']} fail")
    if counts["fail"]:
        raise SystemExit(1)


__all__ = ["AppContext", "doctor"]
