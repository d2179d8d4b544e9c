"""Accessibility: axe-core (from npm, like htmx) on every page each demo role reaches, on a desktop
and on a phone; no violation of serious or critical impact."""

from pathlib import Path

import pytest

from tests.e2e.conftest import DEMO_EMAILS, log_in, pages_reached

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
VIEWPORTS = {"1366": {"width": 1366, "height": 900}, "390": {"width": 390, "height": 844}}
# The serious and critical violations of the page: rule, the first offending nodes.
SERIOUS = """
async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations
    .filter(v => v.impact === "serious" || v.impact === "critical")
    .map(v => `${v.id}: ${v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", ")}`);
}
"""


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
@pytest.mark.parametrize("email", DEMO_EMAILS)
def test_every_page_a_role_reaches_has_no_serious_axe_violation(
    browser, live_server, demo, email, viewport
):
    # axe is injected as an inline script, which the portal's CSP rightly refuses.
    context = browser.new_context(
        base_url=live_server, locale="es-PA", viewport=VIEWPORTS[viewport], bypass_csp=True
    )
    page = context.new_page()
    log_in(page, email)
    checked, violations = [], {}
    for shape in pages_reached(page):
        page.add_script_tag(path=str(AXE))
        found = page.evaluate(SERIOUS)
        checked.append(shape)
        if found:
            violations[shape] = found
    context.close()
    assert len(checked) >= 6, checked
    assert violations == {}
