"""The Financial Approval queue in a browser: a row's amount opens its breakdown without leaving
the queue, "select all on this page" ticks every request the approver may decide, and one click
approves them all."""

from playwright.sync_api import expect

from approvals.models import FinancialRequest


def test_select_all_then_approve_selected(demo, open_session):
    waiting = list(FinancialRequest.objects.filter(clinic__code="MUSCAT", status="requested")
                   .values_list("pk", flat=True))
    assert len(waiting) > 1
    approver = open_session().login("approver")
    page = approver.page
    approver.goto("/approvals/?status=requested&clinic=&sort=largest")
    queue_url = page.url

    # the amount opens the breakdown approved, and the queue stays where it is
    first = page.locator("table tbody tr.clickable").first
    first.locator("details.frozen-breakdown summary").click()
    expect(first.get_by_text("Paid back to the payer")).to_be_visible()
    assert page.url == queue_url
    approver.screenshot("breakdown-open")

    # select all on this page, then leave one out
    select_all = page.get_by_label("Select all on this page")
    select_all.check()
    boxes = page.locator("input[name=request]")
    expect(boxes).to_have_count(len(waiting))
    for n in range(len(waiting)):
        expect(boxes.nth(n)).to_be_checked()
    expect(page.locator("#bulk-selected-count")).to_have_text(f"{len(waiting)} selected")
    boxes.last.uncheck()
    assert select_all.evaluate("box => box.indeterminate")
    left_out = int(boxes.last.get_attribute("value"))

    page.get_by_label("Remarks for the selected requests").fill("Receipts checked")
    page.get_by_role("button", name="Approve selected").click()

    expect(page.get_by_role("alert").first).to_contain_text(f"{len(waiting) - 1} approved")
    assert page.url == queue_url  # back to the queue with its filters
    approver.screenshot("bulk-approved")
    statuses = dict(FinancialRequest.objects.filter(pk__in=waiting).values_list("pk", "status"))
    assert statuses.pop(left_out) == "requested"
    assert set(statuses.values()) <= {"approved", "requested"}  # two-approver ones: 1 of 2
